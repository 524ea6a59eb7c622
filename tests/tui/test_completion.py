"""Completion of commands and @path mentions, attaching files, and slash command parsing."""

from __future__ import annotations

import pytest

from tui_agent.tui import slash
from tui_agent.tui.completion import MAX_ATTACH_CHARS, MentionError, attach_mentions, complete, mentions


def texts(candidates):
    return [c.text for c in candidates]


def test_slash_commands_complete_by_prefix(workspace):
    assert texts(complete("/mo", workspace)) == ["/model", "/mode"]
    assert texts(complete("/", workspace)) == ["/" + c.name for c in slash.COMMANDS]
    assert complete("/zz", workspace) == []


def test_command_arguments_complete(workspace):
    assert texts(complete("/mode au", workspace)) == ["auto"]
    assert texts(complete("/mode a", workspace)) == ["ask", "auto"]
    assert texts(complete("/model ", workspace, models=lambda: ["qwen", "gemma"])) == ["qwen", "gemma"]
    assert texts(complete("/resume ab", workspace, sessions=lambda: ["abc123", "ffe"])) == ["abc123"]


def test_paths_complete_inside_the_workspace(workspace):
    (workspace / ".hidden").write_text("x")
    (workspace / ".git").mkdir()
    assert texts(complete("look at @", workspace)) == ["@src/", "@notes.txt"]
    assert texts(complete("look at @src/c", workspace)) == ["@src/calc.py"]
    assert texts(complete("@.", workspace)) == ["@.hidden"]
    assert complete("@../", workspace) == []
    assert complete("plain words", workspace) == []


def test_mentions_attach_file_content(workspace):
    message, attached = attach_mentions("what does @src/calc.py do? see @notes.txt.", workspace)
    assert attached == ["src/calc.py", "notes.txt"]
    assert "def add(a, b):" in message and "The secret number is 42." in message
    assert message.startswith("what does @src/calc.py do?")
    assert mentions("mail me@example.com about @a.py and @a.py") == ["a.py"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("read @missing.py", "@missing.py: no such file"),
        ("read @src", "@src: is a directory"),
        ("read @../outside.txt", "@../outside.txt: outside this directory"),
    ],
)
def test_bad_mentions_are_one_line_errors(workspace, text, error):
    (workspace.parent / "outside.txt").write_text("x")
    with pytest.raises(MentionError, match=error.replace(".", r"\.")):
        attach_mentions(text, workspace)


def test_binary_and_huge_files(workspace):
    (workspace / "blob.bin").write_bytes(b"\0\1\2" * 10)
    with pytest.raises(MentionError, match="binary"):
        attach_mentions("@blob.bin", workspace)
    (workspace / "big.txt").write_text("a" * (MAX_ATTACH_CHARS + 500))
    message, _ = attach_mentions("@big.txt", workspace)
    assert "truncated" in message and "a" * (MAX_ATTACH_CHARS + 1) not in message


def test_slash_parsing():
    assert slash.parse("/sag 3") == ("sag", "3")
    assert slash.parse("/cont") == ("context", "")
    assert slash.is_command("/help") and not slash.is_command("/tmp/file.py is broken")
    assert not slash.is_command("/help\nmore")
    with pytest.raises(slash.SlashError, match="unknown command /frobnicate"):
        slash.parse("/frobnicate")
    with pytest.raises(slash.SlashError, match="unknown command /s:"):
        slash.parse("/s")  # sag, save, sessions: ambiguous
    assert slash.parse_sag("4") == 4
    for bad in ("x", "0", "99"):
        with pytest.raises(slash.SlashError, match="/sag needs a whole number"):
            slash.parse_sag(bad)
    assert slash.parse_mode("", "ask") == "auto"
    assert slash.parse_mode("", "read-only") == "ask"
    assert slash.parse_mode("readonly", "ask") == "read-only"
    with pytest.raises(slash.SlashError, match="ask, auto or read-only"):
        slash.parse_mode("yolo", "ask")


def test_live_text_hides_the_thought_label_and_only_grows():
    from tui_agent.tui.widgets.conversation import live_text

    text = "Thought: I will add.\n```py\nprint(1)"
    shown = [live_text(text[:i]) for i in range(len(text) + 1)]
    assert shown[-1] == "I will add.\n```py\nprint(1)"
    assert all(later.startswith(earlier) for earlier, later in zip(shown, shown[1:], strict=False))
    assert live_text("The answer") == "The answer" and live_text("Th") == ""

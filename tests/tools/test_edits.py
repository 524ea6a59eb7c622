"""The file tools on real files: exact-match edits, clear errors, confinement, binary refusal, policies, run()."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tui_agent.tools.edits import EditError, EditTools, closest_match, unified_diff
from tui_agent.tools.runcmd import run_command

SOURCE = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"


@pytest.fixture
def workspace(tmp_path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "calc.py").write_text(SOURCE)
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (tmp_path / "outside.txt").write_text("keep me\n")
    return root


def test_edit_file_replaces_the_one_exact_match(workspace):
    tools = EditTools(workspace)
    message = tools.edit_file("calc.py", "def add(a, b):\n    return a - b", "def add(a, b):\n    return a + b")
    assert message == "Edited calc.py (+1 -1)."
    assert (workspace / "calc.py").read_text() == SOURCE.replace("a - b", "a + b", 1)


def test_ambiguous_old_names_every_line_and_changes_nothing(workspace):
    with pytest.raises(EditError) as err:
        EditTools(workspace).edit_file("calc.py", "return a - b", "return a + b")
    assert "occurs 2 times" in str(err.value) and "lines 2, 6" in str(err.value)
    assert (workspace / "calc.py").read_text() == SOURCE


def test_absent_old_quotes_the_closest_lines_with_numbers(workspace):
    with pytest.raises(EditError) as err:
        EditTools(workspace).edit_file("calc.py", "def sub(a, b):\n  return a-b", "x")
    text = str(err.value)
    assert "was not found in calc.py" in text
    assert "lines 5-6" in text and "5  def sub(a, b):" in text and "6      return a - b" in text


def test_write_file_creates_and_keeps_line_endings_exactly(workspace):
    tools = EditTools(workspace)
    assert tools.write_file("pkg/new.py", "x = 1\r\ny = 2\r\n") == "Created pkg/new.py (+2 -0)."
    assert (workspace / "pkg" / "new.py").read_bytes() == b"x = 1\r\ny = 2\r\n"
    tools.edit_file("pkg/new.py", "y = 2", "y = 3")
    assert (workspace / "pkg" / "new.py").read_bytes() == b"x = 1\r\ny = 3\r\n"


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/hostname", "link/outside.txt", ".git/config"])
def test_paths_outside_the_workspace_or_in_git_data_are_refused(workspace, path):
    (workspace / "link").symlink_to(workspace.parent)
    (workspace / ".git").mkdir()
    (workspace / ".git" / "config").write_text("[core]\n")
    with pytest.raises(EditError):
        EditTools(workspace).write_file(path, "overwritten\n")
    assert (workspace.parent / "outside.txt").read_text() == "keep me\n"
    assert (workspace / ".git" / "config").read_text() == "[core]\n"


def test_symlinked_file_pointing_outside_is_refused(workspace):
    (workspace / "notes.txt").symlink_to(workspace.parent / "outside.txt")
    with pytest.raises(EditError, match="outside the workspace"):
        EditTools(workspace).edit_file("notes.txt", "keep", "lose")
    assert (workspace.parent / "outside.txt").read_text() == "keep me\n"


def test_binary_files_are_refused(workspace):
    with pytest.raises(EditError, match="binary"):
        EditTools(workspace).write_file("logo.png", "text")
    assert (workspace / "logo.png").read_bytes().startswith(b"\x89PNG")


def test_stage_writes_nothing_and_later_edits_build_on_the_proposal(workspace):
    tools = EditTools(workspace, policy="stage")
    first = tools.edit_file("calc.py", "def add(a, b):\n    return a - b", "def add(a, b):\n    return a + b")
    assert first.startswith("Proposed a change to calc.py")
    tools.edit_file("calc.py", "return a + b", "return b + a")  # sees the staged text, not the file
    assert (workspace / "calc.py").read_text() == SOURCE
    tools.new_cell()
    with pytest.raises(EditError, match="not found"):
        tools.edit_file("calc.py", "return b + a", "x")


def test_refuse_policy_says_read_only(workspace):
    tools = EditTools(workspace, policy="refuse")
    with pytest.raises(EditError, match="read-only mode"):
        tools.write_file("calc.py", "gone")
    assert (workspace / "calc.py").read_text() == SOURCE


def test_unified_diff_and_closest_match_helpers():
    diff = unified_diff("a.py", "x = 1\n", "x = 2\n")
    assert diff.splitlines()[:2] == ["--- a/a.py", "+++ b/a.py"] and "-x = 1" in diff and "+x = 2" in diff
    assert unified_diff("n.py", None, "y\n").startswith("--- /dev/null\n+++ b/n.py")
    assert closest_match("", "x") == "The file is empty."


def test_run_takes_argv_captures_output_and_exit_code(workspace):
    out = run_command(workspace, [sys.executable, "-c", "import os; print(os.getcwd()); raise SystemExit(3)"])
    assert str(workspace) in out and out.endswith("[exit code 3]")
    quoted = run_command(workspace, f"{sys.executable} -c 'print(\"a;b\")'")  # split like a shell, run without one
    assert "a;b" in quoted and "[exit code 0]" in quoted
    assert "command not found" in run_command(workspace, ["no-such-program-xyz"])
    coloured = run_command(workspace, [sys.executable, "-c", "print('\\x1b[31mred\\x1b[0m')"])
    assert "\x1b" not in coloured and "red" in coloured  # the model reads plain text


def test_run_cuts_long_output_and_kills_on_timeout(workspace):
    long = run_command(workspace, [sys.executable, "-c", "print('x' * 50000)"], max_chars=2000)
    assert "chars cut" in long and len(long) < 2500
    slow = run_command(workspace, [sys.executable, "-c", "import time; print('start', flush=True); time.sleep(30)"], 1)
    assert "killed after 1 s (timeout)" in slow and "start" in slow


def test_edits_respect_file_modes(workspace):
    script = workspace / "run.sh"
    script.write_text("echo a\n")
    os.chmod(script, 0o755)
    EditTools(workspace).edit_file("run.sh", "echo a", "echo b")
    assert os.stat(script).st_mode & 0o777 == 0o755

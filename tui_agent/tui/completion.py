"""Completion of what the user types (slash commands, their arguments, ``@path`` mentions) and the attaching of
mentioned files to the message the agent receives.

Pure functions over strings and the file system, so the input widget stays thin and this logic is tested alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tui_agent.tui import slash

#: Directories never offered by ``@`` completion.
SKIP_DIRS = frozenset({".git", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache", ".ruff_cache"})
#: The most of one attached file that goes into a message.
MAX_ATTACH_CHARS = 20_000
MENTION = re.compile(r"(?<![\w@])@([^\s@]+)")


@dataclass(frozen=True)
class Candidate:
    """One completion: ``text`` replaces the word being typed; ``help`` is shown beside it."""

    text: str
    help: str = ""


def current_word(before_cursor: str) -> str:
    """The word being typed: the text after the last whitespace."""
    match = re.search(r"(\S*)$", before_cursor)
    return match.group(1) if match else ""


def complete(
    before_cursor: str,
    workspace: Path,
    *,
    models: Callable[[], Sequence[str]] = lambda: (),
    sessions: Callable[[], Sequence[str]] = lambda: (),
    limit: int = 12,
) -> list[Candidate]:
    """Candidates for the word before the cursor: commands, command arguments, or workspace paths."""
    word = current_word(before_cursor)
    stripped = before_cursor.lstrip()
    if stripped.startswith("/") and "\n" not in stripped:
        head, space, _ = stripped.partition(" ")
        if not space:
            name = head[1:].lower()
            return [
                Candidate("/" + c.name, f"{c.args}  {c.help}".strip())
                for c in slash.COMMANDS
                if c.name.startswith(name)
            ][:limit]
        command = head[1:].lower()
        options: Sequence[str] = ()
        if command == "mode":
            options = slash.MODES
        elif command == "model":
            options = models()
        elif command == "resume":
            options = sessions()
        if options and not word.startswith("@"):
            return [Candidate(o) for o in options if o.lower().startswith(word.lower())][:limit]
    if word.startswith("@"):
        return [Candidate("@" + p) for p in complete_path(word[1:], workspace, limit=limit)]
    return []


def complete_path(partial: str, workspace: Path, *, limit: int = 12) -> list[str]:
    """Workspace-relative paths starting with ``partial``; directories end with ``/``; hidden ones only on ask."""
    directory, _, prefix = partial.rpartition("/")
    base = (workspace / directory) if directory else workspace
    try:
        base.resolve().relative_to(workspace.resolve())
        entries = sorted(os.scandir(base), key=lambda e: (not e.is_dir(), e.name.lower()))
    except (OSError, ValueError):
        return []
    found = []
    for entry in entries:
        if not entry.name.startswith(prefix) or entry.name in SKIP_DIRS:
            continue
        if entry.name.startswith(".") and not prefix.startswith("."):
            continue
        rel = f"{directory}/{entry.name}" if directory else entry.name
        found.append(rel + "/" if entry.is_dir() else rel)
        if len(found) >= limit:
            break
    return found


def common_prefix(candidates: Sequence[Candidate]) -> str:
    """The longest text all candidates start with (what Tab can insert without choosing)."""
    return os.path.commonprefix([c.text for c in candidates]) if candidates else ""


class MentionError(ValueError):
    """An ``@path`` that names no readable file in the workspace."""


def mentions(text: str) -> list[str]:
    """The ``@path`` mentions of a message, in order, without duplicates."""
    seen: list[str] = []
    for match in MENTION.finditer(text):
        path = match.group(1).rstrip(".,;:!?)")
        if path and path not in seen:
            seen.append(path)
    return seen


def attach_mentions(text: str, workspace: Path) -> tuple[str, list[str]]:
    """The message for the agent: the text, then the content of every mentioned file.

    Returns (message, attached paths). A mention of a missing, outside or unreadable file is a MentionError,
    so the caller can say so and keep the user's text.
    """
    root = workspace.resolve()
    parts = [text]
    attached = []
    for rel in mentions(text):
        path = (workspace / rel).resolve()
        try:
            path.relative_to(root)
        except ValueError:
            raise MentionError(f"@{rel}: outside this directory") from None
        if path.is_dir():
            raise MentionError(f"@{rel}: is a directory; mention a file")
        if not path.is_file():
            raise MentionError(f"@{rel}: no such file")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise MentionError(f"@{rel}: cannot read ({exc.strerror or exc})") from None
        if b"\0" in raw[:4096]:
            raise MentionError(f"@{rel}: binary file, not attached")
        content = raw.decode("utf-8", errors="replace")
        note = ""
        if len(content) > MAX_ATTACH_CHARS:
            content = content[:MAX_ATTACH_CHARS]
            note = f"\n[... truncated to the first {MAX_ATTACH_CHARS} characters]"
        parts.append(f"File `{rel}`:\n```\n{content.rstrip()}\n```{note}")
        attached.append(rel)
    return "\n\n".join(parts), attached

"""The model's file-changing tools, as they run inside the kernel: ``write_file`` and ``edit_file``.

How a change made inside a running cell reaches the user's approval in the host process: it does not wait for it.
The kernel works under an edit policy the host sets before each cell (see ``Kernel.set_edit_policy``):

- ``apply`` (auto mode): the file is written at once, so a test run later in the same cell sees it;
- ``stage`` (ask mode): nothing is written; the change is kept as proposed (later edits of the same file in the
  cell build on it) and applied by the host after the cell, once the user has accepted its diff;
- ``refuse`` (read-only): nothing is written and the tool says so.

Either way the tool publishes the change (path, old and new text, unified diff) as display data; the host collects
it with the cell's output, asks, applies and records it for undo (``tui_agent.agent.changes``). No second channel
into the kernel is needed, nothing blocks a cell on a person, and a trial run in a forked kernel (SAG) only writes
files its journal puts back, while its published changes are thrown away with the rest of the trial.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tui_agent.tools.files import OutsideWorkspace, resolve_in

EDIT_MIME = "application/vnd.tui-agent.file-change+json"
POLICIES = ("apply", "stage", "refuse")
MAX_EDIT_BYTES = 2_000_000
PROTECTED_DIRS = {".git", ".hg", ".svn", ".tui-agent"}


class EditError(ValueError):
    """A change that cannot be made; the message is what the model reads."""


def unified_diff(path: str, before: str | None, after: str | None) -> str:
    """A unified diff of one file (``None``: the file does not exist on that side)."""
    old = (before or "").splitlines(keepends=True)
    new = (after or "").splitlines(keepends=True)
    lines = difflib.unified_diff(
        old, new, "/dev/null" if before is None else f"a/{path}", "/dev/null" if after is None else f"b/{path}"
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def diff_stat(diff: str) -> tuple[int, int]:
    """Lines added and removed by a unified diff."""
    lines = diff.splitlines()
    added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
    return added, removed


def target_path(workspace: Path, path: str) -> Path:
    """The real path a write to ``path`` would change, refusing anything outside the workspace or in VCS data."""
    try:
        target = resolve_in(workspace, path)
    except OutsideWorkspace as exc:
        raise EditError(str(exc).replace("can be read", "can be changed")) from None
    root = Path(workspace).resolve()
    if target == root:
        raise EditError(f"{path} is the workspace itself, not a file.")
    if PROTECTED_DIRS & set(target.relative_to(root).parts):
        raise EditError(f"{path} is inside a version-control or tui-agent folder; those are not edited.")
    if target.is_dir():
        raise EditError(f"{path} is a directory, not a file.")
    return target


def read_text(target: Path, shown: str) -> str | None:
    """A file's text exactly as stored (newlines kept); None if it does not exist; binary files are refused."""
    if not target.exists():
        return None
    if target.stat().st_size > MAX_EDIT_BYTES:
        raise EditError(f"{shown} is too large to edit ({target.stat().st_size} bytes).")
    data = target.read_bytes()
    if b"\0" in data[:8192]:
        raise EditError(f"{shown} is a binary file; only text files can be edited.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EditError(f"{shown} is not UTF-8 text; it cannot be edited safely.") from exc


def closest_match(text: str, old: str) -> str:
    """Where ``text`` comes closest to ``old``: the most similar run of lines, quoted with line numbers."""
    lines = text.splitlines()
    want = old.strip("\n").splitlines() or [old]
    size = max(1, len(want))
    if not lines:
        return "The file is empty."
    best, best_at = -1.0, 0
    target = "\n".join(w.strip() for w in want)
    for i in range(max(1, len(lines) - size + 1)):
        window = "\n".join(w.strip() for w in lines[i : i + size])
        score = difflib.SequenceMatcher(None, window, target, autojunk=False).ratio()
        if score > best:
            best, best_at = score, i
    end = min(len(lines), best_at + size)
    width = len(str(end))
    quoted = "\n".join(f"{n + 1:>{width}}  {lines[n]}" for n in range(best_at, end))
    return f"The closest text is at lines {best_at + 1}-{end}:\n{quoted}"


def replace_once(text: str, old: str, new: str, shown: str) -> str:
    """``text`` with the one exact occurrence of ``old`` replaced; absent or ambiguous ``old`` is an EditError."""
    if not old:
        raise EditError("edit_file needs the exact text to replace (old); to create a file use write_file.")
    count = text.count(old)
    if count == 1:
        return text.replace(old, new, 1)
    if count == 0:
        raise EditError(
            f"edit_file: the text to replace was not found in {shown}; old must match the file exactly "
            f"(spaces and indentation included). {closest_match(text, old)}"
        )
    starts, at = [], text.find(old)
    while at != -1:
        starts.append(text.count("\n", 0, at) + 1)
        at = text.find(old, at + 1)
    where = ", ".join(str(n) for n in starts[:10])
    raise EditError(
        f"edit_file: the text to replace occurs {count} times in {shown} (at lines {where}); include more of "
        "the surrounding lines in old so that it matches exactly once."
    )


def _publish(change: dict) -> None:
    try:
        from IPython.display import publish_display_data

        publish_display_data({EDIT_MIME: change})
    except Exception:  # noqa: BLE001, S110 - outside a kernel (tests of the plain functions) nothing listens
        pass


@dataclass
class EditTools:
    """The edit tools' state in one kernel: the policy and the changes staged during the current cell."""

    workspace: Path
    policy: str = "apply"
    staged: dict[str, str] = field(default_factory=dict)  # real path -> proposed text, for this cell
    on_change: Callable[[], None] | None = None  # e.g. mark the code index for a refresh

    def set_policy(self, policy: str) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown edit policy {policy!r}; expected one of {', '.join(POLICIES)}")
        self.policy = policy
        self.staged.clear()

    def new_cell(self) -> None:
        """Forget what the last cell proposed (the host has applied or refused it by now)."""
        self.staged.clear()

    def _current(self, target: Path, shown: str) -> str | None:
        key = str(target)
        return self.staged[key] if key in self.staged else read_text(target, shown)

    def change(self, path: str, make: Callable[[str | None, str], str]) -> str:
        """Compute a file's new text with ``make(current, shown)`` and apply, stage or refuse it by policy."""
        path = os.fspath(path)
        target = target_path(self.workspace, path)
        shown = str(target.relative_to(Path(self.workspace).resolve()))
        if self.policy == "refuse":
            raise EditError(f"read-only mode: {shown} was not changed (file edits are disabled).")
        on_disk = read_text(target, shown)
        current = self._current(target, shown)
        after = make(current, shown)
        if after == current:
            return f"{shown} is unchanged (the new text is the same as the old)."
        diff = unified_diff(shown, current, after)
        added, removed = diff_stat(diff)
        change = {"path": shown, "before": on_disk, "after": after, "diff": unified_diff(shown, on_disk, after)}
        if self.policy == "stage":
            self.staged[str(target)] = after
            _publish({**change, "status": "proposed"})
            if self.on_change is not None:
                self.on_change()
            return (
                f"Proposed a change to {shown} (+{added} -{removed}); it is written when the user accepts it, "
                "after this code finishes."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(after.encode("utf-8"))
        _publish({**change, "status": "applied"})
        if self.on_change is not None:
            self.on_change()
        return f"{'Created' if current is None else 'Edited'} {shown} (+{added} -{removed})."

    def write_file(self, path: str, text: str) -> str:
        if not isinstance(text, str):
            raise EditError("write_file needs the file's whole content as a string.")
        return self.change(path, lambda current, shown: text)

    def edit_file(self, path: str, old: str, new: str) -> str:
        if not isinstance(old, str) or not isinstance(new, str):
            raise EditError("edit_file needs old and new as strings.")

        def make(current: str | None, shown: str) -> str:
            if current is None:
                raise EditError(f"edit_file: {shown} does not exist; create it with write_file({shown!r}, text).")
            return replace_once(current, old, new, shown)

        return self.change(path, make)

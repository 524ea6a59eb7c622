"""The host's half of file editing: after a cell, the changes it made or proposed (``tools.edits``) are asked
about, written, recorded for undo and reported, as events for the user and as a note for the model.

Changes the kernel already applied (auto mode) are only recorded. Proposed ones (ask mode) go to the edit
approver one file at a time, and are written only if the file still holds what the cell saw, so an edit the user
made meanwhile is never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tui_agent.agent.approval import EditApprover
from tui_agent.agent.events import EditApprovalNeeded, Event, FileChanged


def _encode(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8")


def _record(undo: Any, target: Path, before: str | None, after: str | None) -> str:
    """Record a change for undo; a failure is a note, never a lost edit."""
    if undo is None:
        return ""
    try:
        undo.record(target, _encode(before), _encode(after))
    except OSError as exc:
        return f" (it could not be recorded for undo: {exc})"
    return ""


def settle(
    step: int, changes: list[dict], workspace: Path, approver: EditApprover | None, undo: Any
) -> Iterator[Event]:
    """Record applied changes, ask about proposed ones; yields events and returns the note for the model."""
    root = Path(workspace).resolve()
    notes: list[str] = []
    proposed: dict[str, dict] = {}
    for change in changes:
        if change.get("status") == "proposed":
            proposed[change["path"]] = change  # the last proposal of a file holds all of the cell's edits to it
            continue
        target = root / change["path"]
        extra = _record(undo, target, change.get("before"), change.get("after"))
        yield FileChanged(step=step, path=change["path"], diff=change.get("diff", ""), status="applied", message=extra)
        if extra:
            notes.append(f"{change['path']} was changed{extra}.")
    for path, change in proposed.items():
        diff = change.get("diff", "")
        yield EditApprovalNeeded(step=step, path=path, diff=diff)
        accepted = bool(approver(step, path, diff)) if approver is not None else False
        if not accepted:
            notes.append(f"The user refused the change to {path}; it was not written.")
            yield FileChanged(step=step, path=path, diff=diff, status="refused")
            continue
        status, message = _write(root / path, path, change.get("before"), change.get("after"))
        if status == "applied":
            message = _record(undo, root / path, change.get("before"), change.get("after"))
            notes.append(f"The user accepted the change to {path}; it is written{message}.")
        else:
            notes.append(message)
        yield FileChanged(step=step, path=path, diff=diff, status=status, message=message)
    return "\n".join(notes)


def _write(target: Path, rel: str, before: str | None, after: str | None) -> tuple[str, str]:
    """Write an accepted change unless the file no longer holds what the change was made from."""
    try:
        current = target.read_bytes() if target.is_file() else None
        if current != _encode(before):
            return "conflict", f"{rel} changed on disk after the edit was proposed; the edit was not written."
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_encode(after) or b"")
    except OSError as exc:
        return "failed", f"{rel} could not be written: {exc}"
    return "applied", ""

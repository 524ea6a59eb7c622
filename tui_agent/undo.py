"""Undo for the agent's file changes: every applied change is recorded so it can be taken back, several steps back
and across sessions.

Each change is one journal line (file, content before, content after) plus the two contents, stored by hash. In
a git repository the store lives inside the repository's git directory (``.git/tui-agent/undo``): it travels with
the repository, is never committed, and neither the branch, the index nor the working tree is touched to keep it.
Elsewhere it lives under the data directory, one store per workspace. Undo writes back exactly the bytes that were
there before, only for files the agent changed, and refuses when a file no longer holds what the agent wrote (an
edit made since by someone else), so the user's own work is never overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class UndoError(Exception):
    """An undo that cannot be done safely; the message says why and what was left alone."""


@dataclass(frozen=True)
class Change:
    """One recorded change: ``before``/``after`` are content hashes, None where the file did not exist."""

    id: int
    path: str
    before: str | None
    after: str | None
    time: float


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_dir(workspace: Path) -> Path | None:
    """The repository's common git directory when ``workspace`` is inside a git work tree."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],  # noqa: S607
            cwd=str(workspace),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return Path(out.stdout.strip())


def store_dir(workspace: Path) -> Path:
    """Where the undo records of ``workspace`` live (see the module docstring)."""
    workspace = Path(workspace).resolve()
    found = git_dir(workspace)
    if found is not None:
        return found / "tui-agent" / "undo"
    from tui_agent.config import data_dir

    key = hashlib.sha256(str(workspace).encode("utf-8")).hexdigest()[:16]
    return data_dir() / "undo" / f"{workspace.name}-{key}"


class UndoStore:
    """The change journal of one workspace (or of the git repository around it)."""

    def __init__(self, workspace: Path, directory: Path | None = None):
        self.workspace = Path(workspace).resolve()
        self.dir = Path(directory) if directory else store_dir(self.workspace)
        self.journal = self.dir / "journal.jsonl"
        self.objects = self.dir / "objects"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.objects.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "a+b") as fh:
            try:
                import fcntl

                fcntl.flock(fh, fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - Windows: single process use
                pass
            yield

    def _put(self, data: bytes | None) -> str | None:
        if data is None:
            return None
        digest = _sha(data)
        path = self.objects / digest
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return digest

    def _get(self, digest: str) -> bytes:
        data = (self.objects / digest).read_bytes()
        if _sha(data) != digest:
            raise UndoError(f"the undo store is damaged: object {digest[:12]} does not match its hash")
        return data

    def _lines(self) -> list[dict]:
        if not self.journal.exists():
            return []
        entries = []
        for line in self.journal.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                entries.append(json.loads(line))
        return entries

    def _append(self, entry: dict) -> None:
        with open(self.journal, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def record(self, path: Path | str, before: bytes | None, after: bytes | None) -> Change:
        """Remember that ``path`` went from ``before`` to ``after`` (bytes; None: absent)."""
        path = str(Path(path).resolve())
        with self._locked():
            entries = self._lines()
            next_id = 1 + max((e.get("id", 0) for e in entries if "path" in e), default=0)
            change = Change(next_id, path, self._put(before), self._put(after), time.time())
            self._append(
                {"id": change.id, "path": path, "before": change.before, "after": change.after, "time": change.time}
            )
        return change

    def changes(self) -> list[Change]:
        """Changes not yet undone, oldest first."""
        entries = self._lines()
        undone = {e["undone"] for e in entries if "undone" in e}
        return [
            Change(e["id"], e["path"], e.get("before"), e.get("after"), e.get("time", 0.0))
            for e in entries
            if "path" in e and e["id"] not in undone
        ]

    def undo(self, steps: int = 1) -> list[str]:
        """Take back the last ``steps`` changes, newest first; one line per file restored.

        Stops with an UndoError (after whatever was undone before it) at a file that no longer holds what the
        agent wrote: that file is left exactly as it is.
        """
        if steps < 1:
            raise UndoError("the number of changes to undo must be at least 1")
        done: list[str] = []
        with self._locked():
            pending = self.changes()
            if not pending:
                raise UndoError("nothing to undo: no change made by tui-agent is recorded here")
            for change in reversed(pending[-steps:]):
                target = Path(change.path)
                shown = self.shown(target)
                current = target.read_bytes() if target.is_file() else None
                if (None if current is None else _sha(current)) != change.after:
                    reason = "was deleted" if current is None else "was changed"
                    message = (
                        f"{shown} {reason} after tui-agent's change #{change.id}; undo stops here and leaves it "
                        "as it is (copy what you need, then edit it by hand)."
                    )
                    if done:
                        message = "; ".join(done) + ". " + message
                    raise UndoError(message)
                if change.before is None:
                    target.unlink()
                    done.append(f"removed {shown} (created by change #{change.id})")
                else:
                    data = self._get(change.before)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    tmp = target.with_name(f".{target.name}.tui-agent-undo")
                    tmp.write_bytes(data)
                    with contextlib.suppress(OSError):
                        os.chmod(tmp, target.stat().st_mode if target.exists() else 0o644)
                    os.replace(tmp, target)
                    done.append(f"restored {shown} (change #{change.id})")
                self._append({"undone": change.id, "time": time.time()})
        return done

    def shown(self, target: Path) -> str:
        """A path as the user reads it: relative to the workspace when inside it."""
        try:
            return str(target.relative_to(self.workspace))
        except ValueError:
            return str(target)

"""Undo what a trial run does to the disk, so SAG candidates leave no files behind.

A forked candidate shares the user's file system, so copying the process is not enough: a candidate that writes,
deletes or renames a file would change the workspace before any candidate has won. Inside the fork, an audit hook
(``sys.addaudithook``, which sees every ``open``, ``os.remove``, ``os.rename``... made from Python) writes a
journal *before* each change: a copy of a file about to be changed, or a note that a path is about to be created.
After the fork has ended, however it ended (answer, exception, timeout, crash), the parent replays the journal
backwards and the disk is as it was.

What cannot be undone is refused inside the fork with ``PermissionError``, which makes that candidate fail its
trial (it is then not chosen by agreement): starting other programs (their writes are invisible to the hook),
paths given relative to a directory descriptor, and files or trees too large to copy. Writes made by C code that
bypasses Python's file functions are not seen; those are rare in agent code and listed in the README.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
import threading
from pathlib import Path
from typing import TextIO

MAX_BACKUP_BYTES = 64 * 1024 * 1024
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
UNTRACKED_PREFIXES = ("/dev/", "/proc/", "/sys/")
REFUSED_EVENTS = {
    "subprocess.Popen": "starting other programs",
    "os.system": "starting other programs",
    "os.exec": "starting other programs",
    "os.posix_spawn": "starting other programs",
    "os.spawn": "starting other programs",
    "os.fork": "forking",
    "os.forkpty": "forking",
}
MANIFEST = "journal.jsonl"


class TrialRefused(PermissionError):
    """An operation a trial run cannot take back; the candidate fails its trial instead of touching the disk."""


def _tree_size(path: str, limit: int) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
            if total > limit:
                return total
    return total


class Journal:
    """Write-ahead record of the changes a trial run is about to make, kept in a private directory."""

    def __init__(self, directory: str | Path | None = None, max_backup_bytes: int | None = None) -> None:
        self.directory = str(directory or tempfile.mkdtemp(prefix="tui-agent-trial-"))
        self.max_backup_bytes = MAX_BACKUP_BYTES if max_backup_bytes is None else max_backup_bytes
        self._seen: set[str] = set()
        self._whole: set[str] = set()  # trees kept (or noted absent) as a whole: nothing under them needs a copy
        self._count = 0
        self._busy = threading.local()
        self._manifest: TextIO | None = None

    @property
    def manifest(self) -> str:
        return os.path.join(self.directory, MANIFEST)

    # ---- recording (in the fork) -------------------------------------------------------------------------

    def install(self) -> None:
        """Start watching; an audit hook cannot be removed, so call this only in a process about to end."""
        sys.dont_write_bytecode = True  # imports in the fork must not leave .pyc files to clean up
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple) -> None:
        handler = _HANDLERS.get(event)
        refused = REFUSED_EVENTS.get(event)
        if (handler is None and refused is None) or getattr(self._busy, "active", False):
            return
        self._busy.active = True
        try:
            if refused is not None:
                raise TrialRefused(f"a trial run cannot take back {refused} ({event})")
            handler(self, *args)
        finally:
            self._busy.active = False

    def _path(self, path, dir_fd=None) -> str | None:
        """Absolute path to watch, or None for paths that are not files of the user (descriptors, /dev...)."""
        if isinstance(path, int) or path is None:
            return None
        text = os.fsdecode(path)
        if dir_fd not in (None, -1) and not os.path.isabs(text):
            base = _descriptor_path(dir_fd)
            if base is None:
                raise TrialRefused("a trial run cannot take back changes to paths relative to a directory descriptor")
            text = os.path.join(base, text)
        absolute = os.path.abspath(text)
        if absolute.startswith(UNTRACKED_PREFIXES):
            return None
        if absolute == self.directory or absolute.startswith(self.directory + os.sep):
            return None
        return absolute

    def _covered(self, path: str) -> bool:
        """Inside a tree already kept whole: its rollback, replayed after newer entries, restores this path too."""
        return any(str(parent) in self._whole for parent in Path(path).parents)

    def _append(self, entry: dict) -> None:
        """One line per change, written through before the change happens (a killed fork's lines survive it)."""
        if self._manifest is None:
            self._manifest = open(self.manifest, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives with the fork
        self._manifest.write(json.dumps(entry) + "\n")

    def preserve(self, path: str | None) -> None:
        """Before `path` changes: copy what is there now, or note that nothing is."""
        if path is None or path in self._seen or self._covered(path):
            return
        self._seen.add(path)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            self._append({"op": "absent", "path": path})
            self._whole.add(path)
            return
        except OSError as exc:
            raise TrialRefused(f"a trial run cannot inspect {path}: {exc}") from exc
        self._count += 1
        copy = os.path.join(self.directory, f"{self._count:06d}")
        if stat.S_ISLNK(info.st_mode):
            self._append({"op": "symlink", "path": path, "target": os.readlink(path)})
        elif stat.S_ISDIR(info.st_mode):
            if _tree_size(path, self.max_backup_bytes) > self.max_backup_bytes:
                raise TrialRefused(f"a trial run cannot take back changes to a directory this large: {path}")
            shutil.copytree(path, copy, symlinks=True)
            self._append({"op": "tree", "path": path, "copy": copy})
            self._whole.add(path)
        elif stat.S_ISREG(info.st_mode):
            if info.st_size > self.max_backup_bytes:
                raise TrialRefused(f"a trial run cannot take back changes to a file this large: {path}")
            shutil.copy2(path, copy)
            self._append({"op": "file", "path": path, "copy": copy})
        else:
            raise TrialRefused(f"a trial run cannot take back changes to {path} (not a regular file)")

    # ---- replay (in the parent) --------------------------------------------------------------------------

    def rollback(self) -> list[str]:
        """Put every recorded path back, newest change first; the problems met, as sentences."""
        problems: list[str] = []
        try:
            with open(self.manifest, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except FileNotFoundError:
            lines = []
        entries = []
        for line in lines:
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a killed fork: its change had not started
        for entry in reversed(entries):
            try:
                _restore(entry)
            except OSError as exc:
                problems.append(f"could not restore {entry.get('path')}: {exc}")
        shutil.rmtree(self.directory, ignore_errors=True)
        return problems


def _descriptor_path(fd: int) -> str | None:
    """The directory an open descriptor points at (shutil.rmtree works through these), where the OS can say."""
    try:
        if sys.platform == "darwin":
            import fcntl

            return os.fsdecode(fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(1024)).rstrip(b"\0"))
        target = os.readlink(f"/proc/self/fd/{fd}")
    except (OSError, AttributeError, ImportError):
        return None
    return target if os.path.isabs(target) else None


def _remove(path: str) -> None:
    if os.path.islink(path) or not os.path.isdir(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    else:
        shutil.rmtree(path)


def _restore(entry: dict) -> None:
    path = entry["path"]
    op = entry["op"]
    if op == "absent":
        _remove(path)
        return
    if os.path.lexists(path):
        if op == "file" and os.path.isfile(path) and not os.path.islink(path):
            try:
                shutil.copy2(entry["copy"], path)  # in place: keeps the inode, hard links and open handles
                return
            except PermissionError:
                pass  # made read-only by the trial: replace the file instead
        _remove(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if op == "symlink":
        os.symlink(entry["target"], path)
    elif op == "tree":
        shutil.copytree(entry["copy"], path, symlinks=True)
    else:
        shutil.copy2(entry["copy"], path)


def _on_open(journal: Journal, path, mode, flags, *rest) -> None:
    if isinstance(flags, int) and flags & WRITE_FLAGS:
        journal.preserve(journal._path(path))


def _paths_at(*positions: tuple[int, int | None]):
    """A handler for an event whose arguments hold paths: (index of the path, index of its dir_fd or None)."""

    def handler(journal: Journal, *args) -> None:
        for path_at, fd_at in positions:
            dir_fd = args[fd_at] if fd_at is not None and fd_at < len(args) else None
            journal.preserve(journal._path(args[path_at], dir_fd))

    return handler


def _on_mkdir(journal: Journal, path, mode=None, dir_fd=None, *rest) -> None:
    target = journal._path(path, dir_fd)
    if target is not None and not os.path.lexists(target):  # mkdir on an existing path changes nothing
        journal.preserve(target)


def _on_chmod(journal: Journal, path, mode=None, dir_fd=None, *rest) -> None:
    target = journal._path(path, dir_fd)
    if target is not None and os.path.isfile(target):  # a file's copy keeps its mode; directories are left be
        journal.preserve(target)


def _on_sqlite(journal: Journal, database, *rest) -> None:
    path = journal._path(database) if database not in (":memory:", b":memory:", "") else None
    if path is None:
        return
    for suffix in ("", "-journal", "-wal", "-shm"):
        journal.preserve(path + suffix)


# Argument layouts are those of Python's audit events table (docs: "Audit events table").
_HANDLERS = {
    "open": _on_open,
    "os.remove": _paths_at((0, 1)),
    "os.rmdir": _paths_at((0, 1)),
    "shutil.rmtree": _paths_at((0, 1)),
    "os.rename": _paths_at((0, 2), (1, 3)),
    "os.link": _paths_at((1, 3)),
    "os.symlink": _paths_at((1, 2)),
    "os.truncate": _paths_at((0, None)),
    "os.mkdir": _on_mkdir,
    "os.chmod": _on_chmod,
    "sqlite3.connect": _on_sqlite,
}

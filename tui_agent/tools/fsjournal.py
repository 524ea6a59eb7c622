"""Undo what a trial run does to the disk, so SAG candidates leave no files behind.

A forked candidate shares the user's file system, so copying the process is not enough: a candidate that writes,
deletes or renames a file would change the workspace before any candidate has won. Inside the fork, an audit hook
(``sys.addaudithook``, which sees every ``open``, ``os.remove``, ``os.rename``, ``os.utime``... made from Python)
writes a journal *before* each change: a copy of a file about to be changed (the file a symlink points to, when the
change goes through the link), a note that a path is about to be created, or a file's mode and times. Files the
kernel had open for writing before the fork are copied first, since writes through them raise no event. After the
fork has ended, however it ended (answer, exception, timeout, crash), the parent replays the journal backwards and
the disk is as it was; a journal left by a kernel that died mid-trial is replayed when the next kernel starts
(``recover``). Where the workspace is seen through a copy-on-write overlay (see ``forkrun``), changes under it
need no journal.

What cannot be undone is refused inside the fork with ``PermissionError``, which makes that candidate fail its
trial (it is then not chosen by agreement): starting other programs (their writes are invisible to the hook),
network access and name lookups (a request cannot be taken back), paths relative to a directory descriptor the OS
cannot name, and files or trees too large to copy. Writes made by C code that bypasses Python's file functions are
not seen outside an overlay; those are rare in agent code and listed in the README.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
import threading
from collections.abc import Iterable
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
    "pty.spawn": "starting other programs",
    "os.setxattr": "changing extended attributes",
    "os.removexattr": "changing extended attributes",
    "os.chflags": "changing file flags",
    "socket.connect": "network access",
    "socket.sendto": "network access",
    "socket.sendmsg": "network access",
    "socket.bind": "network access",
    "socket.getaddrinfo": "network access (a name lookup)",
    "socket.gethostbyname": "network access (a name lookup)",
    "socket.gethostbyaddr": "network access (a name lookup)",
    "socket.getnameinfo": "network access (a name lookup)",
    "webbrowser.open": "opening a browser",
}
MANIFEST = "journal.jsonl"
LOCK = "lock"
# Databases whose owners open their own connection in a forked child and never touch the inherited one (the code
# index): their open files are not copied before a trial. Paths are the database's; -wal/-shm/-journal go along.
FORK_SAFE_DATABASES: set[str] = set()


def fork_safe(database: str | os.PathLike) -> None:
    """Declare that a forked child never writes through this process's open connection to `database`."""
    FORK_SAFE_DATABASES.add(os.path.realpath(database))


def _fork_safe(path: str) -> bool:
    for suffix in ("", "-wal", "-shm", "-journal", ".open"):  # .open: the index's open-mark (a held lock)
        if suffix and not path.endswith(suffix):
            continue
        if (path[: -len(suffix)] if suffix else path) in FORK_SAFE_DATABASES:
            return True
    return False


def trials_root() -> Path:
    """Where trial journals live while a trial runs (and after a crash, until the next kernel replays them)."""
    from tui_agent.config import data_dir

    root = data_dir() / "trials"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _lock(directory: str) -> int | None:
    """An exclusive lock on a journal, held while its trial may still write; None if held elsewhere or gone."""
    import fcntl

    try:
        fd = os.open(os.path.join(directory, LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        return None  # replayed and removed by another process meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def recover(root: str | Path | None = None) -> list[str]:
    """Replay the journals of trials whose process is gone (a kernel that died mid-trial); sentences for the user."""
    root = Path(root) if root is not None else trials_root()
    messages: list[str] = []
    for entry in sorted(root.iterdir()) if root.is_dir() else []:
        if entry.name.startswith(".") or not entry.is_dir():
            continue  # a journal being set up
        fd = _lock(str(entry))
        if fd is None:
            continue  # its trial is still running
        try:
            journal = Journal(entry)
            recorded = os.path.exists(journal.manifest)
            problems = journal.rollback()
        finally:
            os.close(fd)
        if recorded:
            messages.append(f"An interrupted trial run was undone ({entry.name}).")
        messages += problems
    return messages


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
        self._lock_fd: int | None = None
        if directory is None:
            # Set up under a dot name with its lock held, then renamed: recovery never sees it half made.
            staging = tempfile.mkdtemp(prefix=".trial-", dir=trials_root())
            self._lock_fd = _lock(staging)
            directory = os.path.join(os.path.dirname(staging), os.path.basename(staging)[1:])
            os.rename(staging, directory)
        self.directory = os.path.realpath(directory)
        self.max_backup_bytes = MAX_BACKUP_BYTES if max_backup_bytes is None else max_backup_bytes
        self.isolated: str | None = None  # a tree under a copy-on-write overlay: its changes need no journal
        self._seen: set[str] = set()
        self._attrs_seen: set[str] = set()
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
        from tui_agent.tools.sandbox import block_program_starts

        sys.dont_write_bytecode = True  # imports in the fork must not leave .pyc files to clean up
        sys.addaudithook(self._hook)
        block_program_starts(lambda: TrialRefused("a trial run cannot take back starting other programs"))

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

    def isolate(self, tree: str) -> None:
        """Changes under `tree` are already isolated (an overlay): journal only what lies outside it."""
        self.isolated = os.path.realpath(tree)

    def _path(self, path, dir_fd=None, *, follow: bool = False) -> str | None:
        """The real path a change lands on, or None for paths that are not files of the user (descriptors, /dev...).

        Directory symlinks on the way are resolved, and with `follow` a symlink at the end too: a write through a
        link changes its target, which may lie anywhere, so the target is what gets saved.
        """
        if isinstance(path, int) or path is None:
            return None
        text = os.fsdecode(path)
        through_descriptor = dir_fd not in (None, -1) and not os.path.isabs(text)
        if through_descriptor:
            base = _descriptor_path(dir_fd)
            if base is None:
                raise TrialRefused("a trial run cannot take back changes to paths relative to a directory descriptor")
            text = os.path.join(base, text)
        absolute = os.path.abspath(text)
        if absolute.startswith(UNTRACKED_PREFIXES):
            return None
        if follow:
            absolute = os.path.realpath(absolute)
        else:
            head, tail = os.path.split(absolute)
            absolute = os.path.join(os.path.realpath(head), tail) if tail else os.path.realpath(absolute)
        if absolute.startswith(UNTRACKED_PREFIXES) or _inside(absolute, self.directory):
            return None
        if self.isolated and not through_descriptor and _inside(absolute, self.isolated):
            return None  # seen through the overlay; a descriptor opened before the fork reaches the real directory
        return absolute

    def _covered(self, path: str) -> bool:
        """Inside a tree already kept whole: its rollback, replayed after newer entries, restores this path too."""
        return any(str(parent) in self._whole for parent in Path(path).parents)

    def _append(self, entry: dict) -> None:
        """One line per change, written through before the change happens (a killed fork's lines survive it)."""
        if self._manifest is None:
            self._manifest = open(self.manifest, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives with the fork
        self._manifest.write(json.dumps(entry) + "\n")

    def preserve_attributes(self, path: str | None) -> None:
        """Before a path's mode, owner or times change: note them (a directory's too, which a copy would not keep)."""
        if path is None or path in self._attrs_seen or self._covered(path):
            return
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return  # nothing to change: the call will fail
        except OSError as exc:
            raise TrialRefused(f"a trial run cannot inspect {path}: {exc}") from exc
        self._attrs_seen.add(path)
        self._append(
            {
                "op": "attrs", "path": path, "mode": stat.S_IMODE(info.st_mode), "uid": info.st_uid,
                "gid": info.st_gid, "atime_ns": info.st_atime_ns, "mtime_ns": info.st_mtime_ns,
            }
        )  # fmt: skip

    def preserve_open_files(self, exclude: Iterable[int] = ()) -> None:
        """Copy the files this process had open for writing before the trial: writes through them raise no event."""
        import fcntl

        skip = set(exclude)
        for fd in _open_descriptors():
            if fd in skip:
                continue
            try:
                info = os.fstat(fd)
                writable = (fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE) != os.O_RDONLY
            except OSError:
                continue
            if not (writable and stat.S_ISREG(info.st_mode)):
                continue
            path = _descriptor_path(fd)
            if path is None or not os.path.isfile(path):
                continue  # deleted or unnamed: nobody can see what is written to it
            if _fork_safe(os.path.realpath(path)):
                continue
            self.preserve(self._path(path, follow=True), overlay_too=True)

    def preserve(self, path: str | None, *, overlay_too: bool = False) -> None:
        """Before `path` changes: copy what is there now, or note that nothing is."""
        if path is None or path in self._seen or self._covered(path):
            return
        self._seen.add(path)
        parent = os.path.dirname(path)
        if parent != path and not (self.isolated and _inside(parent, self.isolated) and not overlay_too):
            self.preserve_attributes(parent)  # its times change with its entries
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
        """Put every recorded path back, newest change first; the problems met, as sentences; the journal goes."""
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
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        return problems


def _inside(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip(os.sep) + os.sep)


def _open_descriptors() -> list[int]:
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            return sorted(int(name) for name in os.listdir(listing) if name.isdigit())
        except OSError:
            continue
    return list(range(3, 1024))


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


def _restore_attributes(entry: dict) -> None:
    path = entry["path"]
    if not os.path.exists(path):
        return
    if os.geteuid() == 0 or os.stat(path).st_uid != entry["uid"]:
        try:
            os.chown(path, entry["uid"], entry["gid"])
        except PermissionError:
            pass  # only root can give a file away; a trial could not have taken it either
    os.chmod(path, entry["mode"])
    os.utime(path, ns=(entry["atime_ns"], entry["mtime_ns"]))


def _restore(entry: dict) -> None:
    path = entry["path"]
    op = entry["op"]
    if op == "attrs":
        _restore_attributes(entry)
        return
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
        journal.preserve(journal._path(path, follow=True))


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


def _on_attributes(journal: Journal, path, *args) -> None:
    """chmod, chown, utime: (path, ..., dir_fd); they follow a symlink at the end by default."""
    dir_fd = args[-1] if args and isinstance(args[-1], int) else None
    journal.preserve_attributes(journal._path(path, dir_fd, follow=True))


def _on_truncate(journal: Journal, path, *rest) -> None:
    journal.preserve(journal._path(path, follow=True))


def _on_sqlite(journal: Journal, database, *rest) -> None:
    path = journal._path(database, follow=True) if database not in (":memory:", b":memory:", "") else None
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
    "os.truncate": _on_truncate,
    "os.mkdir": _on_mkdir,
    "os.mkfifo": _paths_at((0, 2)),
    "os.mknod": _paths_at((0, 3)),
    "os.chmod": _on_attributes,
    "os.chown": _on_attributes,
    "os.utime": _on_attributes,
    "sqlite3.connect": _on_sqlite,
}

"""The index's SQLite file: where it lives, its schema, and rebuilding it when it is old or corrupt.

One database per workspace, in ``<workspace>/.tui-agent/index.sqlite`` (a ``.gitignore`` of ``*`` keeps it out of
git), or in the cache directory when the workspace is read-only. WAL mode lets readers query while a refresh
writes; a lock file (``index.sqlite.lock``, through ``filelock``) serialises refreshes and rebuilds across
processes. Every process with the index open holds a shared lock on ``index.sqlite.open``: a rebuild deletes the
file only when it can take that lock exclusively, so a database another process has open is never deleted under it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

SCHEMA_VERSION = 3
LOCK_TIMEOUT_S = 300.0
# Chunk rowids are file_id << CHUNK_BITS | chunk number, so one file's chunks are a rowid range.
CHUNK_BITS = 16

log = logging.getLogger(__name__)

SCHEMA = f"""
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files(
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL,
    language TEXT,
    lines INTEGER NOT NULL DEFAULT 0,
    skip TEXT NOT NULL DEFAULT ''
);
CREATE TABLE symbols(
    file_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    signature TEXT NOT NULL,
    scope TEXT NOT NULL
);
CREATE INDEX symbols_name ON symbols(name COLLATE NOCASE);
CREATE INDEX symbols_file ON symbols(file_id);
CREATE TABLE refs(
    file_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    count INTEGER NOT NULL,
    lines TEXT NOT NULL
);
CREATE INDEX refs_name ON refs(name);
CREATE INDEX refs_file ON refs(file_id);
CREATE VIRTUAL TABLE chunks USING fts5(
    path, body, start_line UNINDEXED, end_line UNINDEXED, tokenize = "unicode61 remove_diacritics 0"
);
CREATE TABLE cache(key TEXT PRIMARY KEY, generation INTEGER NOT NULL, value BLOB NOT NULL);
INSERT INTO meta VALUES ('generation', '0');
PRAGMA user_version = {SCHEMA_VERSION};
"""


class IndexUnavailable(Exception):
    """An index that cannot be opened or built; the message says which path and why."""


class IndexBusy(IndexUnavailable):
    """Another process is refreshing the index right now (only raised when asked not to wait)."""


def index_path(workspace: Path) -> Path:
    """Where a workspace's index lives: its own ``.tui-agent/`` when writable, else the user cache."""
    workspace = Path(workspace).resolve()
    local = workspace / ".tui-agent"
    try:
        local.mkdir(exist_ok=True)
        ignore = local / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n", encoding="utf-8")
        if os.access(local, os.W_OK):
            return local / "index.sqlite"
    except OSError:
        pass
    from tui_agent.config import cache_dir

    key = hashlib.sha1(str(workspace).encode()).hexdigest()[:16]
    folder = cache_dir() / "indexes" / f"{workspace.name}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "index.sqlite"


def connect(path: Path) -> sqlite3.Connection:
    """A connection tuned for the index: WAL, relaxed fsync, long busy wait; autocommit (explicit BEGIN)."""
    conn = sqlite3.connect(path, timeout=LOCK_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA cache_size=-32000")
    return conn


def open_index(path: Path, notices: list[str], mark: OpenMark) -> sqlite3.Connection:
    """Open the index, creating it when new and rebuilding it (with a notice) when old or corrupt.

    ``mark`` is this process's hold on the index; a rebuild happens only when no other process holds it.
    """
    path = Path(path)
    if path.exists():  # the common case needs no lock: an up-to-date index opens while a refresh runs
        conn = None
        try:
            conn = connect(path)
            if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
                return conn
        except sqlite3.DatabaseError:
            pass
        if conn is not None:
            conn.close()
    with file_lock(path):
        message = ""
        try:
            conn = connect(path)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if version == SCHEMA_VERSION:
                conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
                return conn
            if not tables:  # new (or left empty): nothing to delete, the schema goes in place
                conn.executescript(SCHEMA)
                return conn
            conn.close()
            message = f"Index {path} has schema v{version}, this version uses v{SCHEMA_VERSION}: rebuilding."
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(Exception):
                conn.close()
            message = f"Index {path} is unreadable ({exc}): rebuilding."
        return rebuild(path, mark, notices, message)


def rebuild(path: Path, mark: OpenMark, notices: list[str], message: str) -> sqlite3.Connection:
    """A fresh, empty index in place of the one at ``path`` (call under ``file_lock``), with ``message`` as a
    notice; IndexUnavailable, and nothing deleted, while another process has the old one open."""
    with mark.alone() as alone:
        if not alone:
            raise IndexUnavailable(
                f"Index {path} needs rebuilding, but another process has it open; it is rebuilt once that one closes it"
            )
        _notice(notices, message)
        remove_database(path)
        conn = connect(path)
        conn.executescript(SCHEMA)
        return conn


class OpenMark:
    """This process's shared lock on ``<db>.open``, held while it has the index open.

    A rebuild deletes the database only after turning its own lock exclusive, which succeeds only when no other
    process holds one. (Without ``fcntl``, on Windows, the system itself refuses to delete an open file.)
    """

    def __init__(self, db_path: Path) -> None:
        self._handle = None
        try:
            import fcntl
        except ImportError:
            return
        self._handle = open(f"{db_path}.open", "a+")  # noqa: SIM115 - held until close()
        fcntl.flock(self._handle.fileno(), fcntl.LOCK_SH)

    @contextlib.contextmanager
    def alone(self) -> Iterator[bool]:
        """Whether no other process has the index open, holding that true for the block (call under file_lock)."""
        if self._handle is None:
            yield True
            return
        import fcntl

        try:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
        try:
            yield alone
        finally:  # back to shared; no other process can hold it exclusively while we hold file_lock
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_SH)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def remove_database(path: Path) -> None:
    """Delete an index file with its WAL and shared-memory companions."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


def generation(conn: sqlite3.Connection) -> int:
    """A counter bumped by every refresh that changed something: the key of cached results."""
    return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


@contextlib.contextmanager
def file_lock(db_path: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the exclusive lock next to the database while building or refreshing it; IndexBusy after ``timeout``
    seconds (0: do not wait)."""
    from filelock import FileLock, Timeout

    lock = FileLock(f"{db_path}.lock", timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise IndexBusy(f"{db_path}.lock: another process holds the index lock") from None
    try:
        yield
    finally:
        lock.release()


def _notice(notices: list[str], message: str) -> None:
    log.warning(message)
    notices.append(message)

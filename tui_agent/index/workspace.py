"""One workspace's index: open it (rebuilding when old or corrupt), refresh it, report on it."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from tui_agent.index.refresh import Progress, RefreshStats, refresh
from tui_agent.index.store import (
    LOCK_TIMEOUT_S,
    IndexUnavailable,
    OpenMark,
    connect,
    file_lock,
    index_path,
    open_index,
    rebuild,
)

log = logging.getLogger(__name__)
_INHERITED: list[sqlite3.Connection] = []  # a forked child's copies of its parent's connections: kept, never used


@dataclass
class IndexStatus:
    """Counts shown by ``tui-agent index --status``."""

    root: str
    database: str
    files: int
    skipped: int
    symbols: int
    references: int
    chunks: int
    bytes: int
    generation: int


class WorkspaceIndex:
    """The index of the files under ``root``; safe to share between processes."""

    def __init__(self, root: Path | str, db_path: Path | None = None):
        root = Path(root).expanduser()
        if not root.exists():
            raise IndexUnavailable(f"{root}: no such directory")
        if not root.is_dir():
            raise IndexUnavailable(f"{root}: not a directory")
        self.root = root.resolve()
        self.db_path = Path(db_path) if db_path else index_path(self.root)
        self.notices: list[str] = []
        self._mark = OpenMark(self.db_path)
        try:
            self.conn = open_index(self.db_path, self.notices, self._mark)
        except BaseException:
            self._mark.close()
            raise
        from tui_agent.tools.fsjournal import fork_safe

        fork_safe(self.db_path)  # a trial run (a fork) opens its own connection: see `conn`

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection; a forked child (a trial run) opens its own, since SQLite connections must not cross
        fork(). The inherited one is neither used nor closed there: closing it could touch the parent's locks."""
        if self._pid != os.getpid():
            _INHERITED.append(self._conn)
            self._conn = connect(self.db_path)  # a trial only reads and writes rows; it never rebuilds
            self._pid = os.getpid()
        return self._conn

    @conn.setter
    def conn(self, value: sqlite3.Connection) -> None:
        self._conn, self._pid = value, os.getpid()

    def refresh(
        self, progress: Progress | None = None, workers: int | None = None, wait: float = LOCK_TIMEOUT_S
    ) -> RefreshStats:
        """Re-index what changed; a database found corrupt on the way is rebuilt from scratch once.

        ``wait``: seconds to wait while another process refreshes (then IndexBusy); 0 returns at once.
        """
        try:
            stats = refresh(self.conn, self.db_path, self.root, progress, workers, wait)
        except sqlite3.DatabaseError as exc:
            self.recover(exc)
            stats = refresh(self.conn, self.db_path, self.root, progress, workers)
        self.notices.extend(n for n in stats.notices if n not in self.notices)
        stats.notices = list(self.notices)
        return stats

    def recover(self, exc: sqlite3.DatabaseError) -> None:
        """Start a fresh database after ``exc`` showed this one damaged (call refresh() next to fill it).

        Nothing is deleted while another process has the database open: that is IndexUnavailable, and the
        next lookup tries again.
        """
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise IndexUnavailable(f"{self.db_path}: database is locked by another process") from exc
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        with file_lock(self.db_path):
            try:
                message = f"Index {self.db_path} is damaged ({exc}): rebuilding."
                self.conn = rebuild(self.db_path, self._mark, self.notices, message)
            except IndexUnavailable:
                self.conn = connect(self.db_path)  # keep a handle, so status() and the next lookup still work
                raise

    def status(self) -> IndexStatus:
        """How much the index holds and how big it is on disk."""

        def count(sql: str) -> int:
            return int(self.conn.execute(sql).fetchone()[0] or 0)

        size = sum(p.stat().st_size for p in self.db_path.parent.glob(self.db_path.name + "*") if p.is_file())
        return IndexStatus(
            root=str(self.root),
            database=str(self.db_path),
            files=count("SELECT count(*) FROM files WHERE skip = ''"),
            skipped=count("SELECT count(*) FROM files WHERE skip != ''"),
            symbols=count("SELECT count(*) FROM symbols"),
            references=count("SELECT sum(count) FROM refs"),
            chunks=count("SELECT count(*) FROM chunks"),
            bytes=size,
            generation=count("SELECT value FROM meta WHERE key = 'generation'"),
        )

    def close(self) -> None:
        self.conn.close()
        self._mark.close()

"""Bring the index up to date with the files on disk, re-parsing only what changed.

A file is re-read only when its size or mtime changed, and re-parsed only when its content hash changed too.
Deleted files leave the index. All writes of one refresh happen in one transaction, under the index lock, so a
second process refreshing at the same time waits and then finds nothing left to do.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

from tui_agent.index.extract import FileResult, digest, extract_path
from tui_agent.index.store import CHUNK_BITS, LOCK_TIMEOUT_S, file_lock
from tui_agent.index.walk import MAX_FILES, FileStat, walk

POOL_MIN_FILES = 48  # below this, a process pool costs more than it saves
Progress = Callable[[int, int], None]


@dataclass
class RefreshStats:
    """What one refresh did."""

    added: int = 0
    changed: int = 0
    removed: int = 0
    touched: int = 0  # mtime changed, content did not
    unchanged: int = 0
    seconds: float = 0.0
    notices: list[str] = field(default_factory=list)

    @property
    def modified(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def default_workers() -> int:
    """Parse processes for a cold build: one per core, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


def refresh(
    conn: sqlite3.Connection,
    db_path: Path,
    root: Path,
    progress: Progress | None = None,
    workers: int | None = None,
    wait: float = LOCK_TIMEOUT_S,
) -> RefreshStats:
    """Update the index at ``conn`` to match the files under ``root``; wait up to ``wait`` s for the lock."""
    started = time.perf_counter()
    with file_lock(db_path, timeout=wait):
        stats = _refresh_locked(conn, Path(root), progress, workers or default_workers())
    stats.seconds = time.perf_counter() - started
    return stats


def _refresh_locked(conn: sqlite3.Connection, root: Path, progress: Progress | None, workers: int) -> RefreshStats:
    stats = RefreshStats()
    walked = walk(root)
    if len(walked) >= MAX_FILES:
        stats.notices.append(f"{root} has more than {MAX_FILES} files: only the first {MAX_FILES} are indexed.")
    known = {row[0]: row[1:] for row in conn.execute("SELECT path, id, size, mtime_ns, digest FROM files")}
    to_parse: list[FileStat] = []
    touched: list[tuple[int, int, int]] = []
    for stat in walked:
        row = known.get(stat.path)
        if row is None:
            to_parse.append(stat)
        elif row[1] == stat.size and row[2] == stat.mtime_ns:
            stats.unchanged += 1
        elif _same_content(root / stat.path, row[3]):
            touched.append((stat.size, stat.mtime_ns, row[0]))
        else:
            to_parse.append(stat)
    present = {stat.path for stat in walked}
    removed = [row[0] for path, row in known.items() if path not in present]
    stats.touched, stats.removed = len(touched), len(removed)
    if not (to_parse or touched or removed):
        return stats

    conn.execute("BEGIN IMMEDIATE")
    try:
        for file_id in removed:
            _delete_contents(conn, file_id)
            conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
        conn.executemany("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", touched)
        total = len(to_parse)
        for done, (stat, result) in enumerate(_parse_all(root, to_parse, workers), start=1):
            old = known.get(stat.path)
            _store(conn, stat, result, old[0] if old else None)
            if old:
                stats.changed += 1
            else:
                stats.added += 1
            if progress is not None:
                progress(done, total)
        if stats.modified:
            conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if len(to_parse) >= POOL_MIN_FILES:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # fold a big build into the main file
    return stats


def _same_content(path: Path, old_digest: str) -> bool:
    try:
        return digest(path.read_bytes()) == old_digest
    except OSError:
        return False


def _parse_all(root: Path, stats: list[FileStat], workers: int) -> Iterator[tuple[FileStat, FileResult]]:
    """Extract files in a process pool when there are many of them, else inline."""
    paths = [s.path for s in stats]
    if workers <= 1 or len(paths) < POOL_MIN_FILES:
        for stat in stats:
            yield stat, _safe_extract(str(root), stat.path)
        return
    context = multiprocessing.get_context(_start_method())
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield from zip(stats, pool.map(_safe_extract, repeat(str(root)), paths, chunksize=8), strict=True)


def _start_method() -> str:
    """Fork is fastest but unsafe once threads exist (a Jupyter kernel has several): then spawn."""
    if sys.platform == "linux" and threading.active_count() == 1:
        return "fork"
    return "spawn"


def _safe_extract(root: str, rel: str) -> FileResult:
    """A grammar bug in one file must not stop the whole build: record it as skipped."""
    try:
        return extract_path(root, rel)
    except Exception as exc:  # noqa: BLE001 - any failure in one file is that file's problem only
        return FileResult(rel, "", skip=f"error: {type(exc).__name__}: {exc}")


def _delete_contents(conn: sqlite3.Connection, file_id: int) -> None:
    conn.execute("DELETE FROM symbols WHERE file_id = ?", (file_id,))
    conn.execute("DELETE FROM refs WHERE file_id = ?", (file_id,))
    low = file_id << CHUNK_BITS
    conn.execute("DELETE FROM chunks WHERE rowid BETWEEN ? AND ?", (low, low + (1 << CHUNK_BITS) - 1))


def _store(conn: sqlite3.Connection, stat: FileStat, result: FileResult, file_id: int | None) -> None:
    row = (stat.size, stat.mtime_ns, result.digest, result.language, result.lines, result.skip)
    if file_id is None:
        cursor = conn.execute(
            "INSERT INTO files(path, size, mtime_ns, digest, language, lines, skip) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (stat.path, *row),
        )
        file_id = cursor.lastrowid
    else:
        _delete_contents(conn, file_id)
        conn.execute(
            "UPDATE files SET size = ?, mtime_ns = ?, digest = ?, language = ?, lines = ?, skip = ? WHERE id = ?",
            (*row, file_id),
        )
    if result.symbols:
        conn.executemany(
            "INSERT INTO symbols(file_id, name, kind, line, end_line, signature, scope) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(file_id, *sym) for sym in result.symbols],
        )
    if result.refs:
        conn.executemany(
            "INSERT INTO refs(file_id, name, count, lines) VALUES (?, ?, ?, ?)",
            [(file_id, *ref) for ref in result.refs],
        )
    if result.chunks:
        base = file_id << CHUNK_BITS
        conn.executemany(
            "INSERT INTO chunks(rowid, path, body, start_line, end_line) VALUES (?, ?, ?, ?, ?)",
            [(base + i, stat.path, body, start, end) for i, (start, end, body) in enumerate(result.chunks)],
        )

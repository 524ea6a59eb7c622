"""The sha256 of a model or adapter file, remembered between runs.

A trajectory names the exact weights that made it. Hashing a 1 GB file takes seconds, so the digest is kept in the
cache directory, keyed by path, size and modification time: a changed file is hashed again, an unchanged one never.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tui_agent.config import cache_dir
from tui_agent.models.verify import sha256_file


def _store() -> Path:
    return cache_dir() / "file-hashes.json"


def file_sha256(path: Path, *, known: str | None = None) -> str:
    """The file's sha256; ``known`` (a registry's checked value) is trusted as is."""
    if known:
        return known.lower()
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    store = _store()
    try:
        table = json.loads(store.read_text(encoding="utf-8"))
        if not isinstance(table, dict):
            table = {}
    except (OSError, ValueError):
        table = {}
    if key in table:
        return table[key]
    digest = sha256_file(path)
    table = {k: v for k, v in table.items() if not k.startswith(f"{path}|")}
    table[key] = digest
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table, indent=0), encoding="utf-8")
        tmp.replace(store)
    except OSError:  # a read-only cache only costs a re-hash next time
        pass
    return digest

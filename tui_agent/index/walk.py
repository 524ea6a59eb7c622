"""Find the files worth indexing: respect .gitignore files (nested ones too) and skip the usual noise.

Only ``stat`` happens here; content checks (binary, generated) happen when a file is read for extraction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_BYTES = 1_000_000
MAX_FILES = 100_000  # a workspace bigger than this (a home directory?) is indexed only in part

IGNORED_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".tui-agent", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".nox",
        ".mypy_cache", ".pytest_cache", ".ruff_cache", ".idea", ".vscode", ".cache", ".eggs", "dist", "build",
        "target", ".next", ".gradle", "bower_components", ".terraform", "site-packages",
    }
)  # fmt: skip

# Files whose names say they are binary, generated or vendored noise.
IGNORED_SUFFIXES = (
    ".pyc", ".pyo", ".so", ".o", ".a", ".dll", ".dylib", ".exe", ".bin", ".class", ".jar", ".war", ".whl",
    ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".tar", ".rar", ".png", ".jpg", ".jpeg", ".gif",
    ".bmp", ".ico", ".webp", ".tiff", ".pdf", ".mp3", ".mp4", ".wav", ".ogg", ".flac", ".avi", ".mov", ".woff",
    ".woff2", ".ttf", ".otf", ".eot", ".sqlite", ".sqlite3", ".db", ".gguf", ".safetensors", ".pt", ".pth",
    ".onnx", ".npy", ".npz", ".pkl", ".pickle", ".min.js", ".min.css", ".map", ".lock", ".svgz", ".DS_Store",
)  # fmt: skip
IGNORED_NAMES = frozenset({"package-lock.json", "pnpm-lock.yaml", "yarn.lock", "Cargo.lock", "poetry.lock"})


@dataclass(frozen=True)
class FileStat:
    """A candidate file: its path relative to the root (always with '/'), size and modification time."""

    path: str
    size: int
    mtime_ns: int


def walk(root: Path, max_bytes: int = MAX_FILE_BYTES, max_files: int = MAX_FILES) -> list[FileStat]:
    """Every indexable file under ``root`` (the first ``max_files`` in name order), sorted by path."""
    root = Path(root)
    found: list[FileStat] = []
    specs = []
    exclude = _gitignore(os.path.join(root, ".git", "info", "exclude"))
    if exclude is not None:
        specs.append(("", exclude))
    _walk(str(root), "", specs, found, max_bytes, max_files)
    found.sort(key=lambda f: f.path)
    return found


def _walk(top: str, rel: str, specs: list, found: list[FileStat], max_bytes: int, max_files: int) -> None:
    """Scan one directory; ``specs`` holds (base, GitIgnoreSpec) for every .gitignore above and here."""
    try:
        entries = sorted(os.scandir(top), key=lambda e: e.name)
    except OSError:
        return
    spec = _gitignore(os.path.join(top, ".gitignore"))
    if spec is not None:
        specs = [*specs, (rel, spec)]
    for entry in entries:
        if len(found) >= max_files:
            return
        name = entry.name
        path = f"{rel}{name}"
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            is_file = not is_dir and entry.is_file(follow_symlinks=False)
        except OSError:
            continue
        if is_dir:
            if name in IGNORED_DIRS or name.endswith(".egg-info") or _ignored(specs, path + "/"):
                continue
            _walk(entry.path, path + "/", specs, found, max_bytes, max_files)
        elif is_file:
            if name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES) or _ignored(specs, path):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if 0 < st.st_size <= max_bytes:
                found.append(FileStat(path, st.st_size, st.st_mtime_ns))


def _ignored(specs: list, path: str) -> bool:
    """Apply .gitignore files from the outermost in; a deeper file may re-include with '!'."""
    ignored = False
    for base, spec in specs:
        if not path.startswith(base):
            continue
        result = spec.check_file(path[len(base) :])
        if result.include is not None:
            ignored = result.include
    return ignored


def _gitignore(path: str):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)

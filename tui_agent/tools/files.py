"""Workspace file tools for the kernel prelude: read a file, and a plain text search when no code index exists.

Everything stays inside the workspace: a path that resolves outside it (``..``, an absolute path, a symlink
pointing away) is refused, so the model cannot read the user's other files through these tools.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

MAX_LINES = 400
MAX_FILE_BYTES = 2_000_000
SKIP_DIRS = {
    ".git", ".hg", ".svn", ".venv", "venv", "env", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", ".tox", "build", "dist", ".tui-agent", ".idea", ".vscode",
}  # fmt: skip
SYMBOL_RE = r"^\s*(?:async\s+def|def|class|function|fn|func|struct|enum|interface|trait|type|const|let|var)\s+{name}\b"


class OutsideWorkspace(ValueError):
    """A path that leaves the workspace."""


def resolve_in(workspace: Path, path: str | os.PathLike) -> Path:
    """The real path of `path` (relative to the workspace), refusing anything that resolves outside it."""
    root = Path(workspace).resolve()
    target = (root / Path(path).expanduser()).resolve()
    if target != root and root not in target.parents:
        raise OutsideWorkspace(f"{path} is outside the workspace {root}; only files inside it can be read.")
    return target


def _is_binary(data: bytes) -> bool:
    return b"\0" in data[:8192]


def read_file(workspace: Path, path: str, start: int = 1, end: int | None = None) -> str:
    """Lines start..end (1-based, inclusive) of a workspace file, each prefixed with its number."""
    try:
        target = resolve_in(workspace, path)
    except OutsideWorkspace as exc:
        return f"read_file refused: {exc}"
    if not target.exists():
        return f"read_file: {path} does not exist (paths are relative to the workspace {Path(workspace)})."
    if target.is_dir():
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in target.iterdir())
        return f"read_file: {path} is a directory; it contains: " + ", ".join(entries[:100])
    if target.stat().st_size > MAX_FILE_BYTES * 10:
        return f"read_file: {path} is too large ({target.stat().st_size} bytes)."
    data = target.read_bytes()
    if _is_binary(data):
        return f"read_file: {path} is a binary file ({len(data)} bytes); it cannot be shown as text."
    lines = data.decode("utf-8", errors="replace").splitlines()
    total = len(lines)
    try:
        start = max(1, int(start))
        end = total if end is None else min(int(end), total)
    except (TypeError, ValueError):
        return "read_file: start and end must be line numbers (integers)."
    if total == 0:
        return f"{path} is empty."
    if start > total:
        return f"read_file: {path} has only {total} lines; start={start} is past the end."
    if end < start:
        return f"read_file: end ({end}) is before start ({start})."
    shown_end = min(end, start + MAX_LINES - 1)
    width = len(str(shown_end))
    body = "\n".join(f"{n:>{width}}  {lines[n - 1]}" for n in range(start, shown_end + 1))
    if shown_end < end:
        body += f"\n[... lines {shown_end + 1}-{end} not shown; call read_file({path!r}, {shown_end + 1}, {end}) ...]"
    return f"{path} (lines {start}-{shown_end} of {total})\n{body}"


def iter_text_files(workspace: Path) -> Iterator[Path]:
    """Text files of the workspace, skipping VCS, virtualenv, cache and build folders."""
    root = Path(workspace)
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            try:
                if path.is_symlink() or path.stat().st_size > MAX_FILE_BYTES:
                    continue
                with path.open("rb") as fh:
                    if _is_binary(fh.read(8192)):
                        continue
            except OSError:
                continue
            yield path


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def search_text(workspace: Path, query: str, k: int = 5) -> str:
    """Plain text search: files ranked by how many query words they contain, with their best matching lines."""
    words = [w.lower() for w in re.findall(r"\w+", query or "")]
    if not words:
        return "search_code needs a query with at least one word."
    scored = []
    for path in iter_text_files(workspace):
        lines = _lines(path)
        hits = []
        for n, line in enumerate(lines, 1):
            low = line.lower()
            score = sum(w in low for w in words)
            if score:
                hits.append((score, n, line.strip()))
        if hits:
            present = sum(any(w in h[2].lower() for h in hits) for w in words)
            scored.append((present, len(hits), path, sorted(hits, key=lambda h: (-h[0], h[1]))[:3]))
    if not scored:
        return f"No matches for {query!r} in the workspace."
    scored.sort(key=lambda s: (-s[0], -s[1], str(s[2])))
    out = []
    for _, _, path, hits in scored[: max(1, int(k))]:
        rel = path.relative_to(workspace)
        out.append(f"{rel}")
        out.extend(f"  {n}: {text[:160]}" for _, n, text in sorted(hits, key=lambda h: h[1]))
    return "\n".join(out)


def find_symbol_text(workspace: Path, name: str, in_path: str | None = None) -> str:
    """Definitions of `name` found by a regular expression over the workspace's text files (those ending with
    `in_path` first: all of them when none does)."""
    name = (name or "").strip().split(".")[-1]
    if not re.fullmatch(r"\w+", name):
        return "find_symbol needs an identifier such as 'parse_args' or 'Config'."
    pattern = re.compile(SYMBOL_RE.format(name=re.escape(name)))
    found = []
    for path in iter_text_files(workspace):
        for n, line in enumerate(_lines(path), 1):
            if pattern.match(line):
                found.append(f"{path.relative_to(workspace)}:{n}: {line.strip()[:160]}")
    if in_path:
        wanted = in_path.strip().removeprefix("./").rstrip("/")
        found = [f for f in found if f.startswith(wanted + ":") or ("/" + wanted + ":") in f] or found
    if not found:
        return f"No definition of {name!r} found in the workspace."
    return "\n".join(found[:50])


def repo_map_text(workspace: Path, budget: int = 1024) -> str:
    """Files of the workspace with their top-level definitions, cut to about `budget` tokens (4 chars each)."""
    top = re.compile(r"^(?:async\s+def|def|class)\s+(\w+)")
    limit = max(200, int(budget) * 4)
    out: list[str] = []
    used = 0
    files = list(iter_text_files(workspace))
    for path in files:
        names = [m.group(1) for line in _lines(path) if (m := top.match(line))] if path.suffix == ".py" else []
        entry = str(path.relative_to(workspace)) + (": " + ", ".join(names[:20]) if names else "")
        if used + len(entry) + 1 > limit:
            out.append(f"[... {len(files) - len(out)} more files ...]")
            break
        out.append(entry)
        used += len(entry) + 1
    return "\n".join(out) if out else "The workspace has no text files."

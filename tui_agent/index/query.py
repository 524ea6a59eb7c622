"""Look things up in the index: full-text search over chunks (BM25) and symbol definitions/references.

Results are plain dataclasses; ``tools.py`` turns them into the compact text the model reads and the CLI prints
them with rich or as JSON.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from tui_agent.index.store import CHUNK_BITS

CONTEXT_LINES = 2
MAX_PER_FILE = 2
TEST_FACTOR = 0.7
_WORD = re.compile(r"\w+")
_KIND_ORDER = {
    "class": 0, "struct": 0, "interface": 0, "trait": 0, "enum": 0, "union": 0, "type": 0, "module": 1,
    "function": 2, "method": 3, "macro": 3, "constant": 4, "variable": 5, "field": 5, "prototype": 6,
}  # fmt: skip


@dataclass
class SearchHit:
    """One ranked chunk, pointed at its best-matching line, with a few lines around it."""

    path: str
    line: int
    start_line: int
    end_line: int
    score: float
    context: list[tuple[int, str]]
    symbol: str = ""  # the definition that encloses ``line``, e.g. "JSONDecoder.decode"


@dataclass
class Definition:
    path: str
    line: int
    end_line: int
    kind: str
    name: str
    scope: str
    signature: str

    @property
    def qualified(self) -> str:
        return f"{self.scope}.{self.name}" if self.scope else self.name


@dataclass
class Reference:
    path: str
    line: int
    text: str = ""


@dataclass
class SymbolResult:
    """Definitions first, then references; ``similar`` holds near names when nothing matched exactly."""

    query: str
    definitions: list[Definition] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    total_references: int = 0
    reference_files: int = 0
    similar: list[str] = field(default_factory=list)


def terms(query: str) -> list[str]:
    """Distinct lower-cased words of a query, in order."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        seen.setdefault(word, None)
    return list(seen)


def search(conn: sqlite3.Connection, root: Path, query: str, k: int = 5) -> list[SearchHit]:
    """The ``k`` best chunks for a query: all words first (BM25), then any word, at most two per file."""
    words = terms(query)
    if not words or k <= 0:
        return []
    quoted = [f'"{w}"' for w in words]
    rows = _match(conn, " ".join(quoted), k * 4)
    if len(rows) < k * 4 and len(words) > 1:
        seen = {r[0] for r in rows}
        rows += [r for r in _match(conn, " OR ".join(quoted), k * 4) if r[0] not in seen]
    defined = _definition_lines(conn, words)
    wants_tests = any("test" in w for w in words)
    scored = []
    for rowid, path, body, start, end, score in rows:
        file_id = rowid >> CHUNK_BITS
        if any(start <= line <= end for line in defined.get(file_id, ())):
            score *= 2.0  # bm25 is negative: a chunk defining a query word ranks higher
        if not wants_tests and _is_test(path):
            score *= TEST_FACTOR  # the code under test first, unless tests are asked for
        scored.append((score, path, start, rowid, body, end))
    scored.sort(key=lambda s: (s[0], s[1], s[2]))
    hits: list[SearchHit] = []
    per_file: dict[str, int] = {}
    for score, path, start, rowid, body, end in scored:
        if per_file.get(path, 0) >= MAX_PER_FILE:
            continue
        per_file[path] = per_file.get(path, 0) + 1
        line, context = _best_line(body, start, words)
        hits.append(SearchHit(path, line, start, end, round(-score, 3), context, _enclosing(conn, rowid, line)))
        if len(hits) == k:
            break
    return hits


def _match(conn: sqlite3.Connection, expression: str, limit: int) -> list[tuple]:
    return conn.execute(
        "SELECT rowid, path, body, start_line, end_line, bm25(chunks, 0.3, 1.0) AS score FROM chunks "
        "WHERE chunks MATCH ? ORDER BY score LIMIT ?",
        (expression, limit),
    ).fetchall()


def _definition_lines(conn: sqlite3.Connection, words: list[str]) -> dict[int, list[int]]:
    marks = ",".join("?" * len(words))
    found: dict[int, list[int]] = {}
    for file_id, line in conn.execute(
        f"SELECT file_id, line FROM symbols WHERE name COLLATE NOCASE IN ({marks})", words
    ):
        found.setdefault(file_id, []).append(line)
    return found


def _best_line(body: str, start: int, words: list[str]) -> tuple[int, list[tuple[int, str]]]:
    lines = body.split("\n")
    best, best_score = 0, -1
    for i, text in enumerate(lines):
        low = text.lower()
        score = sum(1 for w in words if w in low)
        if score > best_score:
            best, best_score = i, score
    low, high = max(0, best - CONTEXT_LINES), min(len(lines), best + CONTEXT_LINES + 1)
    return start + best, [(start + i, lines[i]) for i in range(low, high)]


def _enclosing(conn: sqlite3.Connection, rowid: int, line: int) -> str:
    row = conn.execute(
        "SELECT name, scope FROM symbols WHERE file_id = ? AND line <= ? AND end_line >= ? "
        "AND kind NOT IN ('constant', 'variable', 'field') ORDER BY line DESC LIMIT 1",
        (rowid >> CHUNK_BITS, line, line),
    ).fetchone()
    if row is None:
        return ""
    return f"{row[1]}.{row[0]}" if row[1] else row[0]


def find_symbol(
    conn: sqlite3.Connection,
    root: Path,
    name: str,
    max_definitions: int = 20,
    max_references: int = 20,
    path: str | None = None,
) -> SymbolResult:
    """Where ``name`` (or ``Scope.name``) is defined and used; near names when nothing matches. ``path`` keeps the
    definitions in files whose path ends with it (all of them when none does)."""
    name = name.strip()
    result = SymbolResult(name)
    if not name:
        return result
    scope, _, base = name.rpartition(".") if "." in name else ("", "", name)
    base = base.rpartition("::")[2] or base
    rows = _definitions(conn, base, exact=True)
    if not rows:
        rows = _definitions(conn, base, exact=False)
    if scope:
        last = scope.rpartition(".")[2]
        module = scope.replace(".", "/")
        scoped = [
            r
            for r in rows
            if r.scope in (scope, last) or r.scope.endswith("::" + last) or module in r.path.rpartition(".")[0]
        ]
        rows = scoped or rows
    if path:
        wanted = path.strip().removeprefix("./").rstrip("/")
        rows = [r for r in rows if r.path == wanted or r.path.endswith("/" + wanted)] or rows
    rows.sort(key=lambda d: (_KIND_ORDER.get(d.kind, 9), _is_test(d.path), d.path, d.line))
    result.definitions = rows[:max_definitions]
    refs = conn.execute(
        "SELECT f.path, r.lines, r.count FROM refs r JOIN files f ON f.id = r.file_id WHERE r.name = ?", (base,)
    ).fetchall()
    refs.sort(key=lambda r: (_is_test(r[0]), r[0]))
    result.total_references = sum(r[2] for r in refs)
    result.reference_files = len(refs)
    for path, lines, _ in refs:
        for line in lines.split(","):
            if len(result.references) < max_references:
                result.references.append(Reference(path, int(line)))
    _fill_text(root, result.references)
    if not result.definitions and not result.references:
        result.similar = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT name FROM symbols WHERE name LIKE ? ORDER BY length(name), name LIMIT 8",
                (f"%{base}%",),
            )
        ]
    return result


def _definitions(conn: sqlite3.Connection, name: str, exact: bool) -> list[Definition]:
    where = "s.name = ?" if exact else "s.name = ? COLLATE NOCASE"
    return [
        Definition(path, line, end, kind, sym, scope, sig)
        for path, line, end, kind, sym, scope, sig in conn.execute(
            "SELECT f.path, s.line, s.end_line, s.kind, s.name, s.scope, s.signature FROM symbols s "
            f"JOIN files f ON f.id = s.file_id WHERE {where}",
            (name,),
        )
    ]


def _is_test(path: str) -> bool:
    return "test" in path.lower()


def _fill_text(root: Path, refs: list[Reference]) -> None:
    """Add each reference's source line, reading every file once."""
    by_path: dict[str, list[Reference]] = {}
    for ref in refs:
        by_path.setdefault(ref.path, []).append(ref)
    for path, items in by_path.items():
        if path.startswith("/") or ".." in path.split("/"):
            continue  # the index only ever stores paths inside the workspace
        try:
            lines = (root / path).read_text(encoding="utf-8", errors="replace").split("\n")
        except OSError:
            continue
        for ref in items:
            if 0 < ref.line <= len(lines):
                ref.text = lines[ref.line - 1].strip()

"""Turn one file into what the index stores: symbols, references and text chunks.

This runs inside worker processes during a cold build, so it takes a path and returns plain tuples (cheap to
pickle) and touches no database.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from tui_agent.index.languages import CONTAINERS, language_for, parser_and_query

MAX_SIGNATURE = 160
MAX_HEADER_LINES = 2  # decorators, annotations, a return type on its own line: more means a misparse
CHUNK_MIN_LINES = 10
CHUNK_MAX_LINES = 50
_GENERATED_MARK = re.compile(rb"@generated|Code generated .{0,80}DO NOT EDIT")
_SPACES = re.compile(r"\s+")
_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "function", "generator_function"})
_NAME_TYPES = frozenset(
    {"identifier", "field_identifier", "type_identifier", "destructor_name", "operator_name", "qualified_identifier"}
)

# (name, kind, line, end_line, signature, scope); lines are 1-based.
Symbol = tuple[str, str, int, int, str, str]
# (name, count, lines): one row per name used in a file; lines is "12,40,41".
Ref = tuple[str, int, str]
# (start_line, end_line, text)
Chunk = tuple[int, int, str]


@dataclass
class FileResult:
    """Everything the index keeps about one file; ``skip`` says why a file holds nothing (binary, generated)."""

    path: str
    digest: str
    language: str | None = None
    lines: int = 0
    symbols: list[Symbol] = field(default_factory=list)
    refs: list[Ref] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    skip: str = ""


def digest(data: bytes) -> str:
    """Content hash used to tell a real edit from a touched mtime."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def skip_reason(path: str, data: bytes) -> str:
    """Why a file's content should not be indexed ('' when it should)."""
    head = data[:8192]
    if b"\0" in head:
        return "binary"
    if _GENERATED_MARK.search(data[:1024]):
        return "generated"
    if len(data) > 4096 and len(data) / (data.count(b"\n") + 1) > 500:
        return "minified"
    return ""


def extract_path(root: str, rel: str) -> FileResult:
    """Read and extract one file; an unreadable file becomes an empty result with ``skip`` set."""
    try:
        data = (Path(root) / rel).read_bytes()
    except OSError as exc:
        return FileResult(rel, "", skip=f"unreadable: {exc.strerror or exc}")
    return extract(rel, data)


def extract(rel: str, data: bytes) -> FileResult:
    """Symbols, references and chunks of one file's bytes."""
    result = FileResult(rel, digest(data))
    reason = skip_reason(rel, data)
    if reason:
        result.skip = reason
        return result
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    lines = text.split("\n")
    result.lines = len(lines)
    result.language = language_for(rel)
    breaks: set[int] = set()
    if result.language:
        result.symbols, result.refs = _tags(result.language, data)
        breaks = {sym[2] for sym in result.symbols}
    result.chunks = chunk_lines(lines, breaks)
    return result


def chunk_lines(lines: list[str], breaks: set[int]) -> list[Chunk]:
    """Split a file into chunks that start at definitions when possible (else after blank lines), 10-50 lines."""
    total = len(lines)
    if not breaks:  # plain text: a chunk may end after a blank line
        breaks = {i + 2 for i, text in enumerate(lines) if not text.strip()}
    cuts = sorted(b - 1 for b in breaks if 1 < b <= total)  # a chunk may end on the line before a break
    chunks: list[Chunk] = []
    start, c = 0, 0
    while start < total:
        while c < len(cuts) and cuts[c] - start < CHUNK_MIN_LINES:
            c += 1
        end = min(total, start + CHUNK_MAX_LINES)
        if c < len(cuts) and cuts[c] < end:
            end = cuts[c]
        body = "\n".join(lines[start:end])
        if body.strip():
            chunks.append((start + 1, end, body))
        start = end
    return chunks


def _tags(language: str, data: bytes) -> tuple[list[Symbol], list[Ref]]:
    parser, query = parser_and_query(language)
    from tree_sitter import QueryCursor

    tree = parser.parse(data)
    found: dict[int, tuple[int, str, object, object, str]] = {}  # name start -> (pattern, kind, node, name, scope)
    ref_nodes = []
    for pattern, captures in QueryCursor(query).matches(tree.root_node):
        if "ref" in captures:
            ref_nodes.extend(captures["ref"])
            continue
        key = next((k for k in captures if k.startswith(("def.", "scope."))), None)
        if key is None:
            continue
        node = captures[key][0]
        kind = key.split(".", 1)[1]
        name_node = captures["name"][0] if "name" in captures else _declared_name(node)
        if name_node is None:
            continue
        scope = _text(data, captures["scope"][0]) if "scope" in captures else ""
        start = name_node.start_byte
        if start not in found or pattern < found[start][0]:
            found[start] = (pattern, kind, node, name_node, scope)

    symbols = _symbols(data, found)
    def_starts = {start for start, entry in found.items() if entry[1] != "impl"}
    grouped: dict[str, list[int]] = {}
    for node in ref_nodes:  # matches come in document order, so each name's lines are already sorted
        start = node.start_byte
        if start in def_starts:
            continue
        line = node.start_point[0] + 1
        lines = grouped.setdefault(data[start : node.end_byte].decode("utf-8", errors="replace"), [])
        if not lines or lines[-1] != line:
            lines.append(line)
    refs = []
    for name, lines in grouped.items():
        ordered = sorted(set(lines))
        refs.append((name, len(ordered), ",".join(map(str, ordered))))
    return symbols, refs


def _symbols(data: bytes, found: dict) -> list[Symbol]:
    """Order definitions, give each its scope (enclosing container) and its final kind."""
    entries = sorted(found.values(), key=lambda e: (e[2].start_byte, -e[2].end_byte))
    stack: list[tuple[int, str, str]] = []  # (end_byte, kind, name)
    symbols: list[Symbol] = []
    for _, kind, node, name_node, scope in entries:
        while stack and stack[-1][0] <= node.start_byte:
            stack.pop()
        raw_name = _text(data, name_node)
        name = raw_name.rsplit("::", 1)[-1]
        if not scope and "::" in raw_name:
            scope = raw_name.rsplit("::", 1)[0]
            kind = "method" if kind == "function" else kind
        parent_kind, parent_name = (stack[-1][1], stack[-1][2]) if stack else ("", "")
        kind = _refine_kind(kind, node, name, parent_kind)
        scope = scope or parent_name
        stack.append((node.end_byte, kind, name))
        if kind == "impl":
            continue
        line = node.start_point[0] + 1
        name_line = name_node.start_point[0] + 1
        if name_line - line > MAX_HEADER_LINES:  # a macro confused the parser (C headers): trust the name's line
            start = data.rfind(b"\n", 0, name_node.start_byte) + 1
            end = data.find(b"\n", name_node.start_byte)
            signature = data[start : end if end >= 0 else len(data)].decode("utf-8", errors="replace").strip()
            symbols.append((name, kind, name_line, node.end_point[0] + 1, signature[:MAX_SIGNATURE], scope))
            continue
        symbols.append((name, kind, line, node.end_point[0] + 1, _signature(data, node), scope))
    return symbols


def _refine_kind(kind: str, node, name: str, parent_kind: str) -> str:
    if kind in ("function", "prototype") and parent_kind in CONTAINERS:
        return "method"
    if kind == "constant":
        value = node.child_by_field_name("value")
        if value is not None and value.type in _FUNCTION_VALUES:
            return "function"
        if value is not None and value.type == "class":
            return "class"
        if node.type in ("assignment", "variable_declarator") and not name.isupper():
            return "variable"
    if kind == "field" and name.isupper():
        return "constant"
    return kind


def _declared_name(node):
    """The name inside a C/C++ declarator chain (``int *foo(void)``, ``Foo::bar()``)."""
    current = node.child_by_field_name("declarator")
    for _ in range(8):
        if current is None:
            return None
        if current.type in _NAME_TYPES:
            return current
        current = current.child_by_field_name("declarator")
    return None


def _signature(data: bytes, node) -> str:
    body = node.child_by_field_name("body")
    if body is not None and body.start_byte > node.start_byte:
        end = body.start_byte
        header = data[node.start_byte : end]
        if b"#" in header or b"/" in header:  # stop before comments between the header and the body
            for child in node.children:
                if child.start_byte >= body.start_byte:
                    break
                if child.type != "comment":
                    end = child.end_byte
        raw = data[node.start_byte : end].decode("utf-8", errors="replace")
        text = _SPACES.sub(" ", raw).strip().rstrip(":{= ").strip()
        text = text.replace("( ", "(").replace(", )", ")").replace(" )", ")")
    else:
        raw = data[node.start_byte : min(node.end_byte, node.start_byte + 400)].decode("utf-8", errors="replace")
        text = raw.split("\n", 1)[0].strip()
    if len(text) > MAX_SIGNATURE:
        text = text[: MAX_SIGNATURE - 3].rstrip() + "..."
    return text


def _text(data: bytes, node) -> str:
    return data[node.start_byte : node.end_byte].decode("utf-8", errors="replace")

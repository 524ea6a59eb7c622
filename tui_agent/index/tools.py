"""The code tools the agent calls from its kernel: search_code, find_symbol and repo_map.

Each returns compact text, because that text is the model's observation: paths with line numbers the model can
pass to ``read_file``, signatures rather than bodies, and an explicit line when nothing matched.
"""

from __future__ import annotations

import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from tui_agent.index import query as lookup
from tui_agent.index.rank import Graph, load_graph
from tui_agent.index.rank import repo_map as render_map
from tui_agent.index.refresh import RefreshStats
from tui_agent.index.store import IndexBusy, generation
from tui_agent.index.workspace import WorkspaceIndex

MAX_REFERENCES_SHOWN = 15
_MAP_CACHE_SIZE = 16


class CodeTools:
    """Code search over one workspace; the index is opened (or built) and refreshed on construction.

    ``refresh_interval``: before a call, re-check the files if this many seconds passed since the last check
    (the agent edits files between calls); None turns automatic refreshes off.
    """

    def __init__(self, workspace: Path, refresh_interval: float | None = 1.0):
        self.index = WorkspaceIndex(workspace)
        self.root = self.index.root
        self.refresh_interval = refresh_interval
        self.last_refresh = self.index.refresh()
        self._checked = time.monotonic()
        self._graph: tuple[int, Graph] | None = None
        self._maps: OrderedDict[tuple, str] = OrderedDict()

    @property
    def notices(self) -> list[str]:
        """Messages about rebuilt indexes (old schema, corrupt file)."""
        return self.index.notices

    def refresh(self) -> RefreshStats:
        """Re-index files changed since the last refresh."""
        self.last_refresh = self.index.refresh()
        self._checked = time.monotonic()
        return self.last_refresh

    def _maybe_refresh(self) -> None:
        if self.refresh_interval is not None and time.monotonic() - self._checked >= self.refresh_interval:
            try:  # another process refreshing: answer from the current snapshot rather than wait
                self.last_refresh = self.index.refresh(wait=0)
            except IndexBusy:
                pass
            self._checked = time.monotonic()

    def _guarded(self, call: Callable[[], str]) -> str:
        """Run a lookup; a database found damaged on the way is rebuilt once and the lookup retried."""
        try:
            self._maybe_refresh()
            return call()
        except sqlite3.DatabaseError as exc:
            self.index.recover(exc)
            self._graph = None
            self._maps.clear()
            self.refresh()
            return call()

    def search_code(self, query: str, k: int = 5) -> str:
        """Ranked code chunks for a query, each as ``path:line`` with a few numbered lines around the match."""
        return self._guarded(lambda: self._search_code(query, k))

    def find_symbol(self, name: str, path: str | None = None) -> str:
        """Where a name is defined (first; in ``path`` when given) and used: ``path:line`` with signatures and
        source lines."""
        return self._guarded(lambda: self._find_symbol(name, path))

    def repo_map(self, budget: int = 1024, focus_files: Sequence[str] = (), focus_names: Sequence[str] = ()) -> str:
        """The most important files and signatures, ranked by the reference graph, within ``budget`` tokens."""
        return self._guarded(lambda: self._repo_map(budget, focus_files, focus_names))

    def _search_code(self, query: str, k: int) -> str:
        if not query.strip():
            return "search_code: the query is empty; pass words to look for."
        hits = lookup.search(self.index.conn, self.root, query, k)
        if not hits:
            return f"No matches for {query!r}."
        blocks = []
        for hit in hits:
            head = f"{hit.path}:{hit.line}" + (f" (in {hit.symbol})" if hit.symbol else "")
            width = len(str(hit.context[-1][0])) if hit.context else 1
            body = "\n".join(f"  {n:>{width}} | {text}" for n, text in hit.context)
            blocks.append(f"{head}\n{body}")
        return "\n\n".join(blocks)

    def top_level_definitions(self, name: str) -> list[tuple[str, int]]:
        """Where Python files define ``name`` as a top-level function or class: (path, line) pairs."""

        def call() -> list[tuple[str, int]]:
            rows = self.index.conn.execute(
                "SELECT f.path, s.line FROM symbols s JOIN files f ON f.id = s.file_id "
                "WHERE s.name = ? AND s.scope = '' AND s.kind IN ('function', 'class') AND f.path LIKE '%.py' "
                "ORDER BY f.path, s.line",
                (name,),
            ).fetchall()
            return [(path, int(line)) for path, line in rows]

        return self._guarded(call)

    def _find_symbol(self, name: str, path: str | None = None) -> str:
        if not name.strip():
            return "find_symbol: the name is empty; pass a function, class or constant name."
        result = lookup.find_symbol(self.index.conn, self.root, name, max_references=MAX_REFERENCES_SHOWN, path=path)
        return format_symbol(result)

    def _repo_map(self, budget: int, focus_files: Sequence[str], focus_names: Sequence[str]) -> str:
        conn = self.index.conn
        gen = generation(conn)
        key = (gen, int(budget), tuple(sorted(map(str, focus_files))), tuple(sorted(map(str, focus_names))))
        if key in self._maps:
            self._maps.move_to_end(key)
            return self._maps[key]
        if self._graph is None or self._graph[0] != gen:
            self._graph = (gen, load_graph(conn))
        text = render_map(conn, self._graph[1], int(budget), key[2], key[3], self.root)
        text = text or "(no source files with definitions in this workspace)\n"
        self._maps[key] = text
        if len(self._maps) > _MAP_CACHE_SIZE:
            self._maps.popitem(last=False)
        return text

    def close(self) -> None:
        self.index.close()


def refresh_index(workspace: Path) -> str:
    """Build or refresh a workspace's index; a one-line summary for status bars and logs."""
    index = WorkspaceIndex(workspace)
    try:
        stats = index.refresh()
        status = index.status()
    finally:
        index.close()
    changes = f"{stats.added} added, {stats.changed} changed, {stats.removed} removed"
    return f"Indexed {status.files} files, {status.symbols} symbols in {stats.seconds:.2f} s ({changes})"


def format_symbol(result: lookup.SymbolResult) -> str:
    """find_symbol's text: definitions, then up to a few references with their source lines."""
    name = result.query
    if not result.definitions and not result.references:
        hint = f" Similar names: {', '.join(result.similar)}." if result.similar else ""
        return f"No symbol named {name!r}.{hint} Try search_code({name!r}) for text matches."
    lines = []
    if result.definitions:
        lines.append(f"Definitions of {name} ({len(result.definitions)}):")
        for d in result.definitions:
            where = f"  [{d.kind} in {d.scope}]" if d.scope else ""
            lines.append(f"  {d.path}:{d.line}  {d.signature}{where}")
    else:
        lines.append(f"No definition of {name} in this workspace (it may come from a library).")
    if result.references:
        lines.append(f"References ({result.total_references} in {result.reference_files} files):")
        for r in result.references:
            lines.append(f"  {r.path}:{r.line}  {r.text}".rstrip())
        more = result.total_references - len(result.references)
        if more > 0:
            lines.append(f"  ... {more} more")
    else:
        lines.append("No references found.")
    return "\n".join(lines)

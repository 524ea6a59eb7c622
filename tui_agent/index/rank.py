"""The repository map: files and definitions ranked by PageRank over the reference graph, fitted to a budget.

A file that references a name points at every file defining it (as aider does), weighted by how often and how
specific the name is. PageRank, personalised toward the files and names of the conversation, ranks files; each
file's rank flows along its edges to the definitions it uses, which ranks definitions. The graph depends only on
the index, so it is cached per index generation (in memory and in the database); a warm call only runs the power
iteration and renders. Everything is ordered with explicit tie-breaks, so the map is identical run to run.
"""

from __future__ import annotations

import bisect
import builtins
import io
import json
import math
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tui_agent.index.store import LOCK_TIMEOUT_S, generation

MAX_DEFINERS = 20  # a name defined in more files than this says nothing about which one is meant
CHARS_PER_TOKEN = 4
DAMPING = 0.85
_CAMEL = re.compile(r"[a-z][A-Z]")
_SKIP_KINDS = ("variable", "field")
TEST_WEIGHT = 0.1  # definitions in tests matter less than the code under test
# Calls to these are nearly always the language's built-ins, not the project's namesakes.
_COMMON_NAMES = frozenset(dir(builtins)).union(
    *(dir(t) for t in (str, bytes, list, dict, set, tuple, int, float, object, type, BaseException))
) | frozenset(
    "main init new get set run start stop close open read write len print string error test setUp tearDown "
    "toString equals hashCode constructor push pop map filter reduce log format append String Error Object "
    "Array Promise require describe it expect".split()
)


@dataclass
class Graph:
    """Files (by index) and weighted edges referencer -> definer, one per (referencer, definer, name)."""

    paths: list[str]
    file_ids: list[int]
    names: list[str]
    src: object  # numpy int arrays / float array
    dst: object
    name_id: object
    weight: object
    pair_of_edge: object  # edge -> index of its (definer, name) pair
    pairs: list[tuple[int, int]]  # (file index, name id)


def load_graph(conn: sqlite3.Connection) -> Graph:
    """The graph for the index's current generation, from the cache table or built and stored there."""
    gen = generation(conn)
    row = conn.execute("SELECT generation, value FROM cache WHERE key = 'graph'").fetchone()
    if row and row[0] == gen:
        try:
            return _decode(row[1])
        except Exception:  # noqa: BLE001 - a bad cache entry is rebuilt
            pass
    graph = build_graph(conn)
    try:  # a short wait only: another process writing must not stall the map
        conn.execute("PRAGMA busy_timeout = 200")
        conn.execute(
            "INSERT OR REPLACE INTO cache(key, generation, value) VALUES ('graph', ?, ?)", (gen, _encode(graph))
        )
    except sqlite3.Error:
        pass  # read-only or busy: the in-memory copy still serves this process
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(LOCK_TIMEOUT_S * 1000)}")
    return graph


def _encode(graph: Graph) -> bytes:
    """Numpy arrays and JSON only (never pickle: the database sits in the workspace, which may be untrusted)."""
    import numpy as np

    meta = json.dumps({"paths": graph.paths, "names": graph.names}).encode()
    buffer = io.BytesIO()
    np.savez(
        buffer,
        meta=np.frombuffer(meta, dtype=np.uint8),
        file_ids=np.asarray(graph.file_ids, dtype=np.int64),
        pairs=np.asarray(graph.pairs, dtype=np.int64).reshape(-1, 2),
        src=graph.src,
        dst=graph.dst,
        name_id=graph.name_id,
        weight=graph.weight,
        pair_of_edge=graph.pair_of_edge,
    )
    return buffer.getvalue()


def _decode(blob: bytes) -> Graph:
    import numpy as np

    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        meta = json.loads(data["meta"].tobytes())
        return Graph(
            paths=meta["paths"],
            file_ids=[int(x) for x in data["file_ids"]],
            names=meta["names"],
            src=data["src"],
            dst=data["dst"],
            name_id=data["name_id"],
            weight=data["weight"],
            pair_of_edge=data["pair_of_edge"],
            pairs=[(int(a), int(b)) for a, b in data["pairs"]],
        )


def build_graph(conn: sqlite3.Connection) -> Graph:
    import numpy as np

    files = conn.execute("SELECT id, path FROM files WHERE skip = '' ORDER BY path").fetchall()
    index_of = {file_id: i for i, (file_id, _) in enumerate(files)}
    definers: dict[str, list[int]] = {}
    for name, file_id in conn.execute(
        "SELECT DISTINCT name, file_id FROM symbols WHERE kind NOT IN ('variable', 'field') ORDER BY name, file_id"
    ):
        if file_id in index_of:
            definers.setdefault(name, []).append(index_of[file_id])
    is_test = [_is_test(path) for _, path in files]
    names = sorted(name for name in definers if name not in _COMMON_NAMES)
    name_ids = {n: i for i, n in enumerate(names)}
    src, dst, nid, weight = [], [], [], []
    for file_id, name, count in conn.execute("SELECT file_id, name, count FROM refs ORDER BY file_id, name"):
        targets = definers.get(name) if name in name_ids else None
        referencer = index_of.get(file_id)
        if not targets or referencer is None or len(targets) > MAX_DEFINERS:
            continue
        base = _name_weight(name, len(targets)) * math.sqrt(count)
        for target in targets:
            if target != referencer:
                src.append(referencer)
                dst.append(target)
                nid.append(name_ids[name])
                weight.append(base * TEST_WEIGHT if is_test[target] else base)
    src_a, dst_a, nid_a = (np.asarray(a, dtype=np.int64) for a in (src, dst, nid))
    keys = dst_a * max(1, len(names)) + nid_a
    unique, inverse = np.unique(keys, return_inverse=True)
    width = max(1, len(names))
    pairs = [(int(k // width), int(k % width)) for k in unique]
    return Graph(
        paths=[p for _, p in files],
        file_ids=[f for f, _ in files],
        names=names,
        src=src_a,
        dst=dst_a,
        name_id=nid_a,
        weight=np.asarray(weight, dtype=np.float64),
        pair_of_edge=inverse.reshape(-1),
        pairs=pairs,
    )


def _is_test(path: str) -> bool:
    low = path.lower()
    return "test" in low or "spec" in low.rsplit("/", 1)[-1]


def _name_weight(name: str, definers: int) -> float:
    """Specific names (long, snake or camel case) say more; private and widely defined names say less."""
    weight = 1.0
    if len(name) >= 8 and ("_" in name.strip("_") or _CAMEL.search(name)):
        weight *= 10.0
    if name.startswith("_"):
        weight *= 0.1
    if definers > 5:
        weight *= 0.1
    return weight


def pagerank(n: int, src, dst, weight, personal, iterations: int = 100, tol: float = 1e-12):
    """Weighted PageRank by power iteration; dangling files give their rank back along ``personal``."""
    import numpy as np

    personal = personal / personal.sum()
    out = np.bincount(src, weights=weight, minlength=n)
    dangling = out == 0
    share = np.divide(weight, out[src], out=np.zeros_like(weight), where=out[src] > 0)
    rank = np.full(n, 1.0 / n)
    for _ in range(iterations):
        flow = np.bincount(dst, weights=rank[src] * share, minlength=n)
        new = (1 - DAMPING) * personal + DAMPING * (flow + rank[dangling].sum() * personal)
        delta = float(np.abs(new - rank).sum())
        rank = new
        if delta < tol:
            break
    return rank, share


def rank_definitions(
    graph: Graph, focus_files: Sequence[int] = (), focus_names: Sequence[str] = ()
) -> tuple[list[tuple[float, int, int]], object]:
    """(rank, file index, name id) of every referenced definition, best first, and the file ranks."""
    import numpy as np

    n = len(graph.paths)
    personal = np.zeros(n)
    weight = graph.weight
    focus_ids = sorted({i for x in set(focus_names) if (i := _name_index(graph.names, x)) is not None})
    if focus_ids:
        boost = np.isin(graph.name_id, focus_ids)
        weight = np.where(boost, weight * 10.0, weight)
    for f in focus_files:
        personal[f] = 1.0
    if not personal.any():
        personal[:] = 1.0
    if n == 0:
        return [], personal
    rank, share = pagerank(n, graph.src, graph.dst, weight, personal)
    flow = rank[graph.src] * share
    pair_rank = np.bincount(graph.pair_of_edge, weights=flow, minlength=len(graph.pairs))
    order = sorted(
        range(len(graph.pairs)),
        key=lambda i: (-round(float(pair_rank[i]), 15), graph.paths[graph.pairs[i][0]], graph.names[graph.pairs[i][1]]),
    )
    return [(float(pair_rank[i]), graph.pairs[i][0], graph.pairs[i][1]) for i in order], rank


def _name_index(names: list[str], name: str) -> int | None:
    i = bisect.bisect_left(names, name)
    return i if i < len(names) and names[i] == name else None


def repo_map(
    conn: sqlite3.Connection,
    graph: Graph,
    budget: int = 1024,
    focus_files: Sequence[str] = (),
    focus_names: Sequence[str] = (),
    root: Path | None = None,
) -> str:
    """The ranked overview, at most ``budget`` tokens (about four characters each)."""
    if budget <= 0 or not graph.paths:
        return ""
    focus_idx = _focus_file_indexes(graph, focus_files, root)
    named = _definers(conn, graph, focus_names)
    ranked, file_rank = rank_definitions(graph, sorted(set(focus_idx) | {f for f, _ in named}), focus_names)
    limit = max(64, budget // 2)
    wanted = named + [item for _, f, nm in ranked[: limit * 2] if (item := (f, graph.names[nm])) not in named]
    wanted = wanted[:limit]
    if len(wanted) < limit:
        wanted += _fallback(conn, graph, file_rank, set(wanted), limit - len(wanted))
    rows = _symbol_rows(conn, graph, wanted)
    max_chars = budget * CHARS_PER_TOKEN
    low, high, best = 1, len(wanted), ""
    while low <= high:  # the largest prefix of the ranking that fits
        mid = (low + high) // 2
        text = _render(graph, wanted[:mid], rows)
        if len(text) <= max_chars:
            best, low = text, mid + 1
        else:
            high = mid - 1
    return best


def _definers(conn: sqlite3.Connection, graph: Graph, names: Sequence[str]) -> list[tuple[int, str]]:
    """(file index, name) of where each focus name is defined: these lead the map."""
    names = sorted(set(names))
    if not names:
        return []
    index = {file_id: i for i, file_id in enumerate(graph.file_ids)}
    marks = ",".join("?" * len(names))
    rows = conn.execute(
        f"SELECT DISTINCT file_id, name FROM symbols WHERE name IN ({marks}) AND kind NOT IN ('variable', 'field')",
        names,
    ).fetchall()
    found = sorted({(index[f], n) for f, n in rows if f in index}, key=lambda x: (names.index(x[1]), graph.paths[x[0]]))
    return found[:20]


def _focus_file_indexes(graph: Graph, focus_files: Sequence[str], root: Path | None) -> list[int]:
    result = []
    index = {p: i for i, p in enumerate(graph.paths)}
    for item in focus_files:
        text = str(item).replace("\\", "/")
        if root is not None and Path(text).is_absolute():
            try:
                text = Path(text).resolve().relative_to(root).as_posix()
            except ValueError:
                continue
        text = text.removeprefix("./")
        if text in index:
            result.append(index[text])
        else:
            result.extend(i for p, i in index.items() if p.endswith("/" + text))
    return sorted(set(result))


def _fallback(conn: sqlite3.Connection, graph: Graph, file_rank, taken: set, room: int) -> list[tuple[int, str]]:
    """When few definitions are referenced (small repos), top-level names of the best files fill the map."""
    best = sorted(range(len(graph.paths)), key=lambda f: (-round(float(file_rank[f]), 15), graph.paths[f]))[:50]
    back = {graph.file_ids[f]: f for f in best}
    marks = ",".join("?" * len(best))
    extra: list[tuple[int, str]] = []
    rows = conn.execute(
        f"SELECT file_id, name, line FROM symbols WHERE scope = '' AND kind NOT IN ('variable', 'field') "
        f"AND file_id IN ({marks})",
        [graph.file_ids[f] for f in best],
    ).fetchall()
    position = {f: i for i, f in enumerate(best)}
    rows.sort(key=lambda r: (position[back[r[0]]], r[2], r[1]))
    for file_id, name, _ in rows:
        item = (back[file_id], name)
        if item not in taken:
            taken.add(item)
            extra.append(item)
            if len(extra) >= room:
                break
    return extra


def _symbol_rows(conn: sqlite3.Connection, graph: Graph, wanted: list) -> dict:
    """Symbol rows per (file index, name), and container rows for context, from one query per file batch."""
    files = sorted({f for f, _ in wanted})
    rows: dict = {}
    for start in range(0, len(files), 500):
        batch = files[start : start + 500]
        ids = [graph.file_ids[f] for f in batch]
        back = {graph.file_ids[f]: f for f in batch}
        marks = ",".join("?" * len(ids))
        for file_id, name, kind, line, signature, scope in conn.execute(
            f"SELECT file_id, name, kind, line, signature, scope FROM symbols WHERE file_id IN ({marks}) "
            "ORDER BY file_id, line",
            ids,
        ):
            rows.setdefault((back[file_id], name), []).append((line, kind, signature, scope))
    return rows


def _render(graph: Graph, wanted: list, rows: dict) -> str:
    by_file: dict[int, dict[int, tuple]] = {}
    order: list[int] = []
    for f, name in wanted:
        if f not in by_file:
            by_file[f] = {}
            order.append(f)
        for line, kind, signature, scope in rows.get((f, name), ()):
            if kind in _SKIP_KINDS:
                continue
            by_file[f][line] = (kind, signature, scope)
            if scope:  # show the class a method belongs to
                for c_line, c_kind, c_sig, c_scope in rows.get((f, scope.rpartition(".")[2]), ()):
                    if c_line < line and c_kind not in _SKIP_KINDS:
                        by_file[f].setdefault(c_line, (c_kind, c_sig, c_scope))
    out = []
    for f in order:
        out.append(graph.paths[f])
        for line in sorted(by_file[f]):
            _, signature, scope = by_file[f][line]
            indent = "  " * (1 + bool(scope))
            out.append(f"{indent}{line}: {signature}")
    return "\n".join(out) + ("\n" if out else "")

"""Benchmark the code index on this machine's Python standard library (tests included), with baselines.

    python benchmarks/bench_index.py [--stdlib PATH] [--skip-aider] [--aider-python PATH]

Measures: cold build (seconds, files/s), no-change refresh, one-file refresh, repo_map on a warm index (and that
it is identical run to run, across processes and hash seeds), search_code / find_symbol latency p50/p95, index size.
Baselines in the same run, on the same copied tree: ripgrep (cold and warm, the same queries) and aider's RepoMap
(cold, warm, after touching one file; driven from its own virtualenv). A baseline whose tool is missing is skipped
with a note. Prints a rich table and writes benchmarks/results/bench_index.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RESULTS = REPO / "benchmarks" / "results" / "bench_index.json"
AIDER_PYTHON = Path("/work/aider-venv/bin/python")
SEARCHES = [
    "json decode error", "parse command line arguments", "open url with timeout", "thread pool executor submit",
    "compress gzip file", "sqlite connection cursor", "http request headers", "regular expression compile cache",
    "temporary directory cleanup", "socket connect timeout", "unicode normalize", "csv writer dialect",
    "base64 encode", "datetime timezone utc", "subprocess pipe communicate", "zip file extract",
    "event loop run until complete", "xml element tree parse", "email message header", "lru cache decorator",
]  # fmt: skip
SYMBOLS = [
    "JSONDecoder", "ArgumentParser", "urlopen", "ThreadPoolExecutor", "GzipFile", "Connection", "HTTPConnection",
    "compile", "TemporaryDirectory", "create_connection", "normalize", "DictWriter", "b64encode", "timezone",
    "Popen", "ZipFile", "run_until_complete", "ElementTree", "EmailMessage", "lru_cache",
]  # fmt: skip
GOALS = {
    "cold_build_s": 15.0,
    "refresh_nochange_s": 0.5,
    "refresh_one_file_s": 0.2,
    "repo_map_warm_s": 1.0,
    "search_code_p95_ms": 50.0,
    "find_symbol_p95_ms": 50.0,
}

AIDER_DRIVER = textwrap.dedent(
    """
    import hashlib, json, sys, time
    from pathlib import Path
    from aider.repomap import RepoMap

    class Model:
        def token_count(self, text):
            return len(text) / 4

    class IO:
        def read_text(self, fname):
            try:
                return Path(fname).read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
        def tool_output(self, *a, **k): pass
        def tool_warning(self, *a, **k): pass
        def tool_error(self, *a, **k): pass

    root, file_list = sys.argv[1], sys.argv[2]
    files = [str(Path(root) / line) for line in Path(file_list).read_text().splitlines() if line]
    started = time.perf_counter()
    rm = RepoMap(map_tokens=1024, root=root, main_model=Model(), io=IO(), refresh="always")
    text = rm.get_repo_map([], files) or ""
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "chars": len(text), "sha": hashlib.sha256(text.encode()).hexdigest()}))
    """
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def copy_stdlib(source: Path, dest: Path) -> Path:
    ignore = shutil.ignore_patterns("site-packages", "__pycache__", "*.pyc")
    shutil.copytree(source, dest, ignore=ignore, symlinks=True)
    return dest


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - started, value


def bench_ours(root: Path) -> dict:
    from tui_agent.index.tools import CodeTools
    from tui_agent.index.workspace import WorkspaceIndex

    out: dict = {}
    index = WorkspaceIndex(root)
    cpu_before = _cpu_seconds()
    seconds, stats = timed(index.refresh)
    status = index.status()
    out["cold_build_s"] = seconds
    out["cold_build_cpu_s"] = _cpu_seconds() - cpu_before  # parent + workers: what contention cannot inflate
    out["files"] = status.files
    out["skipped_files"] = status.skipped
    out["symbols"] = status.symbols
    out["references"] = status.references
    out["files_per_s"] = (stats.added) / seconds
    out["workers"] = __import__("tui_agent.index.refresh", fromlist=["x"]).default_workers()

    nochange = [timed(index.refresh)[0] for _ in range(5)]
    out["refresh_nochange_s"] = statistics.median(nochange)
    out["refresh_nochange_max_s"] = max(nochange)

    targets = ["json/decoder.py", "argparse.py", "asyncio/tasks.py", "collections/__init__.py", "email/message.py"]
    edits, touches = [], []
    for rel in targets:
        path = root / rel
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        seconds, stats = timed(index.refresh)
        assert stats.touched == 1, stats
        touches.append(seconds)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("\n# benchmark edit\n")
        seconds, stats = timed(index.refresh)
        assert stats.changed == 1, stats
        edits.append(seconds)
    out["refresh_one_file_s"] = statistics.median(edits)
    out["refresh_one_file_max_s"] = max(edits)
    out["refresh_touch_only_s"] = statistics.median(touches)
    index.close()

    # repo_map: the first call after an edit builds the reference graph; later processes load it from the index.
    tools = CodeTools(root)
    out["repo_map_after_edit_s"], first_map = timed(tools.repo_map, 1024)
    tools.close()
    warm, maps = [], []
    for _ in range(3):  # a fresh CodeTools each time: nothing cached in memory
        tools = CodeTools(root)
        seconds, text = timed(tools.repo_map, 1024)
        warm.append(seconds)
        maps.append(text)
        tools.close()
    out["repo_map_warm_s"] = statistics.median(warm)
    tools = CodeTools(root)
    out["repo_map_focus_s"], _ = timed(tools.repo_map, 1024, ["json/decoder.py"], ["JSONDecodeError"])
    tools.repo_map(1024)
    out["repo_map_memo_s"], again = timed(tools.repo_map, 1024)  # same arguments, same index: memoised
    out["repo_map_tokens"] = len(first_map) / 4
    out["repo_map_sha"] = hashlib.sha256(first_map.encode()).hexdigest()[:16]
    seeds = {_map_in_subprocess(root, seed) for seed in ("11", "22")}
    out["repo_map_identical"] = len({first_map, again, *maps}) == 1 and seeds == {first_map}

    search_times, symbol_times = [], []
    for _ in range(5):
        for q in SEARCHES:
            seconds, text = timed(tools.search_code, q, 5)
            search_times.append(seconds * 1000)
        for name in SYMBOLS:
            seconds, text = timed(tools.find_symbol, name)
            symbol_times.append(seconds * 1000)
    out["search_code_p50_ms"] = pct(search_times, 50)
    out["search_code_p95_ms"] = pct(search_times, 95)
    out["find_symbol_p50_ms"] = pct(symbol_times, 50)
    out["find_symbol_p95_ms"] = pct(symbol_times, 95)
    out["find_symbol_found"] = sum(1 for n in SYMBOLS if tools.find_symbol(n).startswith("Definitions"))
    tools.close()
    db = root / ".tui-agent"
    out["index_mb"] = sum(p.stat().st_size for p in db.iterdir() if p.is_file()) / 1e6
    out["repo_map_sample"] = first_map[:1200]
    return out


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _map_in_subprocess(root: Path, seed: str) -> str:
    script = (
        "import sys; from tui_agent.index.tools import CodeTools; print(CodeTools(sys.argv[1]).repo_map(1024), end='')"
    )
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(root)], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout


def bench_ripgrep(root: Path) -> dict:
    rg = shutil.which("rg")
    if rg is None:
        return {"skipped": "ripgrep (rg) not installed: apt-get install ripgrep"}

    def run(query: str) -> float:
        args = [rg, "-n", "-i", "--no-messages", "-g", "!.tui-agent"]
        for word in query.split():
            args += ["-e", word]
        started = time.perf_counter()
        subprocess.run([*args, str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - started

    cold = run(SEARCHES[0])
    warm = [run(q) * 1000 for q in SEARCHES for _ in range(2)]
    return {
        "version": subprocess.run([rg, "--version"], capture_output=True, text=True).stdout.split("\n")[0],
        "cold_s": cold,
        "warm_p50_ms": pct(warm, 50),
        "warm_p95_ms": pct(warm, 95),
    }


def bench_aider(root: Path, python: Path) -> dict:
    if not python.exists():
        return {"skipped": f"{python} not found (python3 -m venv /work/aider-venv && pip install aider-chat)"}
    check = subprocess.run([str(python), "-c", "import aider.repomap"], capture_output=True, text=True)
    if check.returncode != 0:
        return {"skipped": f"aider's RepoMap does not import: {check.stderr.strip().splitlines()[-1:]}"}
    from tui_agent.index.walk import walk

    with tempfile.TemporaryDirectory() as tmp:
        driver = Path(tmp) / "aider_driver.py"
        driver.write_text(AIDER_DRIVER)
        listing = Path(tmp) / "files.txt"
        listing.write_text("\n".join(f.path for f in walk(root)))

        def run(seed: str = "0") -> dict:
            env = {**os.environ, "PYTHONHASHSEED": seed}
            done = subprocess.run(
                [str(python), str(driver), str(root), str(listing)],
                capture_output=True, text=True, env=env, timeout=900, cwd=tmp,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(done.stderr.strip().splitlines()[-1:] or ["aider failed"])
            return json.loads(done.stdout.strip().splitlines()[-1])

        try:
            for cache in root.glob(".aider.tags.cache*"):
                shutil.rmtree(cache)
            cold = run("1")
            warm = run("1")
            warm_other_seed = run("2")
            target = root / "json" / "decoder.py"
            with open(target, "a", encoding="utf-8") as handle:
                handle.write("\n# touched by the aider baseline\n")
            touched = run("1")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            return {"skipped": f"aider's RepoMap failed: {exc}"}
    return {
        "cold_s": cold["seconds"],
        "warm_s": warm["seconds"],
        "after_touch_s": touched["seconds"],
        "map_chars": warm["chars"],
        "identical_same_seed": cold["sha"] == warm["sha"],
        "identical_across_seeds": warm["sha"] == warm_other_seed["sha"],
    }


def report(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    ours, rg, aider = result["tui_agent"], result["ripgrep"], result["aider"]
    table = Table(title=f"Code index on the Python {platform.python_version()} stdlib ({ours['files']} files)")
    for column in ("Measure", "tui-agent", "Goal", "ripgrep", "aider RepoMap"):
        table.add_column(column)

    def goal(key: str) -> str:
        if key not in GOALS:
            return ""
        ok = ours[key] <= GOALS[key]
        return f"{'[green]ok' if ok else '[red]missed'}[/] < {GOALS[key]:g}"

    def base(data: dict, key: str, fmt: str) -> str:
        if "skipped" in data:
            return "[dim]skipped[/]"
        return fmt.format(data[key]) if key in data else ""

    table.add_row(
        "Cold build",
        f"{ours['cold_build_s']:.2f} s",
        goal("cold_build_s"),
        base(rg, "cold_s", "{:.2f} s (search)"),
        base(aider, "cold_s", "{:.1f} s"),
    )  # noqa: E501
    table.add_row("Files/s (cold)", f"{ours['files_per_s']:.0f} ({ours['workers']} workers)", "", "", "")
    table.add_row("Cold build CPU (all processes)", f"{ours['cold_build_cpu_s']:.1f} s", "", "", "")
    table.add_row(
        "No-change refresh", f"{ours['refresh_nochange_s'] * 1000:.0f} ms", goal("refresh_nochange_s"), "", ""
    )  # noqa: E501
    table.add_row("One-file refresh", f"{ours['refresh_one_file_s'] * 1000:.0f} ms", goal("refresh_one_file_s"), "", "")  # noqa: E501
    table.add_row(
        "repo_map, warm index",
        f"{ours['repo_map_warm_s'] * 1000:.0f} ms",
        goal("repo_map_warm_s"),
        "",
        base(aider, "warm_s", "{:.1f} s"),
    )  # noqa: E501
    table.add_row(
        "repo_map after an edit",
        f"{ours['repo_map_after_edit_s'] * 1000:.0f} ms",
        "",
        "",
        base(aider, "after_touch_s", "{:.1f} s"),
    )  # noqa: E501
    same = "yes" if ours["repo_map_identical"] else "[red]no[/]"
    aider_same = base(aider, "identical_across_seeds", "{}")
    table.add_row("repo_map identical (runs, seeds)", same, "yes", "", aider_same)
    table.add_row(
        "search_code p50 / p95",
        f"{ours['search_code_p50_ms']:.1f} / {ours['search_code_p95_ms']:.1f} ms",
        goal("search_code_p95_ms"),
        base(rg, "warm_p50_ms", "{:.0f} ms") + " / " + base(rg, "warm_p95_ms", "{:.0f} ms"),
        "",
    )  # noqa: E501
    table.add_row(
        "find_symbol p50 / p95",
        f"{ours['find_symbol_p50_ms']:.1f} / {ours['find_symbol_p95_ms']:.1f} ms",
        goal("find_symbol_p95_ms"),
        "",
        "",
    )  # noqa: E501
    table.add_row("Index size", f"{ours['index_mb']:.1f} MB", "", "", "")
    console = Console(width=None if sys.stdout.isatty() else 130)
    console.print(table)
    load = result["machine"]["load_average_before"]
    console.print(f"Load average when the run started: {load[0]:.1f} (1 min) on {result['machine']['cpus']} cores")
    for name, data in (("ripgrep", rg), ("aider", aider)):
        if "skipped" in data:
            console.print(f"[yellow]{name} baseline skipped:[/] {data['skipped']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stdlib", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--aider-python", type=Path, default=AIDER_PYTHON)
    parser.add_argument("--skip-aider", action="store_true", help="Leave out the (slow) aider baseline.")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        root = copy_stdlib(args.stdlib, Path(tmp) / "stdlib")
        ours = bench_ours(root)
        rg = bench_ripgrep(root)
        aider = {"skipped": "--skip-aider"} if args.skip_aider else bench_aider(root, args.aider_python)
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "tree": str(args.stdlib),
        "goals": GOALS,
        "tui_agent": ours,
        "ripgrep": rg,
        "aider": aider,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    report(result)
    print(f"Wrote {RESULTS}")


if __name__ == "__main__":
    main()

"""Agent accuracy on GSM-Hard: the CodeAct loop with Qwen2.5-Coder 0.5B / 1.5B, without and with SAG.

    python benchmarks/bench_agent.py                      # first 50 tasks, both models, SAG 1 and 4
    python benchmarks/bench_agent.py --n 20 --models coder-0.5b --sag 1,4

Per-task results are appended to a JSONL file as they finish, so a stopped run continues where it was; tasks are
interleaved across configurations so that every configuration has about as many tasks done at any moment. The
baseline is the plain loop (SAG 1), measured side by side. Prints a rich table and writes
benchmarks/results/bench_agent.json.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO.parent / "shared" / "data" / "gsm_hard_dev_250.jsonl"
OFFLINE = Path.home() / ".cache" / "tui-agent" / "offline-models"
MODELS = {
    "coder-0.5b": OFFLINE / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    "coder-1.5b": OFFLINE / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
}
RESULTS = REPO / "benchmarks" / "results"

_NUMBER = re.compile(r"-?\d[\d,]*\.?\d*(?:[eE][-+]?\d+)?|-?\.\d+")


def parse_number(text: str | None) -> float | None:
    """The last number in an answer ("$1,234.50" -> 1234.5); None when there is none."""
    if text is None:
        return None
    found = _NUMBER.findall(str(text))
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def is_correct(answer: str | None, expected: float) -> bool:
    """Numbers by tolerance (relative 1e-4, absolute 1e-2): GSM-Hard answers are floats like 13138980.0."""
    value = parse_number(answer)
    return value is not None and math.isclose(value, float(expected), rel_tol=1e-4, abs_tol=1e-2)


def load_tasks(path: Path, n: int) -> list[dict]:
    tasks = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                tasks.append(json.loads(line))
            if len(tasks) >= n:
                break
    return tasks


def config_key(model: str, sag: int) -> str:
    return f"{model}/sag{sag}"


def done_results(path: Path) -> dict[tuple[str, int], dict]:
    results = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                results[(row["config"], row["id"])] = row
    return results


def run_task(agent, kernel, task: dict) -> dict:
    """One task through the agent (fresh conversation, fresh kernel state)."""
    from tui_agent.agent.events import RunFinished

    agent.reset()
    kernel.restart()
    started = time.monotonic()
    finished = None
    for event in agent.run(task["question"]):
        if isinstance(event, RunFinished):
            finished = event
    seconds = time.monotonic() - started
    return {
        "id": task["id"],
        "answer": finished.answer,
        "expected": task["answer"],
        "correct": is_correct(finished.answer, task["answer"]),
        "steps": finished.steps,
        "parse_failures": finished.extra.get("parse_failures", 0),
        "stop_reason": finished.stop_reason,
        "prompt_tokens": finished.prompt_tokens,
        "completion_tokens": finished.completion_tokens,
        "seconds": round(seconds, 2),
    }


def summarise(rows: list[dict]) -> dict:
    steps = sum(r["steps"] for r in rows)
    return {
        "tasks": len(rows),
        "accuracy": round(sum(r["correct"] for r in rows) / len(rows), 4) if rows else None,
        "mean_steps": round(statistics.mean(r["steps"] for r in rows), 2) if rows else None,
        "parse_failure_rate": round(sum(r["parse_failures"] for r in rows) / steps, 4) if steps else None,
        "seconds_per_task": round(statistics.mean(r["seconds"] for r in rows), 1) if rows else None,
        "median_seconds_per_task": round(statistics.median(r["seconds"] for r in rows), 1) if rows else None,
        "answered": sum(r["answer"] is not None for r in rows),
        "accuracy_95ci": [round(x, 4) for x in wilson_interval(sum(r["correct"] for r in rows), len(rows))],
    }


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval for an accuracy measured on n tasks: with 50 tasks, differences of a few points are noise."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="GSM-Hard-style JSONL (id, question, answer)")
    parser.add_argument("--n", type=int, default=50, help="first N tasks")
    parser.add_argument("--models", default="coder-0.5b,coder-1.5b", help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--sag", default="1,4", help="comma-separated SAG sizes (1 = plain loop, the baseline)")
    parser.add_argument(
        "--sag-n", type=int, default=None, help="run SAG configurations on only the first M tasks (they cost N times)"
    )
    parser.add_argument("--max-steps", type=int, default=5)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--tasks-file", type=Path, default=RESULTS / "bench_agent.tasks.jsonl")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_agent.json")
    parser.add_argument("--trajectories", type=Path, default=RESULTS / "bench_agent.trajectories.jsonl")
    parser.add_argument("--report-only", action="store_true", help="only summarise the per-task results so far")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=150)  # a log file gets the whole table, not one squeezed to 80 columns
    if not args.data.is_file():
        console.print(f"[red]error:[/] no task file {args.data}")
        return 2
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for name in models:
        if name not in MODELS and not name.endswith(".gguf"):
            console.print(f"[red]error:[/] unknown model {name!r}; use one of {', '.join(MODELS)} or a .gguf path")
            return 2
    sags = [int(s) for s in args.sag.split(",") if s.strip()]
    configs = [(m, s) for m in models for s in sags]
    tasks = load_tasks(args.data, args.n)
    args.tasks_file.parent.mkdir(parents=True, exist_ok=True)
    done = done_results(args.tasks_file)

    if not args.report_only:
        from tui_agent.agent.loop import Agent
        from tui_agent.agent.trajectory import TrajectoryRecorder
        from tui_agent.models.loader import load_chat_model
        from tui_agent.tools.kernel import Kernel

        workspace = Path(tempfile.mkdtemp(prefix="bench-agent-"))
        kernel = Kernel(workspace, web=False, timeout=30, memory_limit_mb=2048)
        kernel.start()
        loaded = {}
        try:
            for index, task in enumerate(tasks):
                for model_name, sag in configs:
                    key = config_key(model_name, sag)
                    if (key, task["id"]) in done or (sag > 1 and args.sag_n is not None and index >= args.sag_n):
                        continue
                    if model_name not in loaded:
                        path = MODELS.get(model_name, Path(model_name))
                        loaded[model_name] = load_chat_model(str(path), n_ctx=args.n_ctx)
                    agent = Agent(
                        loaded[model_name],
                        kernel,
                        workspace=workspace,
                        max_steps=args.max_steps,
                        sag=sag,
                        web=False,
                        repo_map="",
                        max_tokens=400,
                        cell_timeout=30,
                        recorder=TrajectoryRecorder(args.trajectories),
                    )
                    row = {"config": key, "model": model_name, "sag": sag, **run_task(agent, kernel, task)}
                    done[(key, task["id"])] = row
                    with args.tasks_file.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")
                    mark = "✓" if row["correct"] else "✗"
                    console.print(
                        f"{key:<18} task {task['id']:>5}: {mark} answer={row['answer']!s:.30} "
                        f"expected={task['answer']} steps={row['steps']} {row['seconds']} s"
                    )
        finally:
            kernel.shutdown()

    ids = {t["id"] for t in tasks}
    sag_ids = {t["id"] for t in tasks[: args.sag_n]} if args.sag_n is not None else ids
    summary = {}
    table = Table(title=f"Agent on {args.data.name} (first {len(tasks)} tasks, max {args.max_steps} steps)")
    # "tasks" counts what has finished: a stopped run reports what it has, and a rerun continues it.
    columns = ("config", "tasks", "accuracy", "95% interval", "answered", "mean steps", "parse failures / step")
    for column in (*columns, "s / task (mean)", "s / task (median)"):
        table.add_column(column, justify="left" if column == "config" else "right")
    for model_name, sag in configs:
        key = config_key(model_name, sag)
        rows = [r for (k, i), r in done.items() if k == key and i in (sag_ids if sag > 1 else ids)]
        stats = summarise(rows)
        summary[key] = {"model": model_name, "sag": sag, **stats}
        if rows:
            table.add_row(
                key + (" (baseline)" if sag == 1 else ""),
                str(stats["tasks"]),
                f"{stats['accuracy']:.1%}",
                "{:.0%}-{:.0%}".format(*stats["accuracy_95ci"]),
                str(stats["answered"]),
                f"{stats['mean_steps']:.2f}",
                f"{stats['parse_failure_rate']:.1%}" if stats["parse_failure_rate"] is not None else "-",
                f"{stats['seconds_per_task']:.1f}",
                f"{stats['median_seconds_per_task']:.1f}",
            )
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"data": str(args.data), "n": len(tasks), "max_steps": args.max_steps, "configs": summary}, indent=2)
        + "\n",
        encoding="utf-8",
    )
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

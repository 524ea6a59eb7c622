"""Fixing bugs: the agent with its edit tools on generated fix-the-bug tasks, Qwen2.5-Coder 0.5B and 1.5B.

    python benchmarks/bench_edit.py                         # 20 tasks, both models, max 8 steps
    python benchmarks/bench_edit.py --n 10 --models coder-1.5b

Each task is a small repository with a real function, a one-line injected bug and a failing test
(``training.fixbug_tasks``); a task counts as fixed when its tests pass after the run, whatever the final answer
says. The agent runs in auto mode (as `ask --yes`). The models are compared side by side in the same run; the
baseline for the fix rate is the untouched repositories, whose tests all fail (checked when the tasks are made).
A thin front end to ``training.evaluate``: trajectories are kept under benchmarks/results/bench_edit/, a stopped
run continues where it was. Prints a table and writes benchmarks/results/bench_edit.json with the command, commit
and settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODEL_DIRS = (Path.home() / ".cache" / "tui-agent" / "offline-models", Path.home() / ".cache" / "tui-agent-test-models")
FILES = {
    "coder-0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    "coder-1.5b": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
}
RESULTS = REPO / "benchmarks" / "results"


def model_path(name: str) -> Path | None:
    if name.endswith(".gguf"):
        return Path(name)
    for folder in MODEL_DIRS:
        if (folder / FILES.get(name, "-")).is_file():
            return folder / FILES[name]
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20, help="number of generated tasks")
    parser.add_argument("--seed", type=int, default=0, help="which tasks are generated")
    parser.add_argument("--models", default="coder-0.5b,coder-1.5b", help="comma-separated: " + ", ".join(FILES))
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--chunk", type=int, default=2, help="tasks per model before the next model's turn")
    parser.add_argument(
        "--report-only", action="store_true", help="run nothing: report the trajectories finished so far"
    )
    parser.add_argument("--out-dir", type=Path, default=RESULTS / "bench_edit")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_edit.json")
    args = parser.parse_args()

    from rich.console import Console

    from training.evaluate import ModelRef, build_report, code_version, config_name, evaluate, git_commit, render_table
    from training.fixbug_tasks import generate_fixbug_tasks
    from training.generate import GenerateOptions

    console = Console() if Console().is_terminal else Console(width=150)
    models = []
    for name in (m.strip() for m in args.models.split(",") if m.strip()):
        path = model_path(name)
        if path is None or not path.is_file():
            console.print(f"[red]error:[/] model {name!r} not found (use one of {', '.join(FILES)} or a .gguf path)")
            return 2
        models.append(str(path))
    tasks = generate_fixbug_tasks(args.n, seed=args.seed, root=args.out_dir / "repos")
    options = GenerateOptions(max_steps=args.max_steps, max_tokens=args.max_tokens, cell_timeout=60.0, web=False)
    if args.report_only:
        names = [config_name(ModelRef.parse(m), 1) for m in models]
        report = build_report(args.out_dir, names, {str(t.id) for t in tasks}, code_version())
    else:
        report = evaluate(
            models,
            tasks,
            args.out_dir,
            sags=[1],
            options=options,
            n_ctx=args.n_ctx,
            chunk=args.chunk,
            progress=lambda name, done, total: console.print(f"{name}: {done}/{total}") if done else None,
        )
    console.print(render_table(report, title=f"Fix-the-bug, {len(tasks)} generated tasks (max {args.max_steps} steps)"))
    report.update(
        {
            "command": " ".join(["python", *sys.argv]),
            "commit": git_commit(),
            "tasks_seed": args.seed,
            "settings": {
                "max_steps": args.max_steps,
                "max_tokens": args.max_tokens,
                "n_ctx": args.n_ctx,
                "approval": "auto",
                "web": False,
                "temperature": 0.0,
                "sag": 1,
            },
            "task_ids": [t.id for t in tasks],
            "bugs": {t.id: t.meta["bug"] for t in tasks},
        }
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

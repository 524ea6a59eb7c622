"""Agent accuracy on GSM-Hard: the CodeAct loop with Qwen2.5-Coder 0.5B / 1.5B, without and with SAG.

    python benchmarks/bench_agent.py                      # first 50 tasks, both models, SAG 1 and 4
    python benchmarks/bench_agent.py --n 20 --models coder-0.5b --sag 1,4

A thin front end to ``training.evaluate`` (the same code as `tui-agent eval`): every trajectory is kept under
benchmarks/results/bench_agent/, a stopped run continues where it was, and only trajectories of the current code
version are averaged. The baseline is the plain loop (SAG 1), measured side by side. Prints a table and writes
benchmarks/results/bench_agent.json with the command, commit and settings.
"""

from __future__ import annotations

import argparse
import json
import sys
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="JSONL task file (id, question, answer)")
    parser.add_argument("--n", type=int, default=50, help="first N tasks")
    parser.add_argument("--models", default="coder-0.5b,coder-1.5b", help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--sag", default="1,4", help="comma-separated SAG sizes (1 = plain loop, the baseline)")
    parser.add_argument("--max-steps", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=400)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--out-dir", type=Path, default=RESULTS / "bench_agent")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_agent.json")
    args = parser.parse_args()

    from rich.console import Console

    from training.evaluate import evaluate, git_commit, render_table
    from training.generate import GenerateOptions
    from training.tasks import load_tasks

    console = Console() if Console().is_terminal else Console(width=150)
    if not args.data.is_file():
        console.print(f"[red]error:[/] no task file {args.data}")
        return 2
    models = []
    for name in (m.strip() for m in args.models.split(",") if m.strip()):
        if name not in MODELS and not name.endswith(".gguf"):
            console.print(f"[red]error:[/] unknown model {name!r}; use one of {', '.join(MODELS)} or a .gguf path")
            return 2
        models.append(str(MODELS.get(name, name)))
    tasks = load_tasks(args.data, limit=args.n)
    options = GenerateOptions(max_steps=args.max_steps, max_tokens=args.max_tokens, cell_timeout=30.0)
    report = evaluate(
        models,
        tasks,
        args.out_dir,
        sags=[int(s) for s in args.sag.split(",")],
        options=options,
        n_ctx=args.n_ctx,
        progress=lambda name, done, total: console.print(f"{name}: {done}/{total}") if done else None,
    )
    console.print(
        render_table(report, title=f"Agent on {args.data.name} (first {len(tasks)}, max {args.max_steps} steps)")
    )
    report.update({"command": " ".join(["python", *sys.argv]), "commit": git_commit(), "data": str(args.data)})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

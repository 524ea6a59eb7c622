"""Copied answers: how often a base model answers with a few-shot example's answer, with and without the copy guard.

    python benchmarks/bench_copy.py                         # 20 GSM-Hard tasks, Gemma 3 270M and Qwen 0.5B
    python benchmarks/bench_copy.py --n 10 --models gemma3-270m --max-steps 2

Small base models that have not worked a task out often give an answer the prompt shows instead (12987, the
first example's; 42, once the final_answer tool's own doc), most of all on the forced final turn, or run an
example's cell word for word. The copy guard (``tui_agent.agent.copying``) marks copied cells and refuses such an
answer when the run never produced it itself: on a normal step the model is told and tries again, on the forced
turn the run ends without an answer. Both rows of a model run the same tasks side by side, task by task (guard off, the
baseline, then on), with a short step limit so forced turns happen. Trajectories are kept under
benchmarks/results/bench_copy/ (a stopped run continues); prints a table and writes
benchmarks/results/bench_copy.json with the command, commit and settings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO.parent / "shared" / "data" / "gsm_hard_dev_250.jsonl"
OFFLINE = Path.home() / ".cache" / "tui-agent" / "offline-models"
MODELS = {
    "gemma3-270m": "gemma3-270m",  # the embedded default, as `ask` runs it
    "coder-0.5b": str(OFFLINE / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
}
RESULTS = REPO / "benchmarks" / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="JSONL task file (id, question, answer)")
    parser.add_argument("--n", type=int, default=20, help="first N tasks")
    parser.add_argument("--models", default="gemma3-270m,coder-0.5b", help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--max-steps", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=400)
    parser.add_argument("--out-dir", type=Path, default=RESULTS / "bench_copy")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_copy.json")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from training.evaluate import code_version, git_commit, wilson_interval
    from training.tasks import load_tasks
    from tui_agent.agent.trajectory import TrajectoryRecorder, read_trajectories
    from tui_agent.session import open_session, run_episode

    console = Console() if Console().is_terminal else Console(width=150)
    tasks = load_tasks(args.data, limit=args.n)
    version, commit = code_version(), git_commit()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in (m.strip() for m in args.models.split(",") if m.strip()):
        if name not in MODELS:
            console.print(f"[red]error:[/] unknown model {name!r} (use one of {', '.join(MODELS)})")
            return 2
        files = {guard: args.out_dir / f"{name}-guard-{'on' if guard else 'off'}.jsonl" for guard in (False, True)}
        done = {
            guard: {r.task_id for r in read_trajectories(path) if r.settings.get("code_version") == version}
            if path.exists() else set()
            for guard, path in files.items()
        }  # fmt: skip
        with open_session(
            model=MODELS[name], workspace=args.out_dir, max_steps=args.max_steps, web=False, approval="auto",
            temperature=0.0, max_tokens=args.max_tokens,
        ) as session:  # fmt: skip
            for i, task in enumerate(tasks, 1):
                for guard in (False, True):
                    if task.id in done[guard]:
                        continue
                    session.agent.copy_guard = guard
                    record = run_episode(session.agent, task.question, task_id=task.id, reference=task.reference())
                    record.settings.update(code_version=version, commit=commit)
                    TrajectoryRecorder(files[guard]).write(record)
                    console.print(f"{name} guard={'on' if guard else 'off'} {i}/{len(tasks)}: {record.final_answer!r}")
        for guard, path in files.items():
            records = [r for r in read_trajectories(path) if r.settings.get("code_version") == version]
            rows.append(summarise(f"{name}, guard {'on' if guard else 'off'}", records, wilson_interval))

    table = Table(title=f"Copied answers, first {len(tasks)} of {args.data.name} (max {args.max_steps} steps)")
    for column in ("config", "tasks", "correct", "95% CI", "no answer", "forced turns", "copied answers",
                   "copies refused", "copied cells", "s/task"):  # fmt: skip
        table.add_column(column)
    for row in rows:
        low, high = row["correct_ci95"]
        table.add_row(
            row["config"], str(row["tasks"]), str(row["correct"]), f"{low:.0%}-{high:.0%}", str(row["no_answer"]),
            str(row["forced_turns"]), str(row["copied_answers"]), str(row["copies_refused"]), str(row["copied_cells"]),
            f"{row['seconds_median']:.1f}",
        )  # fmt: skip
    console.print(table)
    report = {
        "command": " ".join(["python", *sys.argv]),
        "commit": commit,
        "code_version": version,
        "settings": {
            "max_steps": args.max_steps,
            "max_tokens": args.max_tokens,
            "temperature": 0.0,
            "web": False,
            "tasks": f"first {len(tasks)} of {args.data.name}",
        },  # fmt: skip
        "rows": rows,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.out}")
    return 0


def summarise(config: str, records: list, wilson_interval) -> dict:
    """Accuracy and the copy counts of one row: an answer that is an example's (and that the run never produced)
    is a copied answer; the guard's refusals are counted from the steps it marked."""
    from training.checking import check_answer
    from tui_agent.agent.copying import copied_answer, copied_cell

    correct = sum(check_answer(r.final_answer, r.reference) for r in records if r.final_answer is not None)
    copied = 0
    for r in records:
        own = [r.task, *(s.observation for s in r.steps if not copied_cell(s.code or ""))]
        copied += r.final_answer is not None and copied_answer(r.final_answer, own, r.messages[0]["content"])
    return {
        "config": config,
        "tasks": len(records),
        "correct": correct,
        "correct_ci95": wilson_interval(correct, len(records)),
        "no_answer": sum(r.final_answer is None for r in records),
        "forced_turns": sum(any(s.forced_final for s in r.steps) for r in records),
        "copied_answers": copied,
        "copies_refused": sum(s.copied_answer for r in records for s in r.steps),
        "copied_cells": sum(s.copied_cell for r in records for s in r.steps),
        "seconds_median": statistics.median(r.seconds for r in records) if records else 0.0,
    }


if __name__ == "__main__":
    raise SystemExit(main())

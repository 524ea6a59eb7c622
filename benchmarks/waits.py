"""Where users wait: time to the first token of `ask` with and without the prompt cache, and SAG N=4 vs N=1.

Used by bench_runtime.py (``--only cache`` and ``--only sag``); kept apart so each part stays readable.

- Prompt cache: every measurement is a fresh process (nothing in memory), which loads the model, builds the agent
  for a small workspace (so the prompt has a repo map), and runs `ask`'s agent until the first generated token.
  Cold: an empty cache directory (the prompt is read and the entry written). Cached: the same directory again.
  Runs alternate cold, cached, cold, cached... so both see the same load.
- SAG: the same tasks with N=1 and N=4 (auto mode: trial runs in kernel forks, the vote), one model, alternating
  per task; wall time per task and accuracy by the training package's answer checker.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TTFT_CHILD = r"""
import json, sys, time
started = time.perf_counter()
from pathlib import Path
from tui_agent.config import Settings
from tui_agent.session import load_model, make_agent, make_kernel
workspace = Path(sys.argv[2])
settings = Settings(model=sys.argv[1], web=False, approval="auto", max_steps=1)
model = load_model(sys.argv[1], settings)
loaded = time.perf_counter()
kernel = make_kernel(workspace, settings, start=False)
agent = make_agent(model, kernel, workspace, settings, read_only=True, max_tokens=16)
built = time.perf_counter()
first = None
tokens = 0
for event in agent.run(sys.argv[3]):
    if event.kind == "token" and event.step == 1:
        tokens += 1
        if tokens == (2 if agent.step_prefix else 1):  # the step prefix is written for the model, not generated
            first = time.perf_counter()
            break
print(json.dumps({
    "load_s": loaded - started,
    "ttft_s": first - built if first else None,
    "process_to_first_token_s": first - started if first else None,
    "threads": model.n_threads,
    "system_prompt_tokens": model.count_tokens(agent.system_prompt),
}))
"""

TASK = "What is 17 * 23 + 5?"


def _workspace(root: Path) -> Path:
    """A small project, so the prompt carries a repo map after its static part."""
    workspace = root / "project"
    shutil.copytree(REPO / "tui_agent" / "agent", workspace / "agent", ignore=shutil.ignore_patterns("__pycache__"))
    return workspace


def measure_ask_ttft(model: str, rounds: int) -> dict:
    """Cold vs cached time to first token of `ask` (fresh process each), alternating."""
    import os

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workspace = _workspace(root)
        env = {**os.environ, "PYTHONPATH": str(REPO), "TUI_AGENT_WEB": "false"}
        for name in ("CONFIG", "DATA"):
            (root / name.lower()).mkdir()
            env[f"TUI_AGENT_{name}_DIR"] = str(root / name.lower())
        runs: dict[str, list[dict]] = {"cold": [], "cached": []}

        def child(cache: Path) -> dict:
            done = subprocess.run(
                [sys.executable, "-c", TTFT_CHILD, model, str(workspace), TASK],
                env={**env, "TUI_AGENT_CACHE_DIR": str(cache)},
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if done.returncode != 0:
                raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "child failed")
            return json.loads(done.stdout.strip().splitlines()[-1])

        for i in range(rounds):
            cache = root / f"cache-{i}"  # empty: the first run is cold, the second finds its entry
            cache.mkdir()
            runs["cold"].append(child(cache))
            runs["cached"].append(child(cache))
    cold = statistics.median(r["ttft_s"] for r in runs["cold"])
    cached = statistics.median(r["ttft_s"] for r in runs["cached"])
    return {
        "model": model,
        "rounds": rounds,
        "system_prompt_tokens": runs["cold"][0]["system_prompt_tokens"],
        "threads": [r["threads"] for r in runs["cold"] + runs["cached"]],
        "cold_ttft_s": round(cold, 3),
        "cached_ttft_s": round(cached, 3),
        "cached_over_cold": round(cached / cold, 3) if cold else None,
        "goal": "cached <= 0.15 x cold",
        "runs": runs,
    }


def measure_sag(model: str, tasks_file: Path, n_tasks: int, sag: int, max_steps: int) -> dict:
    """N=1 and N=``sag`` over the same tasks, alternating per task: wall time and accuracy."""
    from training.checking import check_answer
    from tui_agent.config import Settings
    from tui_agent.session import load_model, open_session

    tasks = [json.loads(line) for line in tasks_file.read_text().splitlines() if line.strip()][:n_tasks]
    settings = Settings(model=model, web=False, approval="auto", max_steps=max_steps)
    loaded = load_model(model, settings)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        sessions = {
            n: open_session(settings, workspace=workspace, model=loaded, repo_map="", sag=n, start_kernel=True)
            for n in (1, sag)
        }
        try:
            for index, task in enumerate(tasks):
                row = {"id": task.get("id"), "answer": task["answer"]}
                order = (1, sag) if index % 2 == 0 else (sag, 1)
                for n in order:
                    began = time.perf_counter()
                    record = sessions[n].run(task["question"])
                    row[f"n{n}"] = {
                        "seconds": round(time.perf_counter() - began, 2),
                        "answer": record.final_answer,
                        "correct": bool(record.final_answer is not None and check_answer(record.final_answer, task)),
                        "steps": len(record.steps),
                        "completion_tokens": record.completion_tokens,
                    }
                rows.append(row)
                print(
                    f"  task {index + 1}/{len(tasks)}: N=1 {row['n1']['seconds']:.1f} s, "
                    f"N={sag} {row[f'n{sag}']['seconds']:.1f} s",
                    flush=True,
                )
        finally:
            for session in sessions.values():
                session.close()
            loaded.close()
    one = sum(r["n1"]["seconds"] for r in rows)
    many = sum(r[f"n{sag}"]["seconds"] for r in rows)
    return {
        "model": model,
        "tasks": len(rows),
        "tasks_file": str(tasks_file),
        "max_steps": max_steps,
        "sag": sag,
        "n1_seconds": round(one, 1),
        f"n{sag}_seconds": round(many, 1),
        "ratio": round(many / one, 3) if one else None,
        "n1_accuracy": sum(r["n1"]["correct"] for r in rows) / len(rows),
        f"n{sag}_accuracy": sum(r[f"n{sag}"]["correct"] for r in rows) / len(rows),
        "goal": f"N={sag} wall time <= 2.0 x N=1, accuracy unchanged within noise",
        "rows": rows,
    }

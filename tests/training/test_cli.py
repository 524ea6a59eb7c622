"""`tui-agent train ...` and `tui-agent eval` as a user runs them: help, outputs, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.scripted import step
from training.recipe import RecipeError, load_recipe, run_recipe
from tui_agent.agent.trajectory import RunRecord, StepRecord, TrajectoryRecorder
from tui_agent.cli import app

runner = CliRunner()
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_help_lists_every_stage_and_loads_nothing_heavy():
    result = invoke("train", "--help")
    assert result.exit_code == 0
    for stage in ("tasks", "generate", "filter", "sft", "export", "eval", "run", "status", "report"):
        assert stage in result.output
    heavy = "('torch', 'transformers', 'trl', 'llama_cpp')"
    code = f"import sys; from tui_agent.cli import app; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_tasks_from_a_file_and_a_codebase(tmp_path):
    source = tmp_path / "gsm.jsonl"
    source.write_text("".join(json.dumps({"id": i, "question": f"{i}+1?", "answer": i + 1}) + "\n" for i in range(5)))
    out = tmp_path / "tasks.jsonl"
    result = invoke(
        "train",
        "tasks",
        "--from",
        str(source),
        "-n",
        "3",
        "--codebase",
        "typer",
        "--per-codebase",
        "4",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 7 and {r["kind"] for r in rows} >= {"number", "exact"}


def test_tasks_with_fix_the_bug_tasks(tmp_path):
    out = tmp_path / "tasks.jsonl"
    result = invoke("train", "tasks", "--fix-bugs", "1", "--seed", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["kind"] == "fix_bug" and len(row["meta"]["files"]) == 2


def test_tasks_with_arithmetic_tasks(tmp_path):
    out = tmp_path / "tasks.jsonl"
    result = invoke("train", "tasks", "--arithmetic", "4", "--seed", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and all(r["id"].startswith("arithmetic/") and r["answer"] for r in rows)


def test_tasks_needs_a_source_and_reports_bad_files(tmp_path):
    assert invoke("train", "tasks", "--out", str(tmp_path / "t.jsonl")).exit_code == 2
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = invoke("train", "tasks", "--from", str(empty), "--out", str(tmp_path / "t.jsonl"))
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output


def test_generate_with_an_unreachable_teacher_is_one_line(tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": 1, "question": "1+1?", "answer": 2}) + "\n")
    result = invoke(
        "train",
        "generate",
        str(tasks),
        "--teacher",
        "m",
        "--endpoint",
        "http://127.0.0.1:9/v1",
        "--out",
        str(tmp_path / "runs.jsonl"),
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("error: Cannot reach the teacher at http://127.0.0.1:9/v1")


def record(task_id: str, answer: str | None, expected: str, **kw) -> RunRecord:
    steps = [StepRecord(step=1, raw=step("t", f"final_answer({answer})"), final_answer=answer)]
    return RunRecord(
        task=f"task {task_id}",
        model="m",
        task_id=task_id,
        steps=steps,
        final_answer=answer,
        stop_reason="answered" if answer else "max_steps",
        reference={"answer": expected, "kind": "number"},
        messages=[{"role": "system", "content": "s"}],
        **kw,
    )


def test_filter_prints_a_table_and_keeps_correct_runs(tmp_path):
    runs = tmp_path / "runs.jsonl"
    recorder = TrajectoryRecorder(runs)
    for r in (record("a", "4", "4"), record("b", "5", "4"), record("c", None, "4")):
        recorder.write(r)
    result = invoke("train", "filter", str(runs), "--out", str(tmp_path / "kept.jsonl"))
    assert result.exit_code == 0, result.output
    assert "kept 1 trajectories" in result.output and "wrong" in result.output
    kept = [json.loads(line)["task_id"] for line in (tmp_path / "kept.jsonl").read_text().splitlines()]
    assert kept == ["a"]


def test_filter_names_a_malformed_line(tmp_path):
    runs = tmp_path / "runs.jsonl"
    TrajectoryRecorder(runs).write(record("a", "4", "4"))
    runs.write_text(runs.read_text() + "{broken\n")
    result = invoke("train", "filter", str(runs), "--out", str(tmp_path / "kept.jsonl"))
    assert result.exit_code == 2 and "runs.jsonl:2" in result.output


def test_export_and_eval_errors_are_one_line(tmp_path):
    result = invoke("train", "export", str(tmp_path / "nothing"), "--out", str(tmp_path / "a.gguf"))
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output
    assert invoke("train", "export", str(tmp_path), "--out", "a.gguf", "--register", "x").exit_code == 2
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": 1, "question": "1+1?", "answer": 2}) + "\n")
    result = invoke("eval", str(tasks), "-m", str(tmp_path / "missing.gguf"), "--out", str(tmp_path / "eval"))
    assert result.exit_code == 2 and "No such model file" in result.output
    result = invoke("eval", str(tasks), "-m", "teacher", "-j", "4")
    assert result.exit_code == 2 and "--concurrency needs --endpoint" in result.output
    result = invoke("eval", str(tasks), "-m", "t", "--endpoint", "http://127.0.0.1:9/v1", "--prompt-style", "short")
    assert result.exit_code == 2 and "unknown --prompt-style 'short'" in result.output


RECIPE = """
name = "toy"
workdir = "work"
[tasks]
from = [{ source = "tasks.jsonl", limit = 2 }]
[teacher]
model = "missing.gguf"
[student]
model = "gemma3-270m"
[lora]
lora_r = 4
"""


def test_recipe_runs_its_stages_and_reports_bad_recipes(tmp_path):
    (tmp_path / "tasks.jsonl").write_text(
        "".join(json.dumps({"id": i, "question": f"{i}?", "answer": i}) + "\n" for i in range(3))
    )
    path = tmp_path / "recipe.toml"
    path.write_text(RECIPE)
    recipe = load_recipe(path)
    assert recipe.workdir == tmp_path / "work" and recipe.lora == {"lora_r": 4}
    run_recipe(recipe, only={"tasks"}, echo=lambda text: None)
    assert len((tmp_path / "work" / "tasks.jsonl").read_text().splitlines()) == 2
    with pytest.raises(RecipeError, match="unknown stage"):
        run_recipe(recipe, only={"distil"})
    result = invoke("train", "run", str(path), "--only", "generate")
    assert result.exit_code == 2 and "missing.gguf" in result.output
    path.write_text(RECIPE.replace("lora_r = 4", "rank = 4"))
    with pytest.raises(RecipeError, match=r"\[lora\] has unknown field\(s\) rank"):
        load_recipe(path)
    path.write_text(RECIPE.replace("[student]\nmodel", "[student]\nname"))
    with pytest.raises(RecipeError, match=r"\[student\] needs model"):
        load_recipe(path)


def test_report_before_any_eval_says_which_stage_writes_the_sets(tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text(RECIPE + '[eval]\nsets = [{ name = "a", source = "tasks.jsonl" }]\n')
    result = invoke("train", "report", str(path))
    assert result.exit_code == 2 and "--only eval" in result.output and "Traceback" not in result.output


def test_the_shipped_recipe_is_valid():
    recipe = load_recipe(Path(__file__).resolve().parents[2] / "training" / "recipes" / "gemma3-270m-agent.toml")
    assert recipe.student["model"] == "gemma3-270m" and recipe.export["name"]


@pytest.mark.slow
def test_sigterm_stops_generation_cleanly_and_a_rerun_resumes(tmp_path, gemma_gguf):
    import os
    import signal
    import time

    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        "".join(json.dumps({"id": i, "question": f"What is {i} + {i}?", "answer": 2 * i}) + "\n" for i in range(20))
    )
    out = tmp_path / "runs.jsonl"
    command = [
        sys.executable,
        "-m",
        "tui_agent.cli",
        "train",
        "generate",
        str(tasks),
        "--teacher",
        str(gemma_gguf),
        "--out",
        str(out),
        "--max-steps",
        "2",
        "--max-tokens",
        "64",
        "--n-ctx",
        "4096",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while not (out.exists() and out.read_text().count("\n") >= 1) and time.monotonic() < deadline:
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=90)
    assert process.returncode == 130, stderr
    assert "everything finished so far is saved" in stderr
    lines = out.read_text().splitlines()
    assert lines and all(json.loads(line)["task_id"] for line in lines)  # only whole trajectories
    done = {json.loads(line)["task_id"] for line in lines}
    assert len(done) == len(lines)

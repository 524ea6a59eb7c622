"""`train status`: each stage's progress read from a recipe's work directory, written the way the stages write it."""

from __future__ import annotations

import json

from rich.console import Console
from typer.testing import CliRunner

from training.evaluate import code_version
from training.recipe import load_recipe
from training.status import recipe_status, status_table
from training.tasks import Task, write_tasks
from tui_agent.agent.trajectory import RunRecord, StepRecord, TrajectoryRecorder

RECIPE = """name = "toy"
workdir = "work"
[tasks]
from = [{ source = "x.jsonl" }]
[teacher]
model = "t.gguf"
[student]
model = "s.gguf"
[export]
name = "toy-agent"
[eval]
models = ["t.gguf", "@student", { model = "@student", sag = 4 }]
sets = [{ name = "held", source = "held.jsonl" }]
"""


def _record(task: Task, answer: str, seconds: float, **settings) -> RunRecord:
    step = StepRecord(step=1, code=f"final_answer({answer})", final_answer=answer)
    return RunRecord(
        task=task.question,
        model="t",
        task_id=str(task.id),
        reference=task.reference(),
        steps=[step],
        final_answer=answer,
        stop_reason="answered",
        seconds=seconds,
        settings=settings,
    )


def _tasks(prefix: str, n: int, source: str) -> list[Task]:
    return [
        Task(id=f"{prefix}{i}", question=f"{i} * 2?", answer=str(2 * i), kind="number", source=source) for i in range(n)
    ]


def _rows(recipe):
    return {row.stage.strip(): row for row in recipe_status(recipe)}


def test_a_fresh_recipe_has_nothing_started(tmp_path):
    (tmp_path / "r.toml").write_text(RECIPE)
    write_tasks(_tasks("h", 2, "held"), tmp_path / "held.jsonl")
    rows = _rows(load_recipe(tmp_path / "r.toml"))
    assert [rows[s].state for s in ("tasks", "generate", "filter", "sft", "export", "eval held")] == ["not started"] * 6


def test_progress_of_every_stage_is_read_from_the_work_directory(tmp_path):
    (tmp_path / "r.toml").write_text(RECIPE)
    recipe = load_recipe(tmp_path / "r.toml")
    work = tmp_path / "work"
    arithmetic, codebase = _tasks("a", 3, "arithmetic"), _tasks("c", 2, "codebase:rich")
    write_tasks(arithmetic + codebase, work / "tasks.jsonl")
    recorder = TrajectoryRecorder(work / "trajectories.jsonl")
    for task in arithmetic[:2]:
        recorder.write(_record(task, task.answer, 900.0))  # two right answers in half an hour
    recorder.write(_record(codebase[0], "wrong", 1800.0))
    with (work / "trajectories.jsonl").open("a") as handle:
        handle.write('{"task": "4 * 2?", "task_id": "a')  # the running teacher is writing its next run
    (work / "kept.jsonl").write_text("{}\n")  # an older filter run kept one
    checkpoint = work / "sft" / "checkpoints" / "checkpoint-20"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 20, "max_steps": 50}))
    (work / "sft" / "checkpoints" / "checkpoint-30").mkdir()  # cut off while being written: ignored
    held = _tasks("h", 2, "held")
    write_tasks(held, tmp_path / "held.jsonl")
    version = code_version()
    eval_file = work / "eval" / "held" / "toy-agent-sag1.jsonl"
    eval_file.parent.mkdir(parents=True)
    eval_file.write_text(
        json.dumps({"task_id": "h0", "settings": {"code_version": version}})
        + "\n"
        + json.dumps({"task_id": "h1", "settings": {"code_version": "older"}})  # not comparable: not counted
        + "\n"
    )

    rows = _rows(recipe)
    assert rows["tasks"].state == "done" and "5 tasks" in rows["tasks"].detail
    assert rows["generate"].state == "partial" and "3 of 5 tasks (60%), 1.0 teacher-hours" in rows["generate"].detail
    assert rows["filter"].state == "partial"
    assert "2 of 3 kept, 2 kept per teacher-hour" in rows["filter"].detail and "holds 1" in rows["filter"].detail
    wanted = {row.stage: row for row in recipe_status(recipe, target=10)}["filter"]
    assert "10 kept needs about 4.0 more hours" in wanted.detail  # 8 more at 2 per hour
    assert rows["arithmetic"].detail == "2 of 2 kept, 4 per hour"
    assert rows["codebase"].detail == "0 of 1 kept, 0 per hour"  # codebase:rich counts as codebase
    assert rows["sft"].state == "partial" and "step 20 of 50" in rows["sft"].detail
    assert rows["export"].state == "not started"
    assert rows["eval held"].state == "partial"
    assert "toy-agent-sag1 1/2" in rows["eval held"].detail and "toy-agent-sag4 0/2" in rows["eval held"].detail
    assert "t-sag1 0/2" in rows["eval held"].detail

    (work / "sft" / "training_summary.json").write_text(json.dumps({"examples": 2, "seconds": 600}))
    (work / "adapter.gguf").write_bytes(b"x" * 2_000_000)
    rows = _rows(recipe)
    assert rows["sft"].state == "done" and "2 trajectories in 10 min" in rows["sft"].detail
    assert rows["export"].state == "done" and "(2.0 MB)" in rows["export"].detail
    console = Console(record=True, width=140)
    console.print(status_table(recipe_status(recipe), title="toy"))
    shown = console.export_text()
    assert "partial" in shown and "done" in shown and "toy-agent-sag4 0/2" in shown


def test_the_command_prints_the_table_and_reports_a_bad_recipe(tmp_path):
    from tui_agent.cli import app

    (tmp_path / "r.toml").write_text(RECIPE)
    write_tasks(_tasks("h", 1, "held"), tmp_path / "held.jsonl")
    shown = CliRunner().invoke(app, ["train", "status", str(tmp_path / "r.toml")], terminal_width=160)
    assert shown.exit_code == 0, shown.output
    assert "toy" in shown.output and "not started" in shown.output
    missing = CliRunner().invoke(app, ["train", "status", str(tmp_path / "absent.toml")])
    assert missing.exit_code != 0 and "no such recipe file" in missing.output

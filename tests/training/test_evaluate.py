"""`eval`: side-by-side summaries, resumable, never mixing code versions; one real-model run."""

from __future__ import annotations

import json
import threading

import pytest

from tests.scripted import ScriptedModel, step
from training.evaluate import (
    EvalError,
    ModelRef,
    build_report,
    endpoint_loader,
    evaluate,
    render_table,
    summarise,
    wilson_interval,
)
from training.generate import GenerateOptions
from training.tasks import Task

from .server import free_port, llama_server


def tasks(n: int) -> list[Task]:
    return [
        Task(id=f"t{i}", question=f"What is {i} * 2?", answer=str(i * 2), kind="number", source="toy") for i in range(n)
    ]


class Doubler(ScriptedModel):
    """Answers 2*i for the task 'What is i * 2?', or always 0 when ``wrong``."""

    def __init__(self, wrong: bool = False):
        super().__init__([])
        self.wrong = wrong
        self.name = "wrong" if wrong else "doubler"

    lock = threading.Lock()  # one reply at a time when tasks run concurrently

    def stream_chat(self, messages, **kwargs):
        task = next(m["content"] for m in messages if m["content"].startswith("Task:"))
        number = int(task.split()[3])
        with self.lock:
            self.replies = [step("double it", f"final_answer({0 if self.wrong else number * 2})")]
            yield from super().stream_chat(messages, **kwargs)


def loader(ref: ModelRef, n_ctx: int):
    return Doubler(wrong=ref.base == "wrong")


def test_model_refs():
    assert ModelRef.parse("gemma3-270m") == ModelRef("gemma3-270m")
    assert ModelRef.parse("gemma3-270m+out/a.gguf").label == "gemma3-270m+a"
    assert ModelRef.parse("gemma3-270m+none").no_adapter
    assert ModelRef.parse("/m/qwen.gguf").label == "qwen"
    with pytest.raises(EvalError):
        ModelRef.parse("+a.gguf")


def test_wilson_interval():
    low, high = wilson_interval(5, 10)
    assert low < 0.5 < high and 0.2 < low and high < 0.8
    assert wilson_interval(0, 0) == (0.0, 0.0)


def test_side_by_side_report_and_resume(tmp_path):
    report = evaluate(["good", "wrong"], tasks(4), tmp_path, options=GenerateOptions(max_steps=2), load=loader, chunk=2)
    rows = report["configs"]
    assert rows["good-sag1"]["accuracy"] == 1.0 and rows["wrong-sag1"]["accuracy"] == 0.25  # 0 * 2 == 0
    assert rows["good-sag1"]["mean_steps"] == 1.0 and rows["good-sag1"]["parse_failures_per_step"] == 0.0
    assert json.loads((tmp_path / "report.json").read_text())["configs"]["good-sag1"]["tasks"] == 4
    assert rows["wrong-sag1"]["failure_kinds"]["wrong_plan"]["count"] == 3 and not rows["good-sag1"]["failure_kinds"]
    assert "### wrong-sag1: `wrong_plan`" in (tmp_path / "failures.md").read_text()  # a trajectory to read
    lines = (tmp_path / "good-sag1.jsonl").read_text().splitlines()
    stamped = json.loads(lines[0])["settings"]
    assert stamped["code_version"] == report["code_version"] and stamped["commit"]
    again = evaluate(["good"], tasks(4), tmp_path, options=GenerateOptions(max_steps=2), load=loader)
    assert len((tmp_path / "good-sag1.jsonl").read_text().splitlines()) == 4  # resumed: nothing run twice
    assert again["configs"]["good-sag1"]["accuracy"] == 1.0
    assert render_table(again).row_count == 1


def test_concurrent_tasks_are_recorded_and_shown(tmp_path):
    report = evaluate(["good"], tasks(6), tmp_path, options=GenerateOptions(max_steps=2), load=loader, concurrency=3)
    row = report["configs"]["good-sag1"]
    assert row["accuracy"] == 1.0 and row["tasks"] == 6 and row["concurrency"] == 3
    records = [json.loads(line) for line in (tmp_path / "good-sag1.jsonl").read_text().splitlines()]
    assert {r["settings"]["concurrency"] for r in records} == {3}
    cells = [cell for column in render_table(report).columns for cell in column._cells]
    assert any("(3 at once)" in str(cell) for cell in cells)


def test_an_endpoint_serves_plain_model_names_only(tmp_path):
    load = endpoint_loader(f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(EvalError, match="server decides the adapter"):
        evaluate(["gemma3-270m+adapter.gguf"], tasks(1), tmp_path, load=load)
    with pytest.raises(EvalError, match="Cannot reach the teacher"):
        evaluate(["teacher"], tasks(1), tmp_path, load=load)


def test_an_extra_sag_row_for_one_model_only(tmp_path):
    report = evaluate(["good", "wrong"], tasks(2), tmp_path, load=loader, extra=[("good", 2), ("good", 1)])
    assert sorted(report["configs"]) == ["good-sag1", "good-sag2", "wrong-sag1"]  # no duplicate, no wrong-sag2
    assert report["configs"]["good-sag2"]["accuracy"] == 1.0


def test_rows_of_another_code_version_are_never_averaged(tmp_path):
    evaluate(["good"], tasks(2), tmp_path, load=loader)
    path = tmp_path / "good-sag1.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["settings"]["code_version"] = "older"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = build_report(tmp_path, ["good-sag1"], {"t0", "t1"}, rows[1]["settings"]["code_version"])
    assert report["configs"]["good-sag1"]["tasks"] == 1
    assert report["configs"]["good-sag1"]["older_code_versions_left_out"] == 1
    rerun = evaluate(["good"], tasks(2), tmp_path, load=loader)  # the old row's task is run again
    assert rerun["configs"]["good-sag1"]["tasks"] == 2


def test_accuracy_within_fewer_steps_is_read_from_the_trajectories():
    from tui_agent.agent.trajectory import RunRecord, StepRecord

    def run(answer: str | None, at: int, *, forced: bool = False, steps: int | None = None) -> RunRecord:
        done = [StepRecord(step=i) for i in range(1, at)]
        done.append(StepRecord(step=at, final_answer=answer, forced_final=forced))
        done += [StepRecord(step=i) for i in range(at + 1, (steps or at) + 1)]
        return RunRecord(task="t", model="m", steps=done, final_answer=answer, reference={"answer": "4"})

    records = [run("4", 1), run("4", 3), run("5", 2), run("4", 4, forced=True), run(None, 4)]
    assert summarise(records)["accuracy_within_steps"] == {"1": 0.2, "2": 0.2, "3": 0.4, "4": 0.4}
    assert summarise([])["accuracy_within_steps"] == {}


def test_bad_input(tmp_path):
    with pytest.raises(EvalError, match="empty"):
        evaluate(["good"], [], tmp_path, load=loader)
    with pytest.raises(EvalError, match="No such model file"):
        evaluate([str(tmp_path / "missing.gguf")], tasks(1), tmp_path)


@pytest.mark.slow
def test_real_model_evaluation(tmp_path, gemma_gguf):
    report = evaluate(
        [str(gemma_gguf)], tasks(1), tmp_path, options=GenerateOptions(max_steps=1, max_tokens=48), n_ctx=4096
    )
    row = report["configs"][f"{gemma_gguf.stem}-sag1"]
    assert row["tasks"] == 1 and row["mean_steps"] >= 1 and row["tokens_per_task"] > 100


@pytest.mark.slow
def test_a_served_model_is_evaluated_several_tasks_at_once(tmp_path, gemma_gguf):
    from typer.testing import CliRunner

    from tui_agent.cli import app

    task_file = tmp_path / "tasks.jsonl"
    task_file.write_text(
        "".join(json.dumps({"id": t.id, "question": t.question, "answer": t.answer}) + "\n" for t in tasks(2))
    )
    with llama_server(gemma_gguf, alias=str(gemma_gguf)) as url:
        args = ["eval", str(task_file), "-m", str(gemma_gguf), "--endpoint", url, "--chat-format", "gemma", "-j", "2"]
        args += ["--prompt-style", "student"]
        result = CliRunner().invoke(
            app, [*args, "--max-steps", "1", "--max-tokens", "48", "--out", str(tmp_path / "e")]
        )
    assert result.exit_code == 0, result.output
    row = json.loads((tmp_path / "e" / "report.json").read_text())["configs"][f"{gemma_gguf.stem}-sag1"]
    assert row["tasks"] == 2 and row["concurrency"] == 2 and row["mean_steps"] >= 1
    record = json.loads((tmp_path / "e" / f"{gemma_gguf.stem}-sag1.jsonl").read_text().splitlines()[0])
    assert record["settings"]["endpoint"] == url and record["settings"]["chat_format"] == "gemma"
    assert record["settings"]["prompt_style"] == "student" and "Rules:" not in record["messages"][0]["content"]

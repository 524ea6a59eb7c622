"""`generate`: resumable teacher runs with the app's loop on real kernels (scripted teachers for the logic)."""

from __future__ import annotations

import json
import threading

import pytest

from tests.scripted import ScriptedModel, step
from training.generate import GenerateError, GenerateOptions, done_keys, generate
from training.tasks import Task
from training.teacher import TeacherError
from tui_agent.agent.trajectory import read_trajectories


def tasks(n: int) -> list[Task]:
    return [
        Task(id=f"t{i}", question=f"What is {i} + 1?", answer=str(i + 1), kind="number", source="toy") for i in range(n)
    ]


def answering_teacher() -> ScriptedModel:
    return ScriptedModel([], when_empty=step("I know it", "final_answer(42)"))


def test_a_stopped_run_resumes_without_duplicates(tmp_path):
    out = tmp_path / "runs.jsonl"
    cancel = threading.Event()
    first = generate(
        tasks(3),
        out,
        answering_teacher(),
        GenerateOptions(max_steps=2),
        cancel=cancel,
        on_record=lambda record: cancel.set(),
    )
    assert first.written == 1
    second = generate(tasks(3), out, answering_teacher(), GenerateOptions(max_steps=2))
    assert (second.skipped, second.written) == (1, 2)
    records = read_trajectories(out)
    assert sorted(r.task_id for r in records) == ["t0", "t1", "t2"]
    assert {r.task_id: r.reference["answer"] for r in records} == {"t0": "1", "t1": "2", "t2": "3"}
    assert all(r.settings["sample"] == 0 and r.settings["max_steps"] == 2 for r in records)


def test_samples_are_separate_trajectories_with_their_own_seeds(tmp_path):
    out = tmp_path / "runs.jsonl"
    generate(tasks(1), out, answering_teacher(), GenerateOptions(samples=2))
    records = read_trajectories(out)
    assert [r.settings["sample"] for r in records] == [0, 1]
    assert records[0].settings["seed"] != records[1].settings["seed"]


def test_a_half_written_last_line_is_cut_off_and_redone(tmp_path):
    out = tmp_path / "runs.jsonl"
    generate(tasks(2), out, answering_teacher())
    lines = out.read_text().splitlines()
    out.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    assert done_keys(out) == {("t0", 0)}
    summary = generate(tasks(2), out, answering_teacher())
    assert summary.written == 1 and len(read_trajectories(out)) == 2


def test_a_malformed_line_is_reported_with_its_number(tmp_path):
    out = tmp_path / "runs.jsonl"
    generate(tasks(1), out, answering_teacher())
    out.write_text("not json\n" + out.read_text())
    with pytest.raises(GenerateError, match=r"runs.jsonl:1: not a trajectory line"):
        generate(tasks(2), out, answering_teacher())
    assert len(out.read_text().splitlines()) == 2  # nothing else touched


def test_concurrent_workers_write_whole_lines(tmp_path):
    out = tmp_path / "runs.jsonl"
    summary = generate(tasks(6), out, answering_teacher(), GenerateOptions(concurrency=3))
    assert summary.written == 6
    assert sorted(json.loads(line)["task_id"] for line in out.read_text().splitlines()) == [f"t{i}" for i in range(6)]


def test_first_thought_prefix_opens_each_trajectory(tmp_path):
    teacher = ScriptedModel(
        ["First I add one to the number.\n\nThen I answer.", " so:\n```py\nfinal_answer(1)\n```<end_code>"]
    )
    out = tmp_path / "runs.jsonl"
    generate(tasks(1), out, teacher, GenerateOptions(ftp=True))
    record = read_trajectories(out)[0]
    assert record.settings["first_thought"] == "First I add one to the number."
    assert record.messages[2]["content"].startswith("Thought: First I add one to the number. so:")
    assert "step by step" in teacher.calls[0][0]["content"]  # the chain-of-thought request came first


class VanishingTeacher(ScriptedModel):
    """A teacher whose server went away: every request fails, and so does the check."""

    def stream_chat(self, *args, **kwargs):
        raise TeacherError("Cannot reach the teacher at http://127.0.0.1:9/v1: is the server running?")

    def check(self):
        raise TeacherError("Cannot reach the teacher at http://127.0.0.1:9/v1: is the server running?")


def test_a_teacher_that_goes_away_stops_the_run_and_writes_nothing(tmp_path):
    out = tmp_path / "runs.jsonl"
    with pytest.raises(GenerateError, match="Cannot reach the teacher"):
        generate(tasks(10), out, VanishingTeacher([]))
    assert not out.exists() or out.read_text() == ""


def test_a_run_that_outgrows_the_context_is_written_as_an_outcome_not_retried(tmp_path):
    out = tmp_path / "runs.jsonl"
    rambling = ScriptedModel([], when_empty=step("more", "print(1)"), context_length=60)
    summary = generate(tasks(1), out, rambling, GenerateOptions(max_steps=3, max_tokens=10))
    assert (summary.written, summary.failed) == (1, 0)
    assert read_trajectories(out)[0].stop_reason == "context_full"
    again = generate(tasks(1), out, rambling, GenerateOptions(max_steps=3, max_tokens=10))
    assert (again.skipped, again.written) == (1, 0)  # the model's own outcome: not run again

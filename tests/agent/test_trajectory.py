"""Trajectory files: round trip and clear errors on bad lines."""

from __future__ import annotations

import pytest

from tui_agent.agent.trajectory import (
    RunRecord,
    StepRecord,
    TrajectoryError,
    TrajectoryRecorder,
    read_trajectories,
)


def test_round_trip(tmp_path):
    path = tmp_path / "sub" / "runs.jsonl"
    recorder = TrajectoryRecorder(path)
    first = RunRecord(
        task="t1",
        model="m",
        steps=[StepRecord(step=1, raw="Thought: x", thought="x", code="print(1)", observation="1")],
        final_answer="1",
        stop_reason="answered",
        messages=[{"role": "system", "content": "s"}],
    )
    second = RunRecord(task="t2", model="m", steps=[StepRecord(step=1, parse_failure=True)], stop_reason="max_steps")
    recorder.write(first)
    recorder.write(second)
    runs = read_trajectories(path)
    assert runs == [first, second]
    assert runs[1].parse_failures == 1
    assert len(path.read_text().splitlines()) == 2


def test_unknown_fields_are_ignored(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"task": "a", "model": "m", "steps": [{"step": 1, "new_field": 3}], "future": true}\n')
    (run,) = read_trajectories(path)
    assert run.steps[0].step == 1


@pytest.mark.parametrize("line", ["not json", "[1, 2]", '{"model": "m"}', '{"task": "a", "steps": [{"x": 1}]}'])
def test_bad_line_names_file_and_line(tmp_path, line):
    path = tmp_path / "t.jsonl"
    path.write_text('{"task": "a", "model": "m", "steps": []}\n' + line + "\n")
    with pytest.raises(TrajectoryError, match=r"t\.jsonl:2: not a trajectory line"):
        read_trajectories(path)


def test_missing_file(tmp_path):
    with pytest.raises(TrajectoryError, match="cannot read"):
        read_trajectories(tmp_path / "nope.jsonl")


def test_a_line_still_being_written_is_left_out_only_when_asked(tmp_path):
    path = tmp_path / "t.jsonl"
    TrajectoryRecorder(path).write(RunRecord(task="done", model="m", stop_reason="answered"))
    with path.open("a") as handle:
        handle.write('{"task": "half", "mod')  # another process is appending this run right now
    with pytest.raises(TrajectoryError, match=r"t\.jsonl:2"):
        read_trajectories(path)
    assert [run.task for run in read_trajectories(path, complete_only=True)] == ["done"]

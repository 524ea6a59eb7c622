"""Trajectory filtering on real trajectory files and records: what is kept, what is dropped and why."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from training.filter import filter_file, filter_table, filter_trajectories, source_table, wall_shares
from training.tasks import Task
from tui_agent.agent.trajectory import RunRecord, TrajectoryError, TrajectoryRecorder


def run(
    answer="42",
    *,
    gold="42",
    kind="number",
    stop="answered",
    steps=None,
    task_id="t1",
    reference=True,
):
    """A trajectory line as the recorder writes it (task_id and reference as JSON keys)."""
    steps = steps if steps is not None else [{"step": 1, "code": "final_answer(42)", "final_answer": answer}]
    data = {
        "task": "What is 6 * 7?",
        "model": "teacher.gguf",
        "steps": steps,
        "final_answer": answer,
        "stop_reason": stop,
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "What is 6 * 7?"}],
        "task_id": task_id,
    }
    if reference:
        data["reference"] = {"answer": gold, "kind": kind, "source": "test"}
    return data


ERROR_STEP = {"step": 1, "code": "1/0", "error": "ZeroDivisionError: division by zero"}
FINAL_STEP = {"step": 2, "code": "final_answer(42)", "final_answer": "42"}

CASES = {
    "kept": run(),
    "recovered": run(steps=[ERROR_STEP, FINAL_STEP]),
    "cancelled": run(stop="cancelled"),
    "error": run(stop="error"),
    "context_full": run(answer=None, stop="context_full"),
    "max_steps": run(stop="max_steps"),
    "forced": run(steps=[{"step": 1, "forced_final": True, "final_answer": "42"}]),
    "parse_failure": run(steps=[{"step": 1, "parse_failure": True}, FINAL_STEP]),
    "no_answer": run(answer=None),
    "empty_answer": run(answer="  "),
    "no_reference": run(reference=False),
    "wrong": run(answer="41"),
    "math": run(answer="0.5", gold="\\frac{1}{2}", kind="math"),
    "text": run(answer="richard nixon", gold="Richard Nixon", kind="text"),
}


def test_reasons_are_counted():
    result = filter_trajectories(CASES.values())
    assert result.total == len(CASES)
    assert result.kept_count == 4  # kept, recovered, math, text
    assert result.recovered == 1
    assert result.dropped == {
        "cancelled": 1,
        "error": 1,
        "context_full": 1,
        "max_steps": 2,
        "parse_failure": 1,
        "no_answer": 2,
        "no_reference": 1,
        "wrong": 1,
    }


def test_recovered_runs_can_be_dropped():
    result = filter_trajectories([CASES["kept"], CASES["recovered"]], keep_recovered=False)
    assert result.kept_count == 1
    assert result.recovered == 0
    assert result.dropped == {"recovered": 1}


def test_run_records_with_references_by_task_id():
    """Records without a reference field are checked against tasks looked up by task_id."""
    raw = run(reference=False, task_id="gsm/1")
    record = RunRecord.from_dict(raw)
    if hasattr(record, "task_id"):
        assert record.task_id == "gsm/1"
    task = Task(id="gsm/1", question="What is 6 * 7?", answer="42", kind="number", source="gsm")
    assert filter_trajectories([raw], references={"gsm/1": task}).kept_count == 1
    wrong = Task(id="gsm/1", question="q", answer="7", kind="number", source="gsm")
    assert filter_trajectories([raw], references={"gsm/1": wrong}).dropped == {"wrong": 1}
    assert filter_trajectories([raw]).dropped == {"no_reference": 1}


def test_progress_is_reported():
    calls = []
    filter_trajectories([CASES["kept"], CASES["wrong"]], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)]


def test_filter_file_copies_kept_lines_verbatim(tmp_path):
    inp, out = tmp_path / "runs.jsonl", tmp_path / "out" / "kept.jsonl"
    kept = {**CASES["kept"], "future_field": {"x": 1}}  # fields this version does not know survive
    lines = [json.dumps(kept), "", json.dumps(CASES["wrong"]), json.dumps(CASES["recovered"])]
    inp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = filter_file(inp, out)
    assert (result.total, result.kept_count, result.recovered) == (3, 2, 1)
    written = out.read_text(encoding="utf-8").splitlines()
    assert written == [lines[0], lines[3]]
    assert json.loads(written[0])["future_field"] == {"x": 1}


def test_filter_file_reads_what_the_recorder_writes(tmp_path):
    path = tmp_path / "runs.jsonl"
    recorder = TrajectoryRecorder(path)
    for data in (CASES["kept"], CASES["max_steps"]):
        recorder.write(RunRecord.from_dict(data))
    task = Task(id="t1", question="q", answer="42", kind="number", source="gsm")
    result = filter_file(path, tmp_path / "kept.jsonl", references={"t1": task})
    assert (result.kept_count, dict(result.dropped)) == (1, {"max_steps": 1})


def test_malformed_line_stops_before_writing(tmp_path):
    inp, out = tmp_path / "runs.jsonl", tmp_path / "kept.jsonl"
    inp.write_text(json.dumps(CASES["kept"]) + "\n" + json.dumps(CASES["wrong"]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(TrajectoryError, match=r"runs\.jsonl:3:"):
        filter_file(inp, out)
    assert not out.exists()


def test_missing_input_file(tmp_path):
    with pytest.raises(TrajectoryError, match="cannot read"):
        filter_file(tmp_path / "missing.jsonl", tmp_path / "kept.jsonl")


def test_table_shows_counts():
    result = filter_trajectories(CASES.values())
    console = Console(record=True, width=100)
    console.print(filter_table(result))
    text = console.export_text()
    assert "kept" in text and "wrong answer" in text and "step limit" in text
    assert f"{len(CASES)}" in text
    assert "28.6%" in text  # 4 of 14 kept


def test_empty_input_gives_an_empty_result(tmp_path):
    result = filter_trajectories([])
    assert (result.total, result.kept_count, dict(result.dropped)) == (0, 0, {})
    console = Console(record=True, width=100)
    console.print(filter_table(result))
    assert "total" in console.export_text()


def test_runs_are_counted_by_source_with_kept_per_teacher_hour():
    reference = {"answer": "42", "kind": "number", "source": "arithmetic"}
    fast = [{**run(task_id=f"a{i}"), "seconds": 60.0, "reference": reference} for i in range(3)]
    slow = {**run(answer="41", task_id="codebase/rich/x"), "seconds": 600.0}
    slow["reference"] = {"answer": "42", "kind": "number", "source": "codebase:rich"}
    untagged = {**run(task_id="gsm/7", reference=False), "seconds": 30.0}
    result = filter_trajectories([*fast, slow, untagged])
    arithmetic, codebase, gsm = (result.by_source[name] for name in ("arithmetic", "codebase", "gsm"))
    assert (arithmetic.runs, arithmetic.kept, arithmetic.kept_per_hour) == (3, 3, 60.0)
    assert (codebase.runs, codebase.kept, codebase.kept_per_hour) == (1, 0, 0.0)  # codebase:rich counts as codebase
    assert (gsm.runs, gsm.kept) == (1, 0)  # no reference: named by its task id
    console = Console(record=True, width=100)
    console.print(source_table(result))
    first = next(line for line in console.export_text().splitlines() if "│" in line)
    assert [cell.strip() for cell in first.split("│")[1:6]] == ["arithmetic", "3", "3", "100%", "60"]


def test_runs_made_at_once_share_the_wall_clock():
    """Four tasks on a server with parallel slots each take longer, but the teacher's hours are the wall clock."""
    at = "2026-12-02T02:00:{:02d}+00:00".format
    records = [
        RunRecord(task="a", model="m", started_at=at(0), seconds=40.0),  # alone for 10 s, then shares 30 s
        RunRecord(task="b", model="m", started_at=at(10), seconds=30.0),  # shares all 30 s with a
        RunRecord(task="c", model="m", started_at=at(50), seconds=5.0),  # alone, after both
        RunRecord(task="d", model="m", seconds=7.0),  # no start time: its own seconds
    ]
    assert wall_shares(records) == [25.0, 15.0, 5.0, 7.0]
    reference = {"answer": "42", "kind": "number", "source": "arithmetic"}
    together = [
        {**run(task_id=f"a{i}"), "seconds": 240.0, "started_at": at(0), "reference": reference} for i in range(4)
    ]
    assert filter_trajectories(together).by_source["arithmetic"].kept_per_hour == 60.0  # 4 kept in 4 minutes

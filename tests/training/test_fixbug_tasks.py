"""Fix-the-bug tasks: one-line injected bugs in real functions, tests that really fail, the check is the tests."""

from __future__ import annotations

import difflib
from pathlib import Path

from training.checking import check_answer, record_fix_verdict
from training.fixbug_tasks import SEEDS, generate_fixbug_tasks, make_test_file, mutations
from training.tasks import Task, resolve_workspace


def test_every_seed_has_one_line_mutations_and_a_passing_test(tmp_path):
    for seed in SEEDS:
        found = list(mutations(seed.source))
        assert found, seed.name
        for buggy, _ in found:
            changed = [d for d in difflib.ndiff(seed.source.splitlines(), buggy.splitlines()) if d[:1] in "+-"]
            assert len(changed) == 2, (seed.name, changed)  # exactly one line differs
        assert make_test_file(seed).count("assert ") == len(seed.calls)


def test_generated_tasks_fail_until_fixed_and_each_run_starts_from_the_bug(tmp_path):
    tasks = generate_fixbug_tasks(2, seed=3, root=tmp_path)
    assert len({t.meta["function"] for t in tasks}) == 2
    task = Task.from_dict(tasks[0].to_dict())  # as read back from a task file
    workspace = resolve_workspace(task)
    assert workspace == Path(task.meta["workspace"])
    assert sorted(p.name for p in workspace.iterdir()) == sorted(task.meta["files"])
    reference = task.reference()
    assert not check_answer("fixed", reference)
    module = next(name for name in task.meta["files"] if not name.startswith("test_"))
    (workspace / module).write_text(task.meta["fixed"])
    assert check_answer(None, reference)  # the tests pass: solved, whatever the final answer says

    class Record:
        pass

    record = Record()
    record.reference = reference
    record_fix_verdict(record)
    assert record.reference["meta"]["verdict"] is True
    resolve_workspace(task)  # the next run starts from the bug again
    assert (workspace / module).read_text() == task.meta["files"][module]
    assert check_answer("done", record.reference)  # the verdict taken after the run stands
    assert not check_answer("done", task.reference())


def test_changing_the_tests_to_expect_the_bug_is_not_a_fix(tmp_path):
    from training.checking import changed_tests, edited_tests

    task = generate_fixbug_tasks(1, seed=5, root=tmp_path)[0]
    workspace = resolve_workspace(task)
    test_name = next(name for name in task.meta["files"] if name.startswith("test_"))
    (workspace / test_name).write_text("def test_nothing():\n    assert True\n")  # the tests pass now
    assert changed_tests(task.meta, workspace) == [test_name]
    assert not check_answer("fixed", task.reference())

    class Record:
        pass

    record = Record()
    record.reference = task.reference()
    record_fix_verdict(record)
    assert record.reference["meta"]["verdict"] is False
    assert record.reference["meta"]["tests_changed"] == [test_name]
    observations = ["Edited stats.py (+1 -1).", f"Edited {test_name} (+1 -1).\n$ python -m pytest -q"]
    assert edited_tests(observations) == [test_name] and edited_tests(observations[:1]) == []


def test_report_and_filter_count_a_test_edit_as_wrong(tmp_path):
    from training.evaluate import summarise
    from training.filter import drop_reason
    from tui_agent.agent.trajectory import RunRecord, StepRecord

    task = generate_fixbug_tasks(1, seed=5, root=tmp_path)[0]
    reference = task.reference()
    reference["meta"] = {**reference["meta"], "verdict": True}  # judged by a checker that did not look at tests
    test_name = next(name for name in task.meta["files"] if name.startswith("test_"))
    cheat = RunRecord(task="fix", model="m", reference=reference, final_answer="done", stop_reason="answered")
    cheat.steps = [StepRecord(step=1, code="edit_file(...)", observation=f"Edited {test_name} (+1 -1).")]
    honest = RunRecord(task="fix", model="m", reference=reference, final_answer="done", stop_reason="answered")
    honest.steps = [StepRecord(step=1, code="edit_file(...)", observation="Edited stats.py (+1 -1).")]
    assert summarise([cheat, honest])["accuracy"] == 0.5
    assert drop_reason(cheat) == "wrong" and drop_reason(honest) is None

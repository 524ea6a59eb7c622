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

"""Loading tasks from the shared task files, our own JSONL, local datasets and the (offline) hub."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.offline import SHARED, required
from training.tasks import (
    Task,
    TaskError,
    infer_kind,
    last_boxed,
    level_number,
    load_tasks,
    resolve_workspace,
    write_tasks,
)

DATA = SHARED / "data"
# Where models and data are required (CI), a missing DATA fails these tests instead of skipping them.
needs_data = pytest.mark.skipif(not DATA.is_dir() and not required(), reason=f"{DATA} not found")


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@needs_data
def test_gsm_hard_numbers():
    tasks = load_tasks(DATA / "gsm_hard_dev_250.jsonl")
    assert len(tasks) == 250
    first = tasks[0]
    assert first.id == "gsm_hard_dev_250/1309"
    assert first.answer == "13138980"  # stored as 13138980.0
    assert first.kind == "number"
    assert first.source == "GSM-hard"
    assert first.meta == {"dataset_name": "GSM-hard", "split": "test"}
    assert {t.kind for t in tasks} == {"number"}


@needs_data
def test_math_answers_levels_and_null_answers(caplog):
    path = DATA / "math_train_medium_1000.jsonl"
    rows = lines(path)
    with caplog.at_level(logging.WARNING, logger="training.tasks"):
        tasks = load_tasks(path)
    null_lines = [i for i, row in enumerate(rows, start=1) if row["answer"] is None]
    assert len(tasks) == len(rows) - len(null_lines)
    assert f"skipped {len(null_lines)} tasks without an answer (lines {', '.join(map(str, null_lines))})" in caplog.text
    assert {t.kind for t in tasks} == {"math"}
    level2 = load_tasks(path, levels={2})
    assert len(level2) == sum(r["level"] == "Level 2" and r["answer"] is not None for r in rows)
    assert {t.meta["level"] for t in level2} == {"Level 2"}
    algebra = load_tasks(path, levels={2, 3}, types={"algebra"})
    assert algebra and {t.meta["type"] for t in algebra} == {"Algebra"}


@needs_data
def test_math500_integer_levels_and_slicing():
    path = DATA / "math500_dev_250.jsonl"
    rows = lines(path)
    level1 = load_tasks(path, levels=[1])
    assert len(level1) == sum(r["level"] == 1 for r in rows)
    window = load_tasks(path, offset=10, limit=5)
    assert [t.id for t in window] == [f"math500_dev_250/{r['id']}" for r in rows[10:15]]
    assert window[0].answer == rows[10]["answer"]


@needs_data
def test_hotpotqa_is_text_and_has_no_levels():
    path = DATA / "hotpotqa_train_1000.jsonl"
    tasks = load_tasks(path, limit=3)
    assert [t.kind for t in tasks] == ["text"] * 3
    assert tasks[0].answer == "President Richard Nixon"
    with pytest.raises(TaskError, match="no numeric 'level'"):
        load_tasks(path, levels={2})


@needs_data
def test_split_filter_on_jsonl():
    path = DATA / "gsm_hard_dev_250.jsonl"
    assert len(load_tasks(path, split="test")) == 250
    with pytest.raises(TaskError, match="no tasks with split 'train'"):
        load_tasks(path, split="train")


def test_write_and_read_back(tmp_path):
    tasks = [
        Task("a/1", "Where is f defined?", "pkg/m.py:3", "exact", "codebase:pkg", {"workspace": "/w"}),
        Task("a/2", "List g's callers", "f, h", "exact", "codebase:pkg", {"unordered": True}),
        Task("b/1", "2+2?", "4", "number", "mine", {}),
    ]
    path = tmp_path / "sub" / "tasks.jsonl"
    assert write_tasks(tasks, path) == 3
    assert load_tasks(path) == tasks
    assert load_tasks(path, kind="text")[2].kind == "text"


def test_foreign_jsonl_with_column_mapping(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text('{"q": "Capital of France?", "a": "Paris"}\n{"q": "2+3?", "a": 5}\n', encoding="utf-8")
    with pytest.raises(TaskError, match=r"qa\.jsonl:1: no question field .*columns: q, a"):
        load_tasks(path)
    tasks = load_tasks(path, columns={"question": "q", "answer": "a"})
    assert [(t.id, t.answer, t.kind) for t in tasks] == [("qa/1", "Paris", "text"), ("qa/2", "5", "number")]
    with pytest.raises(TaskError, match="no column 'z' for the answer"):
        load_tasks(path, columns={"question": "q", "answer": "z"})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"no tasks in the file"),
        ("\n\n", r"no tasks in the file"),
        ('{"id": 1, "question": "q", "answer": "a"}\n{oops\n', r"bad\.jsonl:2: not JSON"),
        ("[1, 2]\n", r"bad\.jsonl:1: expected a JSON object, got list"),
        ('{"id": 1, "answer": "a"}\n', r"bad\.jsonl:1: no question field"),
        ('{"id": 1, "question": "q"}\n', r"bad\.jsonl:1: no answer field"),
        ('{"id": 1, "question": " ", "answer": "a"}\n', r"bad\.jsonl:1: empty question"),
        ('{"id": 1, "question": "q", "answer": "a"}\n{"id": 1, "question": "r", "answer": "b"}\n', "duplicate task id"),
        ('{"id": "x", "question": "q", "answer": "a", "kind": "vibes", "source": "s", "meta": {}}\n', "unknown kind"),
        ('{"id": 1, "question": "q", "answer": null}\n', r"no tasks in the file"),
    ],
)
def test_bad_task_files(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TaskError, match=message):
        load_tasks(path)


@pytest.mark.parametrize("source", ["missing.jsonl", "./missing", "/no/such/dir/tasks.parquet"])
def test_missing_files(tmp_path, source):
    with pytest.raises(TaskError, match="no such file or directory"):
        load_tasks(source)


def test_bad_arguments(tmp_path):
    path = tmp_path / "t.jsonl"
    write_tasks([Task("1", "q", "a", "text", "s", {"level": 3})], path)
    with pytest.raises(TaskError, match="unknown kind"):
        load_tasks(path, kind="fuzzy")
    with pytest.raises(TaskError, match="must not be negative"):
        load_tasks(path, offset=-1)
    with pytest.raises(TaskError, match="no tasks match"):
        load_tasks(path, levels={5})
    text_file = tmp_path / "t.txt"
    text_file.write_text("x", encoding="utf-8")
    with pytest.raises(TaskError, match=r"unsupported file type \.txt"):
        load_tasks(text_file)


def test_dataset_saved_to_disk_with_math_solutions(tmp_path):
    """A MATH-like dataset (problem/solution, no answer column): the answer is the solution's last \\boxed{}."""
    import datasets

    rows = {
        "problem": ["What is $1/2 + 1/4$?", "Solve $x+1=3$."],
        "solution": ["We add: $\\frac12+\\frac14=\\boxed{\\frac{3}{4}}$.", "So $x=\\boxed{2}$."],
        "level": ["Level 2", "Level 1"],
        "type": ["Prealgebra", "Algebra"],
    }
    path = tmp_path / "math_local"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict(rows), "test": datasets.Dataset.from_dict(rows)}
    ).save_to_disk(str(path))
    with pytest.raises(TaskError, match=r"choose a split \(train, test\)"):
        load_tasks(path)
    with pytest.raises(TaskError, match="no split 'dev'"):
        load_tasks(path, split="dev")
    tasks = load_tasks(path, split="test")
    assert [t.answer for t in tasks] == ["\\frac{3}{4}", "2"]
    assert [t.kind for t in tasks] == ["math", "math"]
    assert tasks[0].id == "math_local/0"
    assert tasks[0].meta["solution"].startswith("We add")
    assert [t.answer for t in load_tasks(path, split="train", levels={1})] == ["2"]


def test_single_dataset_on_disk_and_gsm8k_answers(tmp_path):
    import datasets

    rows = {"question": ["Tom has 3 apples and buys 4. How many?"], "answer": ["3 + 4 = 7\n#### 7"], "idx": [17]}
    path = tmp_path / "gsm_local"
    datasets.Dataset.from_dict(rows).save_to_disk(str(path))
    [task] = load_tasks(path)
    assert (task.id, task.answer, task.kind, task.meta) == ("gsm_local/17", "7", "number", {})


def test_parquet_json_and_csv_files(tmp_path):
    import datasets

    data = datasets.Dataset.from_dict({"prompt": ["Who wrote Hamlet?", "1+1?"], "target": ["Shakespeare", "2"]})
    for suffix, write in ((".parquet", data.to_parquet), (".json", data.to_json), (".csv", data.to_csv)):
        path = tmp_path / f"qa{suffix}"
        write(str(path))
        tasks = load_tasks(path)
        assert [(t.question, t.answer, t.kind) for t in tasks] == [
            ("Who wrote Hamlet?", "Shakespeare", "text"),
            ("1+1?", "2", "number"),
        ], suffix


def test_broken_parquet_file(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(TaskError, match=r"broken\.parquet: cannot load as a dataset"):
        load_tasks(path)


def test_unknown_hub_dataset_offline(tmp_path):
    """Offline, a dataset name that is not cached is one clear line (run in a fresh interpreter so the offline
    variables are read when datasets is imported)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    code = (
        "from training.tasks import TaskError, load_tasks\n"
        "try:\n    load_tasks('no-such-org/no-such-dataset', split='train')\n"
        "except TaskError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    message = done.stdout.strip()
    assert message.startswith("cannot load dataset 'no-such-org/no-such-dataset': ")
    assert "\n" not in message


def test_infer_kind_and_helpers():
    assert infer_kind(8.0) == "number"
    assert infer_kind("1,234") == "number"
    assert infer_kind("-6", "MATH") == "math"
    assert infer_kind("\\frac{1}{2}") == "math"
    assert infer_kind("x^2") == "math"
    assert infer_kind("Richard Nixon") == "text"
    assert infer_kind(True) == "text"
    assert level_number("Level 4") == 4 and level_number(2) == 2 and level_number("hard") is None
    assert last_boxed("a \\boxed{\\frac{1}{2}} then \\boxed{x^{2}}") == "x^{2}"
    assert last_boxed("no box") is None


def test_resolve_workspace(tmp_path):
    assert resolve_workspace(Task("1", "q", "a", "text", "s", {})) is None
    task = Task("2", "q", "a", "exact", "codebase:x", {"workspace": str(tmp_path)})
    assert resolve_workspace(task) == tmp_path
    gone = Task("3", "q", "a", "exact", "codebase:x", {"workspace": str(tmp_path / "gone")})
    with pytest.raises(TaskError, match="workspace .*gone does not exist"):
        resolve_workspace(gone)

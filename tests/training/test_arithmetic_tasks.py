"""GSM-style arithmetic tasks: shipped templates load, answers are exact and pass the real checker, bad templates
are named."""

from __future__ import annotations

import json
import random
import re

import pytest

from training.arithmetic_tasks import (
    evaluate,
    generate_arithmetic_tasks,
    load_templates,
    make_task,
)
from training.checking import check_answer
from training.tasks import Task, TaskError


def _numbers(question: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", question)]


def test_every_shipped_template_gives_tasks_the_checker_accepts():
    templates = load_templates()
    assert len(templates) >= 30
    tasks = generate_arithmetic_tasks(3 * len(templates), seed=5)
    assert {t.meta["template"] for t in tasks} == {t["id"] for t in templates}
    assert len({t.id for t in tasks}) == len(tasks)
    for task in tasks:
        again = Task.from_dict(json.loads(json.dumps(task.to_dict())))  # as read back from a task file
        assert check_answer(again.answer, again.reference()), task.question
        assert "{" not in task.question and "}" not in task.question, task.question


def test_answers_match_a_hand_written_solution():
    """The question's own numbers, solved independently of the template's formula."""
    by_id = {t["id"]: t for t in load_templates()}
    for seed in range(20):
        task = make_task(by_id["eat"], random.Random(seed))
        a, d = _numbers(task.question)
        assert int(task.answer) == 2 * a * d
        task = make_task(by_id["power"], random.Random(seed))
        base, exponent = _numbers(task.question)
        assert task.answer == str(base**exponent)  # every digit, not a float
        task = make_task(by_id["spend"], random.Random(seed))
        money, percent, helmet = _numbers(task.question)
        assert float(task.answer) == pytest.approx(money * (1 - percent / 100) - helmet)
        assert float(task.answer) > 0  # `where` keeps the money left positive


def test_same_seed_same_tasks_other_seed_other_tasks():
    first = [t.to_dict() for t in generate_arithmetic_tasks(25, seed=1)]
    assert first == [t.to_dict() for t in generate_arithmetic_tasks(25, seed=1)]
    assert first != [t.to_dict() for t in generate_arithmetic_tasks(25, seed=2)]


def test_exact_fractions_and_decimal_answers():
    assert evaluate("a / b * b", {"a": 1, "b": 3}) == 1  # no float rounding on the way
    one_third = {"id": "t", "question": "{a}?", "answer": "a / 3", "vars": {"a": [1, 1]}}
    assert make_task(one_third, random.Random(0)).answer == "0.3333333333333333"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "x", "question": "{a}", "answer": "a + b", "vars": {"a": [1, 2]}}', "b, which vars does not define"),
        ('{"id": "x", "question": "{c}", "answer": "a", "vars": {"a": [1, 2]}}', "c, which vars does not define"),
        ('{"id": "x", "question": "{a}", "answer": "a", "vars": {"a": [5, 2]}}', "low 5 is above high 2"),
        ('{"id": "x", "question": "{a}", "vars": {"a": [1, 2]}}', "missing 'answer'"),
        ('{"id": "x", "question": "{a}", "answer": "a +", "vars": {"a": [1, 2]}}', "invalid syntax"),
        ("not json", "Expecting value"),
    ],
)
def test_a_broken_template_is_named_with_its_line(tmp_path, line, message):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "ok", "question": "{a}", "answer": "a", "vars": {"a": [1, 2]}}\n' + line + "\n")
    with pytest.raises(TaskError, match=re.escape(f"{path}:2: ") + ".*" + re.escape(message)):
        load_templates(path)


def test_formulas_allow_arithmetic_only():
    with pytest.raises(ValueError, match="not allowed"):
        evaluate("__import__('os').getcwd()", {})
    with pytest.raises(ValueError, match="exponent"):
        evaluate("2 ** 100000", {})
    never = {"id": "n", "question": "{a}", "answer": "a", "vars": {"a": [1, 2]}, "where": "a > 5"}
    with pytest.raises(TaskError, match="never true"):
        make_task(never, random.Random(0))


def test_too_few_distinct_tasks_is_an_error():
    single = [{"id": "s", "question": "{a}?", "answer": "a", "vars": {"a": [1, 2]}}]
    assert len(generate_arithmetic_tasks(2, templates=single)) == 2
    with pytest.raises(TaskError, match="only 2 distinct"):
        generate_arithmetic_tasks(3, templates=single)

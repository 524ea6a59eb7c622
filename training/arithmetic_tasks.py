"""GSM-style arithmetic tasks from templates: word problems with several steps and numbers from small to very large
(as in GSM-Hard), plus plain computations ("What is 2 to the power 100?"). Their answers are computed exactly from
the template's formula, so they are always right, and there are as many as a teacher run needs.

The templates are data (``prompts/arithmetic.jsonl``), one JSON object per line:

    {"id": "eat", "question": "{name} and {name2} each eat {a} apples a day. How many ...?",
     "answer": "2 * a * d", "vars": {"a": [2, 999999], "d": [2, 60]}, "where": "a > d"}

``vars`` gives each number's range ``[low, high]`` (whole numbers) or ``[low, high, step]``; ``{name}``,
``{name2}`` and ``{name3}`` are distinct first names. ``answer`` and ``where`` are arithmetic over the variables
(``+ - * / // % **``, parentheses and the functions in ``FUNCTIONS``), evaluated with exact fractions.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import operator
import random
import string
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from training.tasks import Task, TaskError

TEMPLATES = Path(__file__).with_name("prompts") / "arithmetic.jsonl"
NAMES = (
    "Ava", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jamal", "Kira", "Liam", "Maya",
    "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Wen", "Yusuf", "Zoe",
)  # fmt: skip
NAME_FIELDS = ("name", "name2", "name3")
MAX_TRIES = 200  # draws per task before a template's `where` is given up as unsatisfiable
MAX_POWER = 4096  # exponents above this are refused: a template typo must not hang the generator

FUNCTIONS: dict[str, Callable[..., Any]] = {
    "gcd": math.gcd,
    "lcm": math.lcm,
    "comb": math.comb,
    "factorial": math.factorial,
    "isqrt": math.isqrt,
    "digits": lambda x: len(str(abs(int(x)))),
    "digit_sum": lambda x: sum(int(d) for d in str(abs(int(x)))),
    "powmod": pow,
}
_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def load_templates(path: str | Path = TEMPLATES) -> list[dict[str, Any]]:
    """The templates, each checked: a broken line is named (file:line) instead of failing mid-generation."""
    path = Path(path)
    templates = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            template = json.loads(line)
            _check(template)
        except (ValueError, KeyError, TypeError, SyntaxError) as exc:
            raise TaskError(f"{path}:{number}: {exc}") from None
        templates.append(template)
    return templates


def generate_arithmetic_tasks(n: int, *, seed: int = 0, templates: list[dict[str, Any]] | None = None) -> list[Task]:
    """``n`` tasks, cycling through the templates in a shuffled order so every template is used about equally."""
    if n < 1:
        raise TaskError(f"n must be at least 1, got {n}")
    templates = load_templates() if templates is None else templates
    if not templates:
        raise TaskError("no arithmetic templates")
    rng = random.Random(seed)
    order = list(templates)
    tasks: list[Task] = []
    seen: set[str] = set()
    misses = 0  # draws in a row that repeated an earlier task
    while len(tasks) < n:
        rng.shuffle(order)
        for template in order:
            if len(tasks) == n:
                break
            task = make_task(template, rng)
            misses = misses + 1 if task.id in seen else 0
            if misses > MAX_TRIES:
                raise TaskError(f"the templates give only {len(tasks)} distinct tasks, not {n}")
            if task.id not in seen:
                seen.add(task.id)
                tasks.append(task)
    return tasks


def make_task(template: dict[str, Any], rng: random.Random) -> Task:
    """One task: draw the numbers (again while ``where`` is false), fill in the question, compute the answer."""
    for _ in range(MAX_TRIES):
        values = {var: _draw(spec, rng) for var, spec in template["vars"].items()}
        if "where" not in template or evaluate(template["where"], values):
            break
    else:
        raise TaskError(f"template {template['id']!r}: its 'where' is never true in {MAX_TRIES} draws")
    names = rng.sample(NAMES, len(NAME_FIELDS))
    fields = {**dict(zip(NAME_FIELDS, names, strict=True)), **{k: str(v) for k, v in values.items()}}
    question = template["question"].format(**fields)
    answer = answer_string(evaluate(template["answer"], values))
    digest = hashlib.sha1(question.encode()).hexdigest()[:10]
    return Task(
        id=f"arithmetic/{template['id']}/{digest}",
        question=question,
        answer=answer,
        kind="number",
        source="arithmetic",
        meta={
            "template": template["id"],
            "formula": template["answer"],
            "values": {k: str(v) for k, v in values.items()},
        },
    )


def evaluate(expression: str, values: dict[str, Any]) -> Any:
    """An arithmetic expression over ``values`` with exact fractions (no names or calls beyond ``FUNCTIONS``)."""
    return _eval(ast.parse(expression, mode="eval").body, {k: Fraction(v) for k, v in values.items()})


def answer_string(value: Any) -> str:
    """Whole numbers exactly (2**100 keeps all its digits), others as a decimal like GSM-Hard's answers."""
    if isinstance(value, bool):
        raise TaskError(f"an answer formula gave a truth value ({value}), not a number")
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    return repr(float(value))


def _eval(node: ast.AST, values: dict[str, Fraction]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return Fraction(node.value)
    if isinstance(node, ast.Name):
        if node.id not in values:
            raise ValueError(f"unknown variable {node.id!r}")
        return values[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand, values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        base, exponent = _eval(node.left, values), _eval(node.right, values)
        if exponent.denominator != 1 or abs(exponent) > MAX_POWER:
            raise ValueError(f"exponent {exponent} is not a whole number up to {MAX_POWER}")
        return base**exponent.numerator
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _eval(node.left, values), _eval(node.right, values)
        if isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod) and right == 0:
            raise ZeroDivisionError("division by zero")
        return _OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _OPERATORS:
        return _OPERATORS[type(node.ops[0])](_eval(node.left, values), _eval(node.comparators[0], values))
    if isinstance(node, ast.BoolOp):
        results = [_eval(v, values) for v in node.values]
        return all(results) if isinstance(node.op, ast.And) else any(results)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
        args = [_eval(a, values) for a in node.args]
        if any(a.denominator != 1 for a in args):
            raise ValueError(f"{node.func.id}() takes whole numbers")
        return Fraction(FUNCTIONS[node.func.id](*(int(a) for a in args)))
    raise ValueError(f"not allowed in a formula: {ast.unparse(node)!r}")


def _draw(spec: list[int], rng: random.Random) -> int:
    low, high, *step = spec
    return rng.randrange(low, high + 1, step[0] if step else 1)


def _check(template: dict[str, Any]) -> None:
    """Fields, ranges and placeholders are consistent; the formulas evaluate at the ranges' low ends."""
    for key in ("id", "question", "answer", "vars"):
        if key not in template:
            raise KeyError(f"missing {key!r}")
    for var, spec in template["vars"].items():
        if not (isinstance(spec, list) and len(spec) in (2, 3) and all(isinstance(x, int) for x in spec)):
            raise ValueError(f"vars.{var} must be [low, high] or [low, high, step] of whole numbers, got {spec!r}")
        if spec[0] > spec[1]:
            raise ValueError(f"vars.{var}: low {spec[0]} is above high {spec[1]}")
    placeholders = {f for _, f, _, _ in string.Formatter().parse(template["question"]) if f}
    unknown = placeholders - set(template["vars"]) - set(NAME_FIELDS)
    if unknown:
        raise ValueError(f"the question uses {', '.join(sorted(unknown))}, which vars does not define")
    for key in ("answer", "where"):
        if key in template:
            ast.parse(template[key], mode="eval")
            names = {n.id for n in ast.walk(ast.parse(template[key], mode="eval")) if isinstance(n, ast.Name)}
            missing = names - set(template["vars"]) - set(FUNCTIONS)
            if missing:
                raise ValueError(f"{key} uses {', '.join(sorted(missing))}, which vars does not define")

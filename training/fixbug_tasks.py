"""Fix-the-bug tasks: a small generated repository holding a real function with one injected bug and a test that
fails because of it. The check is the test itself: the task is solved when the repository's tests pass again.

Bugs are single-token mutations of the correct source, made in place so the diff is one line: an arithmetic or
comparison operator swapped, or an integer constant off by one. A mutation is kept only when the test fails with
it (run for real), so every task is a real, failing bug. Each task carries its files, and ``materialize`` writes
them afresh before every run, so one task can be run by several models or samples from the same starting point.
"""

from __future__ import annotations

import ast
import hashlib
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from training.tasks import Task, TaskError

TEST_TIMEOUT_S = 20.0
VERIFY_TIMEOUT_S = 10.0  # a mutation that makes the tests hang is dropped
QUESTION = (
    "The tests of this repository fail (run them with `python -m pytest -q`). Find the bug in the code and fix it "
    "with a small edit, without changing the tests, until the tests pass. Then call final_answer with a one-line "
    "summary of the fix."
)


@dataclass(frozen=True)
class Seed:
    """A correct function, the module it lives in, and calls whose results the test pins down."""

    module: str
    name: str
    source: str
    calls: tuple[str, ...]


SEEDS = (
    Seed("stats", "average", "def average(xs):\n    return sum(xs) / len(xs)\n", ("[1, 2, 3]", "[4, 4, 10]", "[5]")),
    Seed(
        "bounds", "clamp",
        "def clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    if x > hi:\n        return hi\n    return x\n",
        ("5, 0, 10", "-3, 0, 10", "12, 0, 10", "0, 0, 10", "10, 0, 10"),
    ),
    Seed(
        "mathutil", "factorial",
        "def factorial(n):\n    result = 1\n    for i in range(2, n + 1):\n        result *= i\n    return result\n",
        ("0", "1", "5", "7"),
    ),
    Seed(
        "calendar_util", "is_leap",
        "def is_leap(year):\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)\n",
        ("2024", "1900", "2000", "2023"),
    ),
    Seed(
        "temperature", "to_fahrenheit", "def to_fahrenheit(celsius):\n    return celsius * 9 / 5 + 32\n",
        ("0", "100", "-40", "37"),
    ),
    Seed(
        "series", "running_total",
        "def running_total(xs):\n    out = []\n    total = 0\n    for x in xs:\n        total += x\n"
        "        out.append(total)\n    return out\n",
        ("[1, 2, 3]", "[5, -2, 4, 1]", "[]"),
    ),
    Seed(
        "search", "binary_search",
        "def binary_search(xs, target):\n    lo, hi = 0, len(xs) - 1\n    while lo <= hi:\n"
        "        mid = (lo + hi) // 2\n        if xs[mid] == target:\n            return mid\n"
        "        if xs[mid] < target:\n            lo = mid + 1\n        else:\n"
        "            hi = mid - 1\n    return -1\n",
        ("[1, 3, 5, 7, 9], 7", "[1, 3, 5, 7, 9], 1", "[1, 3, 5, 7, 9], 9", "[1, 3, 5, 7, 9], 4", "[2, 4], 4"),
    ),
    Seed(
        "digits", "digit_sum",
        "def digit_sum(n):\n    total = 0\n    while n > 0:\n        total += n % 10\n        n //= 10\n"
        "    return total\n",
        ("0", "7", "1234", "9090"),
    ),
    Seed(
        "geometry", "triangle_area", "def triangle_area(base, height):\n    return base * height / 2\n",
        ("3, 4", "10, 5", "1, 1"),
    ),
    Seed(
        "numbers", "gcd", "def gcd(a, b):\n    while b != 0:\n        a, b = b, a % b\n    return a\n",
        ("12, 18", "17, 5", "100, 75"),
    ),
    Seed(
        "ranges", "count_in_range",
        "def count_in_range(xs, lo, hi):\n    return sum(1 for x in xs if lo <= x < hi)\n",
        ("[1, 2, 3, 4, 5], 2, 4", "[0, 10, 20], 0, 20", "[5, 5, 6], 5, 6"),
    ),
    Seed(
        "text", "count_vowels",
        "def count_vowels(text):\n    return sum(1 for c in text.lower() if c in 'aeiou')\n",
        ("'Hello World'", "'rhythm'", "'AEIOU aeiou'"),
    ),
    Seed(
        "grades", "letter_grade",
        "def letter_grade(score):\n    if score >= 90:\n        return 'A'\n    if score >= 80:\n        return 'B'\n"
        "    if score >= 70:\n        return 'C'\n    return 'F'\n",
        ("95", "90", "85", "80", "72", "70", "50"),
    ),
    Seed(
        "pricing", "discounted",
        "def discounted(price, percent):\n    return round(price * (100 - percent) / 100, 2)\n",
        ("200, 10", "50, 0", "80, 25"),
    ),
    Seed(
        "lists", "last_n",
        "def last_n(xs, n):\n    if n <= 0:\n        return []\n    return xs[len(xs) - n:]\n",
        ("[1, 2, 3, 4], 2", "[1, 2, 3], 0", "[1, 2, 3], 3"),
    ),
    Seed(
        "fib", "fibonacci",
        "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
        ("0", "1", "2", "10"),
    ),
)  # fmt: skip

_SWAPS = {
    ast.Add: "-", ast.Sub: "+", ast.Mult: "/", ast.Div: "*", ast.FloorDiv: "/", ast.Mod: "//",
    ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">", ast.Eq: "!=", ast.NotEq: "==",
}  # fmt: skip


def _offset(lines: list[str], lineno: int, col: int) -> int:
    return sum(len(line) for line in lines[: lineno - 1]) + col


def mutations(source: str) -> Iterator[tuple[str, str]]:
    """Every one-token bug of ``source``: (buggy source, description)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    for node in ast.walk(tree):
        spans: list[tuple[ast.AST, ast.AST, type]] = []
        if isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _SWAPS:
            left = node.left if isinstance(node, ast.BinOp) else node.target
            right = node.right if isinstance(node, ast.BinOp) else node.value
            spans.append((left, right, type(node.op)))
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _SWAPS:
            spans.append((node.left, node.comparators[0], type(node.ops[0])))
        for left, right, op in spans:
            start = _offset(lines, left.end_lineno, left.end_col_offset)
            end = _offset(lines, right.lineno, right.col_offset)
            between = source[start:end]
            token = between.strip()
            if not token or "\n" in between:
                continue
            new = _SWAPS[op] + ("=" if token.endswith("=") and isinstance(node, ast.AugAssign) else "")
            yield source[:start] + between.replace(token, new, 1) + source[end:], f"{token} -> {new}"
        if isinstance(node, ast.Constant) and type(node.value) is int and node.lineno == node.end_lineno:
            start = _offset(lines, node.lineno, node.col_offset)
            end = _offset(lines, node.end_lineno, node.end_col_offset)
            for delta in (1, -1):
                if node.value + delta >= 0:
                    yield (
                        source[:start] + str(node.value + delta) + source[end:],
                        f"{node.value} -> {node.value + delta}",
                    )


def _expected(seed: Seed) -> list[str]:
    namespace: dict = {}
    exec(compile(seed.source, f"{seed.module}.py", "exec"), namespace)  # noqa: S102 - our own seed code
    return [repr(eval(f"{seed.name}({call})", namespace)) for call in seed.calls]  # noqa: S307


def make_test_file(seed: Seed) -> str:
    """A pytest file pinning down the correct function's results."""
    asserts = "".join(f"    assert {seed.name}({c}) == {e}\n" for c, e in zip(seed.calls, _expected(seed), strict=True))
    return f"from {seed.module} import {seed.name}\n\n\ndef test_{seed.name}():\n{asserts}"


def materialize(task: Task, root: Path | None = None) -> Path:
    """Write the task's repository (bug included) afresh and return it; other files there are removed (the folder
    itself stays, so a kernel started in it keeps a valid working directory)."""
    import shutil

    root = Path(root or task.meta["workspace"])
    root.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for name, text in task.meta["files"].items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def tests_pass(workspace: Path, timeout: float = TEST_TIMEOUT_S) -> bool:
    """Whether the repository's tests pass now (pytest in a fresh interpreter).

    The generated tests are plain asserts, so third-party pytest plugins stay unloaded: the test extras' plugins
    made pytest start about 4x slower (1.5-2.3 s against 0.4 s on a busy 2-core machine), and a start-up slowed
    past the timeout read as a hanging, so failing, fix.
    """
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=str(workspace),
            capture_output=True,
            timeout=timeout,
            check=False,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def generate_fixbug_tasks(n: int, *, seed: int = 0, root: Path | None = None, verify: bool = True) -> list[Task]:
    """``n`` fix-the-bug tasks (at most one per seed function and mutation), under ``root`` (default: the cache)."""
    if n < 1:
        raise TaskError(f"n must be at least 1, got {n}")
    if root is None:
        from tui_agent.config import cache_dir

        root = cache_dir() / "fixbug"
    rng = random.Random(seed)
    pools = []
    for s in SEEDS:
        options = list(mutations(s.source))
        rng.shuffle(options)
        pools.append((s, options))
    rng.shuffle(pools)
    tasks: list[Task] = []
    while len(tasks) < n and any(options for _, options in pools):
        for s, options in pools:
            while options and len(tasks) < n:
                buggy, what = options.pop()
                task = _make(s, buggy, what, root)
                if not verify or not tests_pass(materialize(task), VERIFY_TIMEOUT_S):
                    tasks.append(task)
                    break
    if len(tasks) < n:
        raise TaskError(f"only {len(tasks)} fix-the-bug tasks could be made, not {n}")
    return tasks


def _make(seed: Seed, buggy: str, what: str, root: Path) -> Task:
    digest = hashlib.sha1(buggy.encode()).hexdigest()[:10]
    files = {f"{seed.module}.py": buggy, f"test_{seed.module}.py": make_test_file(seed)}
    return Task(
        id=f"fixbug/{seed.name}/{digest}",
        question=QUESTION,
        answer="the tests pass",
        kind="fix_bug",
        source="fixbug",
        meta={"workspace": str(Path(root) / f"{seed.name}-{digest}"), "files": files, "bug": what,
              "function": seed.name, "fixed": seed.source},
    )  # fmt: skip

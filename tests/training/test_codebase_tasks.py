"""Codebase tasks from a real repository built here and from installed packages; every answer is checked against
an independent computation (an ast walk or running the snippet) in the test itself."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from training.checking import check_answer
from training.codebase_tasks import KINDS, CodebaseError, generate_codebase_tasks, restore_copy
from training.tasks import Task, resolve_workspace
from tui_agent.config import cache_dir

FILES = {
    "pkg/__init__.py": 'VERSION = "1.2.3"\nfrom .core import Base, helper\n',
    "pkg/core.py": '''"""Core."""
LIMIT = 42
NAMES = ("a", "b", "c")


class Base:
    def run(self, x, *args, flag=False, **kw):
        return helper(x, d=1)

    def _hidden(self):
        return 0


class Child(Base):
    pass


class Other(Base):
    def run(self, x, *args, flag=False, **kw):
        return compute(x)


def helper(a, b=1, /, c=2, *, d):
    return a + b + c + d


def compute(x):
    return helper(x, d=1) * 2


class Runner:
    def go(self, y):
        return helper(y, d=2) + compute(y)

    @staticmethod
    def make(kind, size):
        return Runner()


def dup():
    return 1


def _private(a):
    return a
''',
    "pkg/extra.py": """from .core import Base, helper


class Third(Base):
    pass


def use(n, m):
    return helper(n, d=3) + m


def dup():
    return 2


def callback_user(items):
    return list(map(compute_twice, items))


def compute_twice(v):
    return v * 2
""",
    "pkg/sub/__init__.py": "",
    "pkg/sub/deep.py": """from pkg.core import Base


class Deeper(Base):
    TAG = "deep"


def outer(v):
    def inner():
        return helper2(v)

    return inner()


def helper2(v):
    return v
""",
    "tests/test_core.py": """from pkg.core import Base, helper


class TestChild(Base):
    pass


def test_helper():
    assert helper(1, d=0) == 4


def compute(x):
    return x
""",
    "scripts/tool.py": "def main(argv):\n    return len(argv)\n",
    "build/generated.py": "def ignored_build_output(x):\n    return x\n",
    ".gitignore": "build/\n",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def repo_tasks(repo) -> list[Task]:
    return generate_codebase_tasks(repo, n=200, seed=3)


def trees(root: Path, with_tests: bool = False) -> dict[str, ast.Module]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("build/") or (not with_tests and rel.startswith("tests/")):
            continue
        out[rel] = ast.parse(path.read_text(encoding="utf-8"))
    return out


def names_in(question: str) -> list[str]:
    return re.findall(r"`([^`]+)`", question)


def of_kind(tasks: list[Task], kind: str) -> list[Task]:
    return [t for t in tasks if t.meta["codebase_kind"] == kind]


def test_every_kind_is_generated(repo_tasks):
    counts = Counter(t.meta["codebase_kind"] for t in repo_tasks)
    assert set(counts) == set(KINDS)
    assert len({t.id for t in repo_tasks}) == len(repo_tasks)


def test_where_defined_answers(repo, repo_tasks):
    found = {}
    for rel, tree in trees(repo).items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                found.setdefault(node.name, []).append(f"{rel}:{node.lineno}")
    tasks = of_kind(repo_tasks, "where_defined")
    asked = set()
    for task in tasks:
        name = names_in(task.question)[0]
        asked.add(name)
        assert task.answer in found[name]
        assert task.kind == "exact" and task.meta["workspace"] == str(repo)
        path, line = task.answer.rsplit(":", 1)
        text = (repo / path).read_text(encoding="utf-8").splitlines()[int(line) - 1]
        assert re.match(rf"\s*(def|class) {re.escape(name)}\b", text)
    assert {"Base", "helper", "Runner", "go"} <= asked
    assert not asked & {"dup", "_private", "_hidden", "test_helper", "TestChild", "ignored_build_output", "compute"}


def test_parameter_answers(repo, repo_tasks):
    tasks = of_kind(repo_tasks, "parameters")
    assert tasks
    for task in tasks:
        quoted = names_in(task.question)
        name, path = quoted[0], re.search(r"defined in `([^`]+)`", task.question).group(1)
        scope = quoted[1] if "method" in task.question else None
        tree = ast.parse((repo / path).read_text(encoding="utf-8"))
        body = (
            next(n.body for n in tree.body if isinstance(n, ast.ClassDef) and n.name == scope) if scope else tree.body
        )
        node = next(n for n in body if isinstance(n, ast.FunctionDef) and n.name == name)
        expected = [a.arg for a in node.args.posonlyargs + node.args.args]
        expected += [node.args.vararg.arg] if node.args.vararg else []
        expected += [a.arg for a in node.args.kwonlyargs] + ([node.args.kwarg.arg] if node.args.kwarg else [])
        assert task.answer == ", ".join(expected)
        assert task.meta["list"] is True
    helper = next(t for t in tasks if names_in(t.question)[0] == "helper")
    assert helper.answer == "a, b, c, d"
    assert check_answer("['a', 'b', 'c', 'd']", helper)


def test_caller_answers(repo, repo_tasks):
    tasks = of_kind(repo_tasks, "callers")
    assert tasks
    for task in tasks:
        target = names_in(task.question)[0]
        callers = set()
        for tree in trees(repo).values():
            scopes = [(n.name, n) for n in tree.body if isinstance(n, ast.FunctionDef)]
            for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
                scopes += [(f"{cls.name}.{m.name}", m) for m in cls.body if isinstance(m, ast.FunctionDef)]
            for qualname, node in scopes:
                calls = [c for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)]
                if any(c.func.id == target for c in calls):
                    callers.add(qualname)
        assert set(task.answer.split(", ")) == callers
        assert task.meta["unordered"] is True
        assert check_answer(", ".join(sorted(callers, reverse=True)), task)
    targets = {names_in(t.question)[0] for t in tasks}
    assert "helper" in targets
    assert not targets & {"compute", "compute_twice", "helper2", "dup"}  # test clash, used as a value, nested call
    helper = next(t for t in tasks if names_in(t.question)[0] == "helper")
    assert set(helper.answer.split(", ")) == {"Base.run", "compute", "Runner.go", "use"}


def test_subclass_count_answers(repo, repo_tasks):
    tasks = of_kind(repo_tasks, "subclass_count")
    assert tasks
    for task in tasks:
        target = names_in(task.question)[0]
        count = sum(
            any(isinstance(b, ast.Name) and b.id == target for b in node.bases)
            for tree in trees(repo).values()
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
        )
        assert task.answer == str(count)
        assert task.kind == "number"
    base = next(t for t in tasks if names_in(t.question)[0] == "Base")
    assert base.answer == "4"  # Child, Other, Third, Deeper; TestChild is a test
    assert check_answer("There are 4 such classes.", base)


def test_snippet_answers(repo, repo_tasks):
    tasks = of_kind(repo_tasks, "snippet_output")
    assert tasks
    for task in tasks:
        code = task.meta["snippet"]
        assert f"```python\n{code}\n```" in task.question
        done = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0
        assert task.answer == done.stdout.strip()
    by_code = {t.meta["snippet"]: t.answer for t in tasks}
    assert by_code.get("from pkg.core import LIMIT\n\nprint(repr(LIMIT))") == "42"
    assert by_code.get("from pkg.core import NAMES\n\nprint(len(NAMES))") == "3"
    assert not any("scripts" in code or "tests" in code for code in by_code)  # not importable packages


def test_deterministic_and_balanced(repo, repo_tasks):
    first = generate_codebase_tasks(repo, n=10, seed=7)
    again = generate_codebase_tasks(repo, n=10, seed=7)
    other = generate_codebase_tasks(repo, n=10, seed=8)
    assert first == again
    assert [t.id for t in first] != [t.id for t in other]
    available = Counter(t.meta["codebase_kind"] for t in repo_tasks)  # everything this small repository offers
    counts = Counter(t.meta["codebase_kind"] for t in first)
    assert len(first) == 10
    assert all(counts[kind] >= min(2, available[kind]) for kind in KINDS)  # short kinds leave room to the others
    assert [t.meta["codebase_kind"] for t in first[:5]] == list(KINDS)  # kinds taken in turn


def test_kind_selection_and_progress(repo):
    calls = []
    tasks = generate_codebase_tasks(repo, n=3, kinds=["callers"], progress=lambda d, t: calls.append((d, t)))
    assert {t.meta["codebase_kind"] for t in tasks} == {"callers"}
    assert calls[-1] == (len(tasks), 3)


@pytest.mark.parametrize(
    ("source", "kwargs", "message"),
    [
        ("no_such_package_xyz", {}, "no installed package or directory named 'no_such_package_xyz'"),
        ("./no/such/dir", {}, "no such directory"),
        ("json", {}, "not part of an installed distribution"),
    ],
)
def test_bad_sources(source, kwargs, message):
    with pytest.raises(CodebaseError, match=message):
        generate_codebase_tasks(source, n=5, **kwargs)


def test_bad_arguments(repo, tmp_path):
    (tmp_path / "notes.md").write_text("# no code here\n", encoding="utf-8")
    with pytest.raises(CodebaseError, match="no Python files"):
        generate_codebase_tasks(tmp_path, n=5)
    with pytest.raises(CodebaseError, match="not a directory"):
        generate_codebase_tasks(tmp_path / "notes.md", n=5)
    with pytest.raises(CodebaseError, match="unknown codebase task kind 'vibes'"):
        generate_codebase_tasks(repo, n=5, kinds=["vibes"])
    with pytest.raises(CodebaseError, match="n must be at least 1"):
        generate_codebase_tasks(repo, n=0)


def test_repository_without_targets(tmp_path):
    (tmp_path / "a.py").write_text("def _x():\n    pass\n", encoding="utf-8")
    with pytest.raises(CodebaseError, match="no unambiguous targets"):
        generate_codebase_tasks(tmp_path, n=5)


def test_installed_package(monkeypatch):
    """typer's source is copied into the cache; answers point at real definitions there."""
    import typer

    tasks = generate_codebase_tasks("typer", n=10, seed=1)
    workspace = cache_dir() / "codebases" / f"typer-{typer.__version__}"
    assert Counter(t.meta["codebase_kind"] for t in tasks) == {kind: 2 for kind in KINDS}
    for task in tasks:
        assert task.meta["package"] == "typer" and task.meta["version"] == typer.__version__
        assert task.meta["workspace"] == str(workspace)
        assert resolve_workspace(task) == workspace
    for task in of_kind(tasks, "where_defined"):
        path, line = task.answer.rsplit(":", 1)
        assert path.startswith("typer/")
        text = (workspace / path).read_text(encoding="utf-8").splitlines()[int(line) - 1]
        name = names_in(task.question)[0]
        assert re.match(rf"\s*(async )?(def|class) {re.escape(name)}\b", text)
        assert (Path(typer.__file__).parent / path.removeprefix("typer/")).read_text(encoding="utf-8").splitlines()[
            int(line) - 1
        ] == text  # the copy is the installed source

    task = tasks[0]
    shutil.rmtree(workspace)  # another machine: the copy is missing and is made again
    assert resolve_workspace(task) == workspace and (workspace / "typer" / "__init__.py").is_file()

    moved = Task(task.id, task.question, task.answer, task.kind, task.source, {**task.meta, "workspace": "/gone"})
    assert resolve_workspace(moved) == workspace
    stale = Task(task.id, task.question, task.answer, task.kind, task.source, {**moved.meta, "version": "0.0.1"})
    with pytest.raises(CodebaseError, match=rf"made from typer 0\.0\.1, but typer {re.escape(typer.__version__)}"):
        resolve_workspace(stale)


def test_a_run_that_damages_the_copy_does_not_reach_the_next(monkeypatch):
    """An agent may rewrite the package in its workspace; the next task starts from the installed source again."""
    import typer

    task = generate_codebase_tasks("typer", n=5, seed=1)[0]
    workspace = resolve_workspace(task)
    installed = Path(typer.__file__).parent
    (workspace / "typer" / "main.py").write_text("ws", encoding="utf-8")  # what a model once did to a module
    (workspace / "typer" / "colors.py").unlink()
    (workspace / "typer" / "scratch.py").write_text("x = 1\n", encoding="utf-8")
    (workspace / "notes.txt").write_text("left by a run\n", encoding="utf-8")
    (workspace / ".pytest_cache").mkdir(exist_ok=True)
    (workspace / ".tui-agent").mkdir(exist_ok=True)

    assert resolve_workspace(task) == workspace
    assert (workspace / "typer" / "main.py").read_bytes() == (installed / "main.py").read_bytes()
    assert (workspace / "typer" / "colors.py").read_bytes() == (installed / "colors.py").read_bytes()
    assert not (workspace / "typer" / "scratch.py").exists()
    assert not (workspace / "notes.txt").exists() and not (workspace / ".pytest_cache").exists()
    assert (workspace / ".tui-agent").is_dir()  # the code index is kept
    assert restore_copy(workspace, installed) == []  # nothing left to restore

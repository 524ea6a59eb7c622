"""Verifiable questions about a real codebase, answered from the code itself (syntax trees, and running snippets).

Five kinds: where a function, method or class is defined ("path:line"); a function's parameters (names in order);
which functions call a function (a set); what a small snippet prints (computed by running it twice in a fresh
interpreter); how many classes derive directly from a class. Targets are unambiguous: defined once in the
repository, public, outside the tests. The choice is deterministic for a seed and balanced across kinds.

An installed package is first copied into the cache (``<cache>/codebases/<name>-<version>``), so the agent works
on a copy and never writes into site-packages; ``package_workspace`` re-creates that copy on another machine and
restores whatever an earlier run changed in it, so every run (and every task set made from it) sees the installed code.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from training.codebase_scan import Facts, is_public, python_files, scan
from training.tasks import Task, TaskError

KINDS = ("where_defined", "parameters", "callers", "snippet_output", "subclass_count")
MAX_CALLERS = 8
MAX_OUTPUT_CHARS = 240
MAX_OUTPUT_LINES = 6
SNIPPET_TIMEOUT_S = 30.0
ZERO_SUBCLASS_SHARE = 0.25  # some classes without subclasses, so "0" stays a possible answer

Progress = Callable[[int, int], None]


class CodebaseError(TaskError):
    """A repository or package that cannot give codebase tasks; the message says which and why."""


@dataclass(frozen=True)
class Codebase:
    """Where the tasks' code lives: ``root`` is the workspace; ``package``/``version`` for installed packages."""

    root: Path
    label: str
    package: str | None = None
    version: str | None = None


def generate_codebase_tasks(
    root_or_package: str | Path,
    *,
    n: int,
    seed: int = 0,
    kinds: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> list[Task]:
    """Up to ``n`` tasks about a repository directory or an installed package (by import name), kinds taken in
    turn; fewer when the code offers fewer unambiguous targets, an error when it offers none."""
    kinds = tuple(kinds) if kinds else KINDS
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise CodebaseError(f"unknown codebase task kind {unknown[0]!r} (kinds: {', '.join(KINDS)})")
    if n < 1:
        raise CodebaseError(f"n must be at least 1, got {n}")
    codebase = open_codebase(root_or_package)
    files = python_files(codebase.root)
    if not files:
        raise CodebaseError(f"{codebase.root}: no Python files")
    facts = scan(codebase.root, files)
    rng = random.Random(seed)
    pools = {kind: _CANDIDATES[kind](facts, codebase, rng) for kind in kinds}
    tasks: list[Task] = []
    active = list(kinds)
    while len(tasks) < n and active:
        for kind in list(active):
            if len(tasks) >= n:
                break
            task = next(pools[kind], None)
            if task is None:
                active.remove(kind)
                continue
            tasks.append(task)
            if progress is not None:
                progress(len(tasks), n)
    if not tasks:
        raise CodebaseError(f"{codebase.root}: no unambiguous targets for {', '.join(kinds)} tasks")
    return tasks


def open_codebase(root_or_package: str | Path) -> Codebase:
    """A directory as it is, or an installed package through its cached copy."""
    path = Path(root_or_package).expanduser()
    if path.is_dir():
        root = path.resolve()
        return Codebase(root=root, label=root.name)
    if path.exists():
        raise CodebaseError(f"{path}: not a directory (pass a repository folder or an installed package's name)")
    name = str(root_or_package)
    if isinstance(root_or_package, Path) or not name.isidentifier():
        raise CodebaseError(f"{name}: no such directory, and not an importable package name")
    version = installed_version(name)
    return Codebase(root=package_workspace(name, version), label=name, package=name, version=version)


def installed_version(package: str) -> str:
    """The installed version of the distribution that provides import name ``package``."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise CodebaseError(f"no installed package or directory named {package!r}")
    dists = importlib.metadata.packages_distributions().get(package)
    if not dists:
        raise CodebaseError(f"{package!r} is not part of an installed distribution (a standard library module?)")
    return importlib.metadata.version(dists[0])


def package_workspace(package: str, version: str = "") -> Path:
    """The cached source copy of an installed package, made when missing; ``version`` (when given) must be the
    installed one, since answers were computed from that version's code."""
    installed = installed_version(package)
    if version and version != installed:
        raise CodebaseError(f"tasks were made from {package} {version}, but {package} {installed} is installed")
    from tui_agent.config import cache_dir

    target = cache_dir() / "codebases" / f"{package}-{installed}"
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or [])
    if len(locations) > 1:
        raise CodebaseError(f"{package} is a namespace package spread over {len(locations)} folders")
    if target.is_dir():
        source = Path(locations[0]) if locations else Path(spec.origin or "")
        restore_copy(target, source)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        if locations:
            shutil.copytree(locations[0], tmp / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif spec.origin and spec.origin.endswith(".py"):
            shutil.copy2(spec.origin, tmp / f"{package}.py")
        else:
            raise CodebaseError(f"{package} has no Python source to copy ({spec.origin})")
        os.replace(tmp, target)
    except OSError:
        if not target.is_dir():  # another process may have finished the same copy first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# What a workspace copy may hold besides the package: the code index tui-agent keeps there.
_KEPT_IN_COPY = frozenset({".tui-agent"})


def _source_files(folder: Path) -> dict[str, Path]:
    return {
        str(path.relative_to(folder)): path
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def restore_copy(target: Path, source: Path) -> list[str]:
    """Make the cached copy ``target`` equal to the installed ``source`` again, and say what was restored.

    Agents run with write access in the copy, so one run can rewrite a module (a model once replaced
    ``tomlkit/api.py`` with two bytes) and every later run, and every task set made from the copy, would see the
    damage. Every run therefore starts from a copy checked file by file: changed or missing files are copied back,
    and files the package does not have are removed.
    """
    restored: list[str] = []
    name = source.name
    for entry in target.iterdir():
        if entry.name not in _KEPT_IN_COPY and entry.name != name:
            restored.append(entry.name)
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    if source.is_file():  # a single-module package
        copy = target / name
        if not copy.is_file() or copy.read_bytes() != source.read_bytes():
            shutil.copyfile(source, copy)  # a new mtime: the code index sees the change
            restored.append(name)
        return restored
    wanted, present = _source_files(source), _source_files(target / name)
    for relative, path in present.items():
        if relative not in wanted:
            path.unlink()
            restored.append(f"{name}/{relative}")
    for relative, path in wanted.items():
        copy = target / name / relative
        if relative not in present or copy.read_bytes() != path.read_bytes():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
            restored.append(f"{name}/{relative}")
    return sorted(restored)


def run_snippet(code: str, cwd: Path, hash_seed: str = "0") -> str | None:
    """What ``code`` prints when run in a fresh interpreter in ``cwd`` (the workspace's own modules first);
    None when it fails, times out or writes nothing."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONHASHSEED=hash_seed, PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1", TERM="dumb", COLUMNS="80")
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SNIPPET_TIMEOUT_S,
        )
    except (subprocess.TimeoutExpired, OSError):
        return None
    output = "\n".join(line.rstrip() for line in done.stdout.strip().splitlines())
    return output if done.returncode == 0 and output else None


def stable_output(code: str, cwd: Path) -> str | None:
    """The snippet's output when it is short, free of memory addresses and the same on two runs with different
    hash seeds; else None."""
    first = run_snippet(code, cwd, "0")
    if first is None or len(first) > MAX_OUTPUT_CHARS or first.count("\n") >= MAX_OUTPUT_LINES or " at 0x" in first:
        return None
    return first if run_snippet(code, cwd, "1") == first else None


def _task(codebase: Codebase, kind: str, question: str, answer: str, task_kind: str, **meta) -> Task:
    meta = {"codebase_kind": kind, "workspace": str(codebase.root), **meta}
    if codebase.package:
        meta.update(package=codebase.package, version=codebase.version)
    digest = hashlib.sha1(f"{codebase.label}\n{question}".encode()).hexdigest()[:12]
    return Task(
        id=f"codebase/{codebase.label}/{kind}/{digest}",
        question=question,
        answer=answer,
        kind=task_kind,
        source=f"codebase:{codebase.label}",
        meta=meta,
    )


def _shuffled(items: list, rng: random.Random) -> list:
    rng.shuffle(items)
    return items


def _where_defined(facts: Facts, codebase: Codebase, rng: random.Random) -> Iterator[Task]:
    scopes = Counter((d.path, d.scope, d.name) for d in facts.definitions)
    targets = [
        d
        for d in facts.definitions
        if is_public(d.name)
        and (facts.unique(d.name) if d.kind != "method" else facts.unique(d.scope) and is_public(d.scope))
        and scopes[(d.path, d.scope, d.name)] == 1
    ]
    for d in _shuffled(targets, rng):
        what = f"the method `{d.name}` of class `{d.scope}`" if d.scope else f"the {d.kind} `{d.name}`"
        keyword = "class" if d.kind == "class" else "def"
        question = (
            f"Where is {what} defined in this repository? Answer as path:line, the path relative to the "
            f"repository root and the line of its `{keyword}` statement (e.g. pkg/module.py:42)."
        )
        yield _task(codebase, "where_defined", question, f"{d.path}:{d.line}", "exact")


def _parameters(facts: Facts, codebase: Codebase, rng: random.Random) -> Iterator[Task]:
    scopes = Counter((d.path, d.scope, d.name) for d in facts.definitions)
    targets = [
        d
        for d in facts.definitions
        if d.kind != "class"
        and len(d.params) >= (2 if d.kind == "method" else 1)  # a lone `self` makes a dull question
        and is_public(d.name)
        and is_public(d.scope or "x")
        and scopes[(d.path, d.scope, d.name)] == 1
    ]
    for d in _shuffled(targets, rng):
        what = f"the method `{d.name}` of class `{d.scope}`" if d.scope else f"the function `{d.name}`"
        question = (
            f"What are the parameters of {what} defined in `{d.path}`? Answer with the parameter names in order, "
            "comma-separated, without `*`, `**`, annotations or defaults (include `self` or `cls` if present)."
        )
        yield _task(codebase, "parameters", question, ", ".join(d.params), "exact", list=True)


def _callers(facts: Facts, codebase: Codebase, rng: random.Random) -> Iterator[Task]:
    qualnames = Counter(d.qualname for d in facts.definitions if d.kind != "class")
    targets = [
        d
        for d in facts.definitions
        if d.kind == "function"
        and is_public(d.name)
        and facts.unique(d.name)
        and d.name not in facts.unclear
        and 0 < len(facts.callers.get(d.name, ())) <= MAX_CALLERS
        and all(qualnames[c] == 1 for c in facts.callers[d.name])
    ]
    for d in _shuffled(targets, rng):
        question = (
            f"Which functions or methods in this repository (not counting tests) call the function `{d.name}` "
            f"defined in `{d.path}`? Answer with their names, methods as Class.method, comma-separated."
        )
        answer = ", ".join(sorted(facts.callers[d.name]))
        yield _task(codebase, "callers", question, answer, "exact", unordered=True)


def _subclass_count(facts: Facts, codebase: Codebase, rng: random.Random) -> Iterator[Task]:
    classes = [
        d
        for d in facts.definitions
        if d.kind == "class" and is_public(d.name) and facts.unique(d.name) and d.name not in facts.unclear_bases
    ]
    with_subclasses = [d for d in classes if facts.derived[d.name] > 0]
    without = _shuffled([d for d in classes if facts.derived[d.name] == 0], rng)
    zeros = round(len(with_subclasses) * ZERO_SUBCLASS_SHARE / (1 - ZERO_SUBCLASS_SHARE))
    targets = with_subclasses + without[: max(zeros, 1 if not with_subclasses else 0)]
    for d in _shuffled(targets, rng):
        question = (
            f"How many classes in this repository (not counting tests) derive directly from the class `{d.name}` "
            f"defined in `{d.path}`? Answer with a number."
        )
        yield _task(codebase, "subclass_count", question, str(facts.derived[d.name]), "number")


def _snippets(facts: Facts, codebase: Codebase) -> list[str]:
    """Small programs that import one name from the workspace and print something about it."""
    module_counts = Counter((c.module, c.name) for c in facts.constants)
    snippets = []
    for c in facts.constants:
        if not is_public(c.name) or module_counts[(c.module, c.name)] != 1:
            continue
        if isinstance(c.value, str | tuple | list | dict | set | frozenset | bytes):
            snippets.append(f"from {c.module} import {c.name}\n\nprint(len({c.name}))")
        else:
            snippets.append(f"from {c.module} import {c.name}\n\nprint(repr({c.name}))")
    for d in facts.definitions:
        module = facts.modules.get(d.path)
        if module is None or d.kind == "method" or not is_public(d.name):
            continue
        if d.kind == "function":
            snippets.append(f"import inspect\n\nfrom {module} import {d.name}\n\nprint(inspect.signature({d.name}))")
        else:
            snippets.append(f"from {module} import {d.name}\n\nprint([k.__name__ for k in {d.name}.__mro__])")
    return sorted(set(snippets))


def _snippet_output(facts: Facts, codebase: Codebase, rng: random.Random) -> Iterator[Task]:
    for code in _shuffled(_snippets(facts, codebase), rng):
        output = stable_output(code, codebase.root)
        if output is None:
            continue
        question = (
            "What does this Python snippet print when run from the repository root? Answer with its exact output."
            f"\n\n```python\n{code}\n```"
        )
        yield _task(codebase, "snippet_output", question, output, "exact", snippet=code)


_CANDIDATES = {
    "where_defined": _where_defined,
    "parameters": _parameters,
    "callers": _callers,
    "snippet_output": _snippet_output,
    "subclass_count": _subclass_count,
}

"""Facts about a Python repository read from its syntax trees, from which codebase tasks take their answers.

Everything here is computed, never guessed: where each function and class is defined, its parameters, who calls
whom (by plain name only, so a call is never attributed to the wrong target), which classes derive from which, and
how often each name is defined (a name defined twice would make a question ambiguous). Files are the ones the
code index sees (``tui_agent.index.walk``), so answers agree with what ``find_symbol`` shows the agent.
"""

from __future__ import annotations

import ast
import builtins
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

TEST_DIRS = frozenset({"tests", "test", "testing"})
BUILTIN_NAMES = frozenset(dir(builtins))


@dataclass(frozen=True)
class Definition:
    """A function, method or class: ``scope`` is the enclosing class for methods ('' otherwise)."""

    name: str
    kind: str  # "function" | "method" | "class"
    path: str
    line: int
    scope: str = ""
    params: tuple[str, ...] = ()
    bases: tuple[str, ...] = ()  # classes: base names written as plain names (``Base`` or ``Base[T]``)

    @property
    def qualname(self) -> str:
        return f"{self.scope}.{self.name}" if self.scope else self.name


@dataclass(frozen=True)
class Constant:
    """A module-level ``NAME = <literal>`` in an importable module."""

    name: str
    module: str
    path: str
    line: int
    value: object


@dataclass
class Facts:
    """What the scan found; ``definitions`` and ``calls`` cover non-test files only, ``def_counts`` all files."""

    root: Path
    files: list[str] = field(default_factory=list)
    definitions: list[Definition] = field(default_factory=list)
    constants: list[Constant] = field(default_factory=list)
    modules: dict[str, str] = field(default_factory=dict)  # path -> dotted module name (importable files)
    def_counts: Counter[str] = field(default_factory=Counter)
    callers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # name -> caller qualnames
    unclear: set[str] = field(default_factory=set)  # names used in ways a plain-name call analysis cannot attribute
    unclear_bases: set[str] = field(default_factory=set)  # base classes written as ``mod.Name`` or bound elsewhere
    derived: Counter[str] = field(default_factory=Counter)  # class name -> direct subclasses (plain-name bases)

    def unique(self, name: str) -> bool:
        """Defined exactly once in the repository, and not a builtin's name."""
        return self.def_counts[name] == 1 and name not in BUILTIN_NAMES


def is_test_path(rel: str) -> bool:
    """Test files and folders: their definitions are not task targets."""
    path = PurePosixPath(rel)
    name = path.name
    return (
        any(part in TEST_DIRS for part in path.parts[:-1])
        or name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
    )


def is_public(name: str) -> bool:
    return not name.startswith("_")


def python_files(root: Path) -> list[str]:
    """The Python files the code index would see under ``root``, relative with '/', in name order."""
    from tui_agent.index.walk import walk

    return [f.path for f in walk(root) if f.path.endswith(".py")]


def module_name(root: Path, rel: str) -> str | None:
    """The dotted name a file is imported as from ``root`` (every folder a package), else None."""
    parts = PurePosixPath(rel).with_suffix("").parts
    if not parts or any(not p.isidentifier() for p in parts):
        return None
    for i in range(1, len(parts)):
        if not (root.joinpath(*parts[:i]) / "__init__.py").is_file():
            return None
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts or parts[-1] == "__main__":
        return None
    return ".".join(parts)


def scan(root: Path, files: list[str] | None = None) -> Facts:
    """Parse every Python file (unparsable ones are skipped) and collect the facts tasks are made from."""
    root = Path(root)
    facts = Facts(root=root, files=python_files(root) if files is None else files)
    trees: dict[str, ast.Module] = {}
    for rel in facts.files:
        try:
            tree = ast.parse((root / rel).read_bytes(), filename=rel)
        except (SyntaxError, ValueError, OSError):
            continue
        _count_definitions(tree, facts.def_counts)
        if is_test_path(rel):
            continue
        trees[rel] = tree
        module = module_name(root, rel)
        if module is not None:
            facts.modules[rel] = module
    top_names = {m.split(".")[0] for m in facts.modules.values()}
    for rel, tree in trees.items():
        _collect(rel, tree, facts, top_names)
    return facts


def _count_definitions(tree: ast.Module, counts: Counter[str]) -> None:
    """Every def and class (any depth) and module-level assignment: what the index lists as definitions."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            counts[node.name] += 1
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if isinstance(node, ast.Assign | ast.AnnAssign):
            for target in targets:
                if isinstance(target, ast.Name):
                    counts[target.id] += 1


def _params(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, ...]:
    args = node.args
    names = [a.arg for a in (*args.posonlyargs, *args.args)]
    if args.vararg:
        names.append(args.vararg.arg)
    names.extend(a.arg for a in args.kwonlyargs)
    if args.kwarg:
        names.append(args.kwarg.arg)
    return tuple(names)


def _base_name(expr: ast.expr) -> str | None:
    """``Base`` or ``Base[T]`` give "Base"; anything else (``mod.Base``, calls) gives None."""
    if isinstance(expr, ast.Subscript):
        expr = expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _bindings(tree: ast.Module, top_names: set[str]) -> dict[str, str]:
    """How each module-level name of a file is bound: "local" (defined here), "repo" (imported unchanged from
    this repository) or "other" (imported from elsewhere, or renamed)."""
    bound: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound[node.name] = "local"
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    bound[target.id] = "local"
        elif isinstance(node, ast.ImportFrom):
            in_repo = node.level > 0 or (node.module or "").split(".")[0] in top_names
            for alias in node.names:
                local = alias.asname or alias.name
                bound[local] = "repo" if in_repo and local == alias.name else "other"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound[alias.asname or alias.name.split(".")[0]] = "other"
    return bound


def _collect(rel: str, tree: ast.Module, facts: Facts, top_names: set[str]) -> None:
    bound = _bindings(tree, top_names)
    module = facts.modules.get(rel)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            facts.definitions.append(Definition(node.name, "function", rel, node.lineno, params=_params(node)))
            _calls(node, node.name, bound, facts)
        elif isinstance(node, ast.ClassDef):
            bases = tuple(b for b in map(_base_name, node.bases) if b)
            facts.definitions.append(Definition(node.name, "class", rel, node.lineno, bases=bases))
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    method = Definition(item.name, "method", rel, item.lineno, node.name, _params(item))
                    facts.definitions.append(method)
                    _calls(item, method.qualname, bound, facts)
                else:
                    _calls(item, None, bound, facts)
        elif isinstance(node, ast.Assign) and module and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    value = ast.literal_eval(node.value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    pass
                else:
                    facts.constants.append(Constant(target.id, module, rel, node.lineno, value))
            _calls(node, None, bound, facts)
        elif not isinstance(node, ast.Import | ast.ImportFrom):  # top-level imports are read by _bindings
            _calls(node, None, bound, facts)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                name = _base_name(base)
                if name is None:
                    facts.unclear_bases.update(c.attr for c in ast.walk(base) if isinstance(c, ast.Attribute))
                elif bound.get(name) in ("local", "repo"):
                    facts.derived[name] += 1
                else:
                    facts.unclear_bases.add(name)


def _calls(node: ast.AST, caller: str | None, bound: dict[str, str], facts: Facts) -> None:
    """Record plain-name calls made directly in ``caller`` (a top-level function or method). A name also used
    another way (as a value, through an attribute, from a nested function or module level, or bound to
    something outside the repository) is marked unclear: "who calls it" would have no exact answer."""
    call_funcs: set[int] = set()
    nested: set[int] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            call_funcs.add(id(child.func))
        if child is not node and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            nested.update(id(n) for n in ast.walk(child))
    for child in ast.walk(node):
        if isinstance(child, ast.Attribute):
            facts.unclear.add(child.attr)
        elif isinstance(child, ast.ImportFrom):
            facts.unclear.update(a.name for a in child.names)  # imported inside a function: scoped, skip it
        elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
            name = child.id
            direct = id(child) in call_funcs and id(child) not in nested and caller is not None
            if direct and bound.get(name) in ("local", "repo"):
                facts.callers[name].add(caller)
            elif name in bound or direct:
                facts.unclear.add(name)

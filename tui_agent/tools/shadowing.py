"""A cell that redefines a function or class which a workspace file defines changes the kernel only.

Small models "fix" a bug by pasting the corrected function into a cell: the kernel then has the new code, but the
file, and every test run in its own process, keep the old one, and the model cannot tell why nothing changed. After
such a cell the observation says so, with the file and line, and names the tool that changes the file.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable, Iterable
from pathlib import Path

NOTICE_MIME = "application/vnd.tui-agent.notice+json"
MAX_NAMED = 3  # sites named in one notice; more would crowd the observation

Site = tuple[str, int]  # (path relative to the workspace, 1-based line)
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def defined_names(code: str) -> list[str]:
    """Names of the functions and classes a cell defines at its top level (none when it does not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    return [node.name for node in tree.body if isinstance(node, DEFINITIONS)]


def scan_top_level(workspace: Path, name: str, files: Iterable[Path]) -> list[Site]:
    """Top-level ``def name`` / ``class name`` lines in Python files: the lookup when there is no code index."""
    pattern = re.compile(rf"^(?:async\s+def|def|class)\s+{re.escape(name)}\b")
    sites: list[Site] = []
    for path in files:
        if path.suffix != ".py":
            continue
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        relative = path.relative_to(workspace).as_posix()
        sites.extend((relative, n) for n, line in enumerate(lines, 1) if pattern.match(line))
    return sites


def _top_level_source(code: str, name: str) -> str | None:
    """The source of the top-level function or class ``name`` in ``code``."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, DEFINITIONS) and node.name == name:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            return "\n".join(code.splitlines()[start - 1 : node.end_lineno])
    return None


def suggested_edit(file_text: str, cell_code: str, name: str) -> tuple[str, str] | None:
    """The ``(old, new)`` pair for ``edit_file`` that makes the file's ``name`` what the cell defined.

    The smallest block of changed lines when it occurs once in the file, else the whole definition; None when the
    definitions are the same or cannot be found.
    """
    before, after = _top_level_source(file_text, name), _top_level_source(cell_code, name)
    if before is None or after is None or before.strip() == after.strip():
        return None
    old_lines, new_lines = before.splitlines(), after.splitlines()
    changed = [op for op in difflib.SequenceMatcher(a=old_lines, b=new_lines).get_opcodes() if op[0] != "equal"]
    if changed:
        i1, i2, j1, j2 = changed[0][1], changed[-1][2], changed[0][3], changed[-1][4]
        old, new = "\n".join(old_lines[i1:i2]).strip(), "\n".join(new_lines[j1:j2]).strip()
        if old and new and file_text.count(old) == 1:
            return old, new
    return before, after


def is_test_file(path: str) -> bool:
    """Test modules: redefining a test in a cell is harmless, and steering the model to edit tests is not."""
    parts = path.replace("\\", "/").split("/")
    name = parts[-1]
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py" or "tests" in parts[:-1]


def shadow_notice(
    code: str, locate: Callable[[str], list[Site]], read: Callable[[str], str] | None = None
) -> str | None:
    """The note for a cell that redefines workspace definitions, or None.

    ``locate(name)`` gives where the workspace's files define ``name`` at top level; ``read(path)``, when given,
    reads such a file so the note can spell out the exact ``edit_file`` call (small models copy it).
    """
    found: list[tuple[str, Site]] = []
    for name in dict.fromkeys(defined_names(code)):
        try:
            sites = locate(name)
        except Exception:  # noqa: BLE001 - a failed lookup must never break the cell's observation
            sites = []
        found.extend((name, site) for site in [s for s in sites if not is_test_file(s[0])][:1])
    if not found:
        return None
    where = ", ".join(f"{name} ({path}:{line})" for name, (path, line) in found[:MAX_NAMED])
    name, (path, _) = found[0]
    call = f"edit_file({path!r}, old, new)"
    if read is not None:
        try:
            edit = suggested_edit(read(path), code, name)
        except (OSError, UnicodeError):
            edit = None
        if edit is not None:
            call = f"print(edit_file({path!r}, {edit[0]!r}, {edit[1]!r}))"
    return (
        f"Warning: the file was not changed. This cell redefined {where} in the kernel only; tests and "
        f"commands run with run() still use the old code in the file. Change the file with edit_file:\n{call}"
    )

"""Is an agent's final answer correct? One checker per task kind; a checker never raises.

- "number": the last number in the answer ("1,234.50", "$12", "1e6", "3/4", "-7") within a relative tolerance of
  1e-4 or an absolute one of 1e-2; a LaTeX answer (``\\frac{3}{4}``) goes through math-verify.
- "math": a normalised LaTeX string match first (answers sympy cannot read: ``\\text{(C)}``, "Monday"), then
  mathematical equivalence by math-verify (``\\boxed{}``, ``\\frac12`` vs 0.5, intervals, tuples).
- "text": SQuAD-style normalisation (lowercase, no punctuation, no articles). Equal, or the gold answer appears
  as a whole phrase in a short answer ("He was named after Richard Nixon" for "Richard Nixon"): at most
  ``TEXT_EXTRA_WORDS`` words more than the gold, so listing several candidates does not pass. Yes/no golds must
  match exactly.
- "exact": codebase answers, compared after trimming whitespace, surrounding quotes or backticks, a leading "./"
  or the task's workspace folder; list answers (meta "list") item by item, set answers (meta "unordered") as sets;
  a printed container (``['a', 'b']``) also matches the same value written with the other quote style.
- "fix_bug": the repository's tests pass. The verdict is taken right after the run (meta "verdict", written by
  ``record_fix_verdict``), since the workspace is rewritten for the next run; without one the tests run now.
"""

from __future__ import annotations

import ast
import math
import re
import string
import threading
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from tui_agent.tools.shadowing import is_test_file

# GSM-Hard's answers run to millions and beyond: at 1e-4, 9202361 passed for 9202335. 1e-6 still lets float
# artifacts through (12874172.999999998 for 12874173); PAL's own GSM-Hard check is |predicted - gold| < 1e-3.
REL_TOL = 1e-6
ABS_TOL = 1e-2
TEXT_EXTRA_WORDS = 5
MATH_TIMEOUT_S = 5

_NUMBER = re.compile(
    r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?"
    r"(?:\s*/\s*(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)?"
    r"|(?<![\w.])[-+]?\.\d+(?:[eE][-+]?\d+)?"
)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation) | {"\u2018", "\u2019", "\u201c", "\u201d", "\u2013", "\u2014"}
_QUOTES = "\"'`"
_LOCATION = re.compile(r"(?<![\w./-])([\w./-]+\.\w+:\d+)\b")
_LATEX_NOISE = re.compile(r"\\[,;:! ]|\\left|\\right|\\displaystyle|\^\{?\\circ\}?|\$|\s+")
_TEXT_CMD = re.compile(r"\\(?:text|textbf|mathrm|mbox|operatorname)\{([^{}]*)\}")


def check_answer(predicted: Any, task_or_reference: Any) -> bool:
    """Whether ``predicted`` answers the task; ``task_or_reference`` is a Task, a reference dict
    ({"answer", "kind", "meta"?, "unordered"?}) or a bare gold answer (its kind is then inferred)."""
    try:
        gold, kind, meta = _reference(task_or_reference)
        if kind == "fix_bug":
            return check_fix(meta)
        if predicted is None or gold is None:
            return False
        text = str(predicted).strip()
        if not text:
            return False
        if kind == "number":
            return check_number(text, gold)
        if kind == "math":
            return check_math(text, gold)
        if kind == "exact":
            workspace = str(meta.get("workspace") or "").rstrip("/")
            if workspace and text.startswith(workspace + "/"):  # an absolute path inside the workspace
                text = text[len(workspace) + 1 :]
            text = text[2:] if text.startswith("./") else text
            return check_exact(text, gold, unordered=bool(meta.get("unordered")), as_list=bool(meta.get("list")))
        return check_text(text, gold)
    except Exception:  # a checker that raises would stop a whole filtering or evaluation run
        return False


def check_fix(meta: Mapping[str, Any]) -> bool:
    """A fix-the-bug task is solved when its tests pass with the tests as they were given (the verdict taken
    after the run, else the workspace now): making a test expect the bug is not a fix."""
    if "verdict" in meta:
        return bool(meta["verdict"])
    from pathlib import Path

    from training.fixbug_tasks import tests_pass

    workspace = meta.get("workspace")
    if not workspace or not Path(workspace).is_dir() or changed_tests(meta, Path(workspace)):
        return False
    return tests_pass(Path(workspace))


def changed_tests(meta: Mapping[str, Any], workspace: Any) -> list[str]:
    """The task's test files whose content is no longer what the task gave (deleted ones included)."""
    changed = []
    for name, text in (meta.get("files") or {}).items():
        if not is_test_file(name):
            continue
        try:
            now = (workspace / name).read_text(encoding="utf-8")
        except OSError:
            now = None
        if now != text:
            changed.append(name)
    return changed


_EDIT_LINE = re.compile(r"^(?:Edited|Created) (\S+) \(\+\d+ -\d+\)\.", re.MULTILINE)


def edited_tests(observations: Iterable[str]) -> list[str]:
    """Test files the edit tools reported changing in a run's observations (for runs judged before
    ``changed_tests`` existed; edits made by other means only the workspace check sees)."""
    return sorted(
        {m.group(1) for text in observations for m in _EDIT_LINE.finditer(text or "") if is_test_file(m.group(1))}
    )


def record_fix_verdict(record: Any) -> None:
    """Check a fix-the-bug run while its workspace still holds the result, and keep the verdict in its reference."""
    reference = getattr(record, "reference", None)
    if not reference or reference.get("kind") != "fix_bug":
        return
    meta = dict(reference.get("meta") or {})
    meta.pop("verdict", None)
    workspace = meta.get("workspace")
    if workspace:
        from pathlib import Path

        meta["tests_changed"] = changed_tests(meta, Path(workspace))
    meta["verdict"] = check_fix(meta)
    reference["meta"] = meta


def check_number(predicted: str, gold: Any) -> bool:
    """The last number of ``predicted`` is within tolerance of the gold number (LaTeX goes to math-verify)."""
    expected = parse_number(str(gold))
    if expected is None:
        return check_math(predicted, str(gold))
    value = last_number(predicted)
    if value is not None and _close(value, expected):
        return True
    if "\\" in predicted:
        return check_math(predicted, str(gold))
    return False


def check_math(predicted: str, gold: str) -> bool:
    """Normalised LaTeX string equality, else mathematical equivalence through math-verify."""
    if _latex_key(predicted) == _latex_key(gold):
        return True
    from math_verify import parse, verify

    limit = MATH_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None  # signal.alarm
    gold_parsed = _parse_math(parse, _as_latex(gold), limit)
    if not gold_parsed:
        expected = parse_number(gold)
        value = last_number(predicted)
        return expected is not None and value is not None and _close(value, expected)
    parsed = _parse_math(parse, _as_latex(predicted), limit)
    if not parsed and _as_latex(predicted) != predicted:  # not LaTeX: let math-verify find an expression in the text
        parsed = _parse_math(parse, predicted, limit)
    return bool(parsed) and bool(verify(gold_parsed, parsed, timeout_seconds=limit))


def check_text(predicted: str, gold: str) -> bool:
    """SQuAD-style normalised match, or the gold as a whole phrase of a short answer (see the module doc)."""
    got, want = normalize_text(predicted).split(), normalize_text(str(gold)).split()
    if not want:
        return not got
    if got == want:
        return True
    if want in (["yes"], ["no"]) or len(got) > len(want) + TEXT_EXTRA_WORDS:
        return False
    return any(got[i : i + len(want)] == want for i in range(len(got) - len(want) + 1))


def check_exact(predicted: str, gold: str, *, unordered: bool = False, as_list: bool = False) -> bool:
    """Exact match after trimming; lists item by item, sets regardless of order and repeats."""
    if unordered or as_list:
        got, want = split_items(predicted), split_items(str(gold))
        got = [_parameter_name(item, wanted) for item, wanted in zip(got, want, strict=False)] + got[len(want) :]
        return set(got) == set(want) if unordered else got == want
    if _strip_quotes(predicted) == _strip_quotes(str(gold)):
        return True
    if _same_container(predicted, str(gold)):
        return True
    return _one_location(predicted) == str(gold).strip()


def _parameter_name(item: str, wanted: str) -> str:
    """A parameter written as in its signature (``wait: bool = False``, ``wait=False``) reads as its name when
    the name is what the answer wants: the task asks for names, and the annotation does not make it wrong."""
    if wanted.isidentifier():
        match = re.fullmatch(rf"\s*{re.escape(wanted)}\s*(?::[^=]+)?(?:=.*)?", item)
        if match:
            return wanted
    return item


def _same_container(predicted: str, gold: str) -> bool:
    """A printed list, tuple, dict or set written with the other quote style (``["a"]`` for ``['a']``): the same
    value, so the same output in all but the quote character."""
    try:
        want = ast.literal_eval(gold.strip())
        got = ast.literal_eval(_strip_quotes(predicted) if predicted.strip()[:1] in "'\"`" else predicted.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return isinstance(want, list | tuple | dict | set) and type(got) is type(want) and got == want


def _one_location(text: str) -> str | None:
    """The single ``path:line`` an answer names ("It is defined in pkg/a.py:12."), None for none or several:
    a location in a sentence still answers a where-is question, a list of guesses does not."""
    found = set(_LOCATION.findall(text))
    return found.pop() if len(found) == 1 else None


def normalize_text(text: str) -> str:
    """Lowercase, drop punctuation and English articles, collapse whitespace (SQuAD's normalisation)."""
    text = "".join(" " if ch in _PUNCTUATION else ch for ch in text.lower())
    return " ".join(_ARTICLES.sub(" ", text).split())


def split_items(text: str) -> list[str]:
    """A list answer as items: "a, b", "[a, b]", "['a', 'b']", "(a, b)", one item per line."""
    text = _strip_quotes(text, keep_lines=True)
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = None
    if isinstance(value, list | tuple | set | frozenset):
        return [_strip_quotes(str(v)) for v in value]
    if len(text) >= 2 and text[0] + text[-1] in ("[]", "()", "{}"):
        text = text[1:-1]
    parts = re.split(r"[,\n]", text)
    return [item for item in (_strip_quotes(p) for p in parts) if item]


def last_number(text: str) -> float | None:
    """The value of the last number written in ``text`` ("1,234.50", "$12", "1e6", "3/4"); None if none."""
    text = text.replace("\u2212", "-")
    matches = _NUMBER.findall(text)
    for match in reversed(matches):
        value = parse_number(match)
        if value is not None:
            return value
    return None


def parse_number(text: str) -> float | None:
    """A number written alone (commas, a currency sign, a percent sign or a fraction allowed); else None."""
    text = text.strip().replace("\u2212", "-").lstrip("$").rstrip("%").replace(",", "").replace(" ", "").strip()
    try:
        if "/" in text:
            return float(Fraction(text))
        value = float(text)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _close(value: float, expected: float) -> bool:
    return math.isclose(value, expected, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _parse_math(parse, text: str, limit: int | None) -> list:
    try:
        return parse(text, parsing_timeout=limit)
    except Exception:  # math-verify's own timeout exception or a sympy failure: treat as unparsable
        return []


def _as_latex(text: str) -> str:
    """Bare LaTeX ("\\frac12", "(3, \\pi)") wrapped in $...$ so math-verify reads all of it, not a first number."""
    return text if "$" in text or "\\boxed" in text else f"${text}$"


def _latex_key(text: str) -> str:
    """LaTeX reduced for a plain comparison: no spacing commands, \\left/\\right, dollars, \\text{} wrappers."""
    text = str(text).strip()
    boxed = re.fullmatch(r"\\boxed\{(.*)\}", text, flags=re.S)
    if boxed:
        text = boxed.group(1)
    text = _TEXT_CMD.sub(r"\1", text)
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return _LATEX_NOISE.sub("", text).rstrip(".")


def _strip_quotes(text: str, keep_lines: bool = False) -> str:
    """Trim surrounding quotes/backticks; runs of whitespace become one space (lines kept when asked)."""
    lines = str(text).strip().split("\n") if keep_lines else [str(text)]
    text = "\n".join(" ".join(line.split()) for line in lines)
    while len(text) >= 2 and text[0] == text[-1] and text[0] in _QUOTES:
        text = text[1:-1].strip()
    return text


def _reference(ref: Any) -> tuple[Any, str, Mapping[str, Any]]:
    """(gold answer, kind, meta) from a Task, a reference dict or a bare answer."""
    from training.tasks import infer_kind

    if isinstance(ref, Mapping):
        gold = ref.get("answer")
        meta = dict(ref.get("meta") or {})
        for key in ("unordered", "list"):
            if key in ref:
                meta[key] = ref[key]
        kind = ref.get("kind") or infer_kind(gold, str(ref.get("source", "")))
        return gold, str(kind), meta
    if hasattr(ref, "answer") and hasattr(ref, "kind"):
        return ref.answer, ref.kind, getattr(ref, "meta", {}) or {}
    return ref, infer_kind(ref), {}

"""Why runs fail: every wrong run gets one kind, each row a count per kind with example tasks, and `failures.md`
shows one trajectory of each kind, so a report says what to change and not only how often a model is wrong.

The kinds point at different levers: a wrong plan (every cell ran, the printed number was wrong) wants better
reasoning data; no answer within the step limit wants shorter paths or more steps; a wrong answer after a parse
failure or an error wants format training. Which tools a row's runs called shows whether it searches at all.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

KINDS = {
    "wrong_plan": "every cell ran without error and the answer was wrong: the plan, not the format",
    "wrong_after_error": "answered wrongly after a cell raised an error",
    "wrong_after_parse_failure": "answered wrongly after a reply the loop could not parse",
    "forced_answer": "answered wrongly only when the last step forced an answer",
    "no_answer_max_steps": "no answer within the step limit",
    "no_answer_context_full": "the conversation outgrew the context window",
    "no_answer_error": "the run stopped on a model or kernel error",
    "no_answer_cancelled": "the run was stopped",
}
EXAMPLES_PER_KIND = 3
TEXT_LIMIT = 400  # characters of a question, thought or observation in an excerpt
CODE_LINES = 15


def failure_kind(record: Any, correct: bool) -> str | None:
    """The kind of a wrong run (see KINDS), None for a right one; the first rule that applies wins."""
    if correct:
        return None
    if record.final_answer is None:
        return f"no_answer_{record.stop_reason or 'max_steps'}"
    answered = next((s for s in reversed(record.steps) if s.final_answer is not None), None)
    if answered is not None and answered.forced_final:
        return "forced_answer"
    if any(s.parse_failure for s in record.steps):
        return "wrong_after_parse_failure"
    if any(s.error for s in record.steps):
        return "wrong_after_error"
    return "wrong_plan"


def tools_called(record: Any) -> set[str]:
    """The tools (of those the run offered) that any of its cells called."""
    names = record.settings.get("tools") or []
    code = "\n".join(s.code or "" for s in record.steps)
    return {name for name in names if re.search(rf"\b{re.escape(name)}\s*\(", code)}


def failure_summary(records: Sequence[Any], correct: Sequence[bool]) -> dict[str, Any]:
    """Per kind, how many runs and the first few task ids (most frequent kind first); per tool, how many runs
    called it."""
    kinds: dict[str, list[str]] = {}
    for record, ok in zip(records, correct, strict=True):
        kind = failure_kind(record, ok)
        if kind:
            kinds.setdefault(kind, []).append(record.task_id)
    ordered = sorted(kinds.items(), key=lambda item: -len(item[1]))
    calls = Counter(name for record in records for name in tools_called(record))
    return {
        "failure_kinds": {k: {"count": len(ids), "examples": ids[:EXAMPLES_PER_KIND]} for k, ids in ordered},
        "runs_calling": dict(sorted(calls.items())),
    }


def _short(text: str, limit: int = TEXT_LIMIT) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + f" [... {len(text) - limit} more characters]"


def _code(code: str) -> str:
    lines = code.strip().splitlines()
    if len(lines) > CODE_LINES:
        lines = lines[:CODE_LINES] + [f"# ... {len(lines) - CODE_LINES} more lines"]
    return "\n".join(lines)


def excerpt(record: Any) -> list[str]:
    """A run as Markdown lines: the task, the expected answer, each step's thought, code and observation."""
    expected = (record.reference or {}).get("answer")
    lines = [
        f"Task `{record.task_id}`: {_short(record.task)}",
        "",
        f"Expected `{expected}`, got `{record.final_answer}`",
        "",
    ]
    for s in record.steps:
        marks = [m for m, on in (("parse failure", s.parse_failure), ("forced", s.forced_final)) if on]
        lines.append(f"Step {s.step}" + (f" ({', '.join(marks)})" if marks else "") + f": {_short(s.thought)}")
        lines.append("")
        if s.code:
            lines += ["```python", _code(s.code), "```"]
        elif s.raw and s.parse_failure:
            lines += ["```text", _short(s.raw), "```"]
        lines += ["```text", _short(s.observation or "(no output)"), "```", ""]
    return lines


def failures_markdown(title: str, rows: dict[str, tuple[Sequence[Any], Sequence[bool]]]) -> str:
    """Every row's failure counts, then one trajectory of each of its kinds (the first task of the kind)."""
    lines = [f"# Failures: {title}", "", "How each row's wrong runs failed (`training/failures.py` says how a run is"]
    lines += ["classified), then one trajectory of each kind. Kinds:", ""]
    lines += [f"- `{kind}`: {meaning}" for kind, meaning in KINDS.items()]
    for name, (records, correct) in rows.items():
        if not records:
            continue
        summary = failure_summary(records, correct)
        lines += ["", f"## {name}", "", f"{sum(correct)} of {len(records)} right."]
        for kind, info in summary["failure_kinds"].items():
            lines.append(f"- `{kind}`: {info['count']}")
        calls = ", ".join(f"{tool} {n}" for tool, n in summary["runs_calling"].items()) or "none"
        lines += ["", f"Runs calling each tool: {calls}."]
        by_id = {r.task_id: r for r in records}
        for kind, info in summary["failure_kinds"].items():
            lines += ["", f"### {name}: `{kind}`", ""] + excerpt(by_id[info["examples"][0]])
    return "\n".join(lines).rstrip() + "\n"

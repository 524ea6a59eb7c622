"""Self-consistent action generation (SAG): pick one step out of N sampled candidates by agreement.

Candidates that fail to parse or raise are dropped; the rest are grouped by what they print (their trial run in a
throwaway fork of the kernel, so nothing leaks into the session); the first candidate of the largest group wins.
Candidates that show nothing do not vote: silence is not agreement, and three silent candidates must not outvote
one that printed the answer. When none shows anything, they are grouped by their code.
When trial runs are not allowed (the user approves each cell, or read-only mode) candidates are grouped by their
code instead, so nothing runs before the user has seen it. If every candidate fails, the first one is used.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from tui_agent.agent.parse import ParsedStep
from tui_agent.models.base import Usage


@dataclass
class Candidate:
    index: int
    raw: str
    parsed: ParsedStep
    usage: Usage | None = None
    result: Any = None  # CellResult of the trial run, when there was one
    looped: str | None = None  # the notice when generation was stopped for repeating itself


@dataclass(frozen=True)
class Choice:
    winner: Candidate
    agreement: int  # size of the winning group; 0 when every candidate failed and the first was used
    groups: int  # how many distinct groups the valid candidates formed


def output_key(result: Any) -> str:
    """What a trial run showed: printed output, the last expression's value and any final answer."""
    parts = [(getattr(result, "stdout", "") or "").strip(), str(getattr(result, "result", "") or "").strip()]
    final = getattr(result, "final_answer", None)
    if final is not None:
        parts.append(f"final_answer: {str(final).strip()}")
    return "\n".join(parts)


def code_key(code: str) -> str:
    """Code compared by meaning where possible (formatting and comments ignored)."""
    try:
        return ast.dump(ast.parse(code))
    except (SyntaxError, ValueError):
        return code.strip()


def _trial_ok(result: Any) -> bool:
    if result is None or getattr(result, "timed_out", False) or getattr(result, "restarted", False):
        return False
    return getattr(result, "error", None) is None


def _choose(valid: list[Candidate], key) -> tuple[Candidate, int, int]:
    groups: dict[str, list[Candidate]] = {}
    for candidate in valid:
        groups.setdefault(key(candidate), []).append(candidate)
    best = max(groups.values(), key=len)  # max keeps the first of equal groups: ties go to the earliest
    return best[0], len(best), len(groups)


def choose_by_output(candidates: list[Candidate]) -> Choice:
    """Largest group of identical trial outputs among candidates that parsed and ran without error."""
    valid = [c for c in candidates if c.parsed.ok and _trial_ok(c.result)]
    if not valid:
        return Choice(candidates[0], 0, 0)
    voters = [c for c in valid if output_key(c.result).strip()]
    if not voters:
        return choose_by_code(valid)
    winner, size, groups = _choose(voters, lambda c: output_key(c.result))
    return Choice(winner, size, groups)


def choose_by_code(candidates: list[Candidate]) -> Choice:
    """Largest group of equivalent code among candidates that parsed (nothing is run)."""
    valid = [c for c in candidates if c.parsed.ok]
    if not valid:
        return Choice(candidates[0], 0, 0)
    winner, size, groups = _choose(valid, lambda c: code_key(c.parsed.code or ""))
    return Choice(winner, size, groups)


def trial_run(kernel: Any, candidates: list[Candidate], *, timeout: float | None = None) -> None:
    """Run each parsed candidate in a throwaway fork of the kernel state, storing its result on the candidate."""
    for candidate in candidates:
        if not candidate.parsed.ok:
            continue
        try:
            candidate.result = kernel.try_execute(candidate.parsed.code, timeout=timeout)
        except Exception:  # a candidate that breaks the trial machinery simply does not count
            candidate.result = None

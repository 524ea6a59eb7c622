"""Whether SAG's winning trial is run again in the session: only when running it again could differ."""

from __future__ import annotations

from types import SimpleNamespace

from tui_agent.agent.loop import _reusable_trial
from tui_agent.agent.parse import parse_step
from tui_agent.agent.sag import Candidate


def _winner(code: str, **result) -> Candidate:
    parsed = parse_step(f"Thought: t\n```py\n{code}\n```<end_code>")
    defaults = {"error": None, "timed_out": False, "restarted": False, "final_answer": None}
    return Candidate(0, "", parsed, result=SimpleNamespace(**{**defaults, **result}))


def test_a_literal_final_answer_that_ran_cleanly_is_not_run_again():
    winner = _winner("final_answer(396)", final_answer=396)
    assert _reusable_trial(winner, "final_answer(396)") is winner.result


def test_anything_that_leaves_state_or_failed_is_run_again():
    assert _reusable_trial(_winner("x = 396\nfinal_answer(x)", final_answer=396), "x = 396\nfinal_answer(x)") is None
    assert _reusable_trial(_winner("final_answer(1)", error="boom"), "final_answer(1)") is None
    assert _reusable_trial(_winner("final_answer(1)", final_answer=1), "final_answer(2)") is None  # edited
    assert _reusable_trial(_winner("final_answer(1)", final_answer=1, restarted=True), "final_answer(1)") is None
    no_trial = _winner("final_answer(1)")
    no_trial.result = None
    assert _reusable_trial(no_trial, "final_answer(1)") is None

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


def test_copies_of_one_candidate_are_tried_once_and_a_winning_literal_answer_is_not_run_again(tmp_path):
    from tui_agent.agent.loop import Agent

    from .fakes import FakeKernel, ScriptedModel, step

    replies = [
        step("a", "print(6 * 7)"),
        step("b", "print(6*7)  # the same code"),
        step("c", "print(41)"),
        step("d", "final_answer(42)"),
        step("e", "final_answer(42)"),
        step("f", "final_answer(41)"),
    ]
    kernel = FakeKernel()
    agent = Agent(ScriptedModel(replies), kernel, workspace=tmp_path, repo_map="", sag=3, max_steps=2)
    list(agent.run("six times seven"))
    record = agent.last_record
    assert kernel.tried == ["print(6 * 7)", "print(41)", "final_answer(42)", "final_answer(41)"]
    assert record.steps[0].agreement == 2 and record.final_answer == "42"
    assert kernel.executed == ["print(6 * 7)"]  # the winning final_answer(42) came from its trial

"""The repetition guard: loops are stopped early, told to the model, and counted as parse failures."""

from __future__ import annotations

from tui_agent.agent import events as ev
from tui_agent.agent.loop import Agent
from tui_agent.agent.repetition import MIN_SPAN, RepetitionGuard, repeated_unit

from .fakes import FakeKernel, ScriptedModel, step


def test_repeated_unit_finds_long_loops_only():
    assert repeated_unit("final_answer(" + "0" * 300) == "0"
    assert repeated_unit("x = 1\n" + "print(1)\n" * 40) == "print(1)\n"
    assert repeated_unit("0" * (MIN_SPAN - 1)) is None
    assert repeated_unit(step("sum the list", "total = sum([1, 2, 3])\nprint(total)")) is None
    assert repeated_unit("") is None


def test_guard_trims_the_loop_it_stopped():
    guard = RepetitionGuard()
    tripped = [guard.feed(piece) for piece in ["Thought: x = "] + ["ab"] * 200]
    assert any(tripped) and guard.unit in ("ab", "ba")
    assert guard.trimmed().count(guard.unit) <= 4 and "loop" in guard.observation()


def test_a_looping_step_stops_early_and_the_model_is_told(tmp_path):
    looping = "Thought: compute\n```py\nx = " + "0" * 3000
    model = ScriptedModel([looping, step("fix", "final_answer(1)")])
    agent = Agent(model, FakeKernel(), workspace=tmp_path, repo_map="", max_steps=3)
    events = list(agent.run("count"))
    tokens = [e for e in events if isinstance(e, ev.Token) and e.step == 1]
    assert len("".join(t.text for t in tokens)) < 600  # stopped long before the 3000 characters
    observation = next(e for e in events if isinstance(e, ev.Observation))
    assert observation.parse_failure and "fell into a loop" in observation.text
    record = agent.last_record
    assert record.steps[0].parse_failure and record.steps[0].repetition and record.final_answer == "1"
    assert len(record.messages[2]["content"]) < 600  # the trajectory keeps the loop trimmed

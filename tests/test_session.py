"""The session factory and run_episode: one way to build an agent, with a real kernel and a scripted model."""

from __future__ import annotations

import dataclasses

import pytest

from tui_agent.agent.trajectory import TrajectoryRecorder, read_trajectories
from tui_agent.config import Settings
from tui_agent.session import open_session, run_episode, with_overrides

from .scripted import ScriptedModel, step


def settings(**kw) -> Settings:
    return dataclasses.replace(Settings(web=False, approval="auto", cell_timeout=30.0), **kw)


def test_overrides_win_and_none_keeps_config():
    base = Settings(max_steps=8, sag=1)
    changed = with_overrides(base, max_steps=3, sag=None)
    assert (changed.max_steps, changed.sag) == (3, 1) and base.max_steps == 8
    with pytest.raises(TypeError, match="unknown settings: nope"):
        with_overrides(base, nope=1)


def test_session_runs_fresh_episodes_on_a_real_kernel(tmp_path):
    model = ScriptedModel(
        [
            step("set a variable", "x = 41\nprint(x)"),
            step("answer", "final_answer(x + 1)"),
            step("is x still there?", "print('x' in globals())"),
            step("answer", "final_answer('fresh')"),
        ]
    )
    out = tmp_path / "runs.jsonl"
    with open_session(
        settings(max_steps=3), workspace=tmp_path, model=model, repo_map="", recorder=TrajectoryRecorder(out), seed=7
    ) as session:
        first = session.run("What is 41 + 1?", task_id="t1", reference={"answer": "42", "kind": "number"})
        second = session.run("Second task")
    assert first.final_answer == "42" and first.task_id == "t1" and first.reference["answer"] == "42"
    assert second.steps[0].observation.strip() == "False"  # a fresh kernel: no variable leaks between episodes
    assert [m["role"] for m in second.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert second.messages[1]["content"] == "Task: Second task"  # a fresh conversation, not the first task's
    saved = read_trajectories(out)
    assert [r.task for r in saved] == ["What is 41 + 1?", "Second task"]
    assert saved[0].settings["seed"] == 7 and saved[0].settings["max_steps"] == 3
    assert {"prompt_version", "system_prompt_sha256", "temperature", "max_tokens", "sag", "tools"} <= set(
        saved[0].settings
    )
    assert "final_answer" in saved[0].settings["tools"] and "web_search" not in saved[0].settings["tools"]


def test_trajectory_keeps_whole_turns_when_the_context_is_fitted(tmp_path):
    model = ScriptedModel(
        [step("print a lot", "print('word ' * 3000)"), step("done", "final_answer('ok')")],
        context_length=1300,
    )
    with open_session(settings(max_steps=3), workspace=tmp_path, model=model, repo_map="", max_tokens=100) as session:
        record = session.run("Print a lot, then answer")
    seen = model.calls[1][-1]["content"]
    kept = record.messages[3]["content"]
    assert "shortened" in seen and len(seen) < len(kept)  # the model saw a shortened observation ...
    assert "shortened" not in kept and kept == record.steps[0].observation.join(["Observation:\n", ""]).rstrip()


def test_first_thought_opens_the_first_step(tmp_path):
    model = ScriptedModel([" so I compute 6 * 7.\n```py\nfinal_answer(6 * 7)\n```<end_code>"])
    with open_session(settings(), workspace=tmp_path, model=model, repo_map="") as session:
        record = session.run("6 times 7?", first_thought="The product of 6 and 7 is needed,")
    assert model.calls[0][-1] == {"role": "assistant", "content": "Thought: The product of 6 and 7 is needed,"}
    assert record.final_answer == "42"
    assert record.messages[2]["content"].startswith("Thought: The product of 6 and 7 is needed, so I compute")
    assert record.settings["first_thought"] == "The product of 6 and 7 is needed,"


def test_run_episode_passes_every_event(tmp_path):
    model = ScriptedModel([step("answer", "final_answer(1)")])
    seen = []
    with open_session(settings(), workspace=tmp_path, model=model, repo_map="") as session:
        record = run_episode(session.agent, "one", on_event=lambda e: seen.append(e.kind))
    assert seen[0] == "run_started" and seen[-1] == "run_finished" and "final_answer" in seen
    assert record.stop_reason == "answered"


def test_a_missing_model_is_a_model_error_and_no_kernel_is_left(tmp_path):
    from tui_agent.models.base import ModelError

    with pytest.raises(ModelError, match="No such model file"):
        open_session(settings(), workspace=tmp_path, model=str(tmp_path / "missing.gguf"))

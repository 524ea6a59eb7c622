"""The loop's logic with a scripted model and an in-process kernel (real model and kernel: other files)."""

from __future__ import annotations

import threading

import pytest

from tui_agent.agent import events as ev
from tui_agent.agent.approval import Approval
from tui_agent.agent.loop import READ_ONLY, SKIPPED, Agent
from tui_agent.agent.parse import CORRECTIVE
from tui_agent.agent.prompt import FORCED_FINAL, FORCED_PREFIX
from tui_agent.agent.trajectory import TrajectoryRecorder, read_trajectories

from .fakes import FakeKernel, ScriptedModel, step


def make(replies, tmp_path, **kw):
    model = ScriptedModel(replies, context_length=kw.pop("context_length", 32768))
    kernel = kw.pop("kernel", None) or FakeKernel()
    agent = Agent(model, kernel, workspace=tmp_path, repo_map="", **kw)
    return agent, model, kernel


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def test_two_steps_to_an_answer(tmp_path):
    agent, model, kernel = make([step("compute", "x = 6 * 7\nprint(x)"), step("done", "final_answer(x)")], tmp_path)
    events = list(agent.run("What is 6 times 7?"))
    assert isinstance(events[0], ev.RunStarted) and isinstance(events[-1], ev.RunFinished)
    assert events[-1].answer == "42" and events[-1].stop_reason == "answered" and events[-1].steps == 2
    assert [o.text for o in of(events, ev.Observation)] == ["42\n"]
    assert [c.code for c in of(events, ev.CodeReady)] == ["x = 6 * 7\nprint(x)", "final_answer(x)"]
    assert of(events, ev.FinalAnswer)[0].answer == "42"
    assert len(of(events, ev.UsageReport)) == 2
    assert "".join(t.text for t in of(events, ev.Token) if t.step == 1).startswith("Thought: compute")
    # the observation went back as the next user turn, and the model saw it on the second call
    second_call = model.calls[1]
    assert second_call[-1] == {"role": "user", "content": "Observation:\n42"}
    assert second_call[-2]["content"].endswith("<end_code>")
    assert second_call[1]["content"] == "Task: What is 6 times 7?"
    assert events[-1].prompt_tokens > 0 and events[-1].completion_tokens > 0


def test_error_goes_back_as_observation_and_model_repairs(tmp_path):
    agent, model, _ = make([step("try", "print(1/0)"), step("fix", "final_answer(1/1)")], tmp_path)
    events = list(agent.run("divide"))
    obs = of(events, ev.Observation)[0]
    assert "ZeroDivisionError" in obs.text and obs.error
    assert "ZeroDivisionError" in model.calls[1][-1]["content"]
    assert events[-1].answer == "1.0"


def test_parse_failure_gets_corrective_observation(tmp_path):
    agent, model, _ = make(["I think the answer is 5.", step("ok", "final_answer(5)")], tmp_path)
    events = list(agent.run("five?"))
    obs = of(events, ev.Observation)[0]
    assert obs.parse_failure and obs.text == CORRECTIVE
    assert model.calls[1][-1]["content"].startswith("Observation:\nError: I could not find")
    assert events[-1].answer == "5" and events[-1].extra["parse_failures"] == 1


def test_lenient_bare_python_runs(tmp_path):
    agent, _, kernel = make(["final_answer(2 + 2)"], tmp_path)
    events = list(agent.run("2+2"))
    assert events[-1].answer == "4" and kernel.executed == ["final_answer(2 + 2)"]


def test_max_steps_then_one_forced_final_turn(tmp_path):
    agent, model, _ = make(
        [step("a", "print(1)"), step("b", "print(2)"), "'best guess')\n```"],
        tmp_path,
        max_steps=2,
    )
    events = list(agent.run("loop"))
    assert len(model.calls) == 3
    assert FORCED_FINAL in model.calls[2][-2]["content"]
    assert model.calls[2][-2]["content"].startswith("Observation:\n2")
    # the forced turn is started for the model: it only has to finish the final_answer(...) call
    assert model.calls[2][-1] == {"role": "assistant", "content": FORCED_PREFIX}
    assert events[-1].answer == "best guess" and events[-1].steps == 3
    assert [c.code for c in of(events, ev.CodeReady)][-1] == "final_answer('best guess')"


def test_max_steps_without_answer(tmp_path):
    agent, model, _ = make([step("a", "print(1)")] * 5, tmp_path, max_steps=1)
    events = list(agent.run("loop"))
    assert len(model.calls) == 2  # one step, one forced turn, no more
    assert events[-1].stop_reason == "max_steps" and events[-1].answer is None


@pytest.mark.parametrize(
    "decision, expect_run, expect_answer",
    [
        (Approval("run"), "final_answer(1)", "1"),
        (Approval("edit", code="final_answer(2)"), "final_answer(2)", "2"),
        (Approval("always"), "final_answer(1)", "1"),
    ],
)
def test_approval_run_edit_always(tmp_path, decision, expect_run, expect_answer):
    asked = []

    def approver(step_no, code):
        asked.append((step_no, code))
        return decision

    agent, _, kernel = make([step("go", "final_answer(1)")], tmp_path, approver=approver)
    events = list(agent.run("x"))
    assert asked == [(1, "final_answer(1)")]
    assert kernel.executed == [expect_run]
    assert events[-1].answer == expect_answer
    assert of(events, ev.ApprovalNeeded)[0].code == "final_answer(1)"
    if decision.action == "edit":
        assert of(events, ev.CodeReady)[-1].code == "final_answer(2)"
        assert "final_answer(2)" in agent.messages[-1]["content"]
    assert (agent.approver is None) == (decision.action == "always")


def test_always_stops_asking(tmp_path):
    asked = []
    agent, _, kernel = make(
        [step("a", "print(1)"), step("b", "final_answer(2)")],
        tmp_path,
        approver=lambda s, c: asked.append(s) or Approval("always"),
    )
    list(agent.run("x"))
    assert asked == [1] and len(kernel.executed) == 2


def test_skip_says_so(tmp_path):
    agent, model, kernel = make(
        [step("a", "import os"), step("b", "final_answer(3)")],
        tmp_path,
        approver=lambda s, c: Approval("skip") if s == 1 else Approval("run"),
    )
    events = list(agent.run("x"))
    assert kernel.executed == ["final_answer(3)"]
    obs = of(events, ev.Observation)[0]
    assert obs.skipped and obs.text == SKIPPED
    assert SKIPPED in model.calls[1][-1]["content"]


def test_read_only_never_executes(tmp_path):
    agent, model, kernel = make(
        [step("a", "open('f', 'w').write('x')"), step("b", "final_answer('no files')")], tmp_path, read_only=True
    )
    events = list(agent.run("x"))
    assert kernel.executed == [] and not kernel.alive
    assert of(events, ev.Observation)[0].text == READ_ONLY
    assert events[-1].answer == "no files"
    assert not (tmp_path / "f").exists()


def test_cancel_during_generation(tmp_path):
    cancel = threading.Event()
    model = ScriptedModel([step("long", "print(1)" * 50)], on_generate=lambda n: cancel.set())
    agent = Agent(model, FakeKernel(), workspace=tmp_path, repo_map="")
    events = list(agent.run("x", cancel=cancel))
    assert events[-1].stop_reason == "cancelled" and events[-1].answer is None


def test_cancel_interrupts_running_cell_and_keeps_partial_trajectory(tmp_path):
    running = threading.Event()
    kernel = FakeKernel(block=running)
    path = tmp_path / "t.jsonl"
    agent, _, _ = make([step("slow", "while True: pass")], tmp_path, kernel=kernel, recorder=TrajectoryRecorder(path))
    cancel = threading.Event()
    threading.Thread(target=lambda: running.wait(10) and cancel.set(), daemon=True).start()
    events = list(agent.run("spin", cancel=cancel))
    assert kernel.interrupted.is_set()
    assert events[-1].stop_reason == "cancelled"
    (run,) = read_trajectories(path)
    assert run.stop_reason == "cancelled" and run.steps[0].code == "while True: pass"


def test_consumer_stopping_early_still_records(tmp_path):
    path = tmp_path / "t.jsonl"
    agent, _, _ = make([step("a", "print(1)")], tmp_path, recorder=TrajectoryRecorder(path))
    gen = agent.run("x")
    next(gen)
    next(gen)
    gen.close()
    (run,) = read_trajectories(path)
    assert run.task == "x" and run.stop_reason == "cancelled"


def test_multi_turn_keeps_history_and_reset_clears(tmp_path):
    agent, model, _ = make([step("a", "y = 5\nfinal_answer(y)"), step("b", "final_answer(y + 1)")], tmp_path)
    assert list(agent.run("first"))[-1].answer == "5"
    assert list(agent.run("second"))[-1].answer == "6"  # the kernel state and the history persist
    roles = [m["role"] for m in model.calls[1]]
    assert roles == ["system", "user", "assistant", "user"]
    assert model.calls[1][1]["content"] == "Task: first"
    used = agent.context_used()
    agent.reset()
    assert len(agent.messages) == 1 and agent.context_used() < used


def test_trajectory_records_every_step(tmp_path):
    path = tmp_path / "runs.jsonl"
    agent, _, _ = make(
        ["nonsense", step("compute", "print(2**10)"), step("done", "final_answer(1024)")],
        tmp_path,
        recorder=TrajectoryRecorder(path),
    )
    list(agent.run("power"))
    (run,) = read_trajectories(path)
    assert run.task == "power" and run.model == "scripted" and run.final_answer == "1024"
    assert run.stop_reason == "answered"
    assert [s.parse_failure for s in run.steps] == [True, False, False]
    assert run.steps[1].observation.strip() == "1024" and run.steps[1].thought == "compute"
    assert run.steps[2].final_answer == "1024"
    assert all(s.completion_tokens > 0 for s in run.steps)
    assert run.messages[0]["role"] == "system" and run.messages[1]["content"] == "Task: power"
    assert run.prompt_tokens == sum(s.prompt_tokens for s in run.steps)


def test_history_trimmed_to_context(tmp_path):
    big = "print('x ' * 3000)"
    replies = [step("a", big), step("b", big), step("c", "final_answer('ok')")]
    agent, model, _ = make(replies, tmp_path, context_length=2600, max_tokens=100)
    events = list(agent.run("x"))
    assert events[-1].answer == "ok"
    third = model.calls[2]
    assert "shortened" in third[3]["content"]  # the old observation was shortened
    assert sum(len(m["content"].split()) + 8 for m in third) <= 2500


def test_context_overflow_is_an_error_not_a_crash(tmp_path):
    agent, _, _ = make([step("a", "print(1)")], tmp_path, context_length=50, max_tokens=10)
    events = list(agent.run("x"))
    errors = of(events, ev.AgentError)
    assert errors and "context window" in errors[0].message
    assert events[-1].stop_reason == "context_full"  # recorded as the run's outcome (retried runs say "error")


def test_model_error_is_reported(tmp_path):
    from tui_agent.models.base import ModelError

    class Broken(ScriptedModel):
        def stream_chat(self, *a, **k):
            raise ModelError("the model file is corrupt")

    agent = Agent(Broken([]), FakeKernel(), workspace=tmp_path, repo_map="")
    events = list(agent.run("x"))
    assert of(events, ev.AgentError)[0].message == "the model file is corrupt"
    assert events[-1].stop_reason == "error"


def test_invalid_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="max_steps"):
        Agent(ScriptedModel([]), FakeKernel(), workspace=tmp_path, repo_map="", max_steps=0)
    with pytest.raises(ValueError, match="sag"):
        Agent(ScriptedModel([]), FakeKernel(), workspace=tmp_path, repo_map="", sag=0)


def test_next_task_after_a_max_steps_run_keeps_turns_alternating(tmp_path):
    agent, model, _ = make(
        [step("a", "print(1)"), "undefined_name)\n```", step("c", "final_answer(3)")], tmp_path, max_steps=1
    )
    assert list(agent.run("first"))[-1].stop_reason == "max_steps"
    assert list(agent.run("second"))[-1].answer == "3"
    roles = [m["role"] for m in model.calls[-1]]
    assert all(a != b for a, b in zip(roles[1:], roles[2:], strict=False)), roles
    assert model.calls[-1][-1]["content"].endswith("Task: second")


class _BaseModel(ScriptedModel):
    """A scripted model without a chat template, as the embedded Gemma base model is."""

    instruct = False


def test_base_model_turns_start_with_thought(tmp_path):
    model = _BaseModel([" add them\n```py\nfinal_answer(2 + 3)\n```<end_code>"])
    kernel = FakeKernel()
    agent = Agent(model, kernel, workspace=tmp_path, repo_map="")
    events = list(agent.run("What is 2 + 3?"))
    assert model.calls[0][-1] == {"role": "assistant", "content": "Thought:"}
    assert of(events, ev.CodeReady)[0].thought == "add them"
    assert events[-1].answer == "5"
    assert agent.messages[-1]["content"].startswith("Thought: add them")


def test_instruct_models_get_no_prefix_and_a_repeated_prefix_is_dropped(tmp_path):
    agent, model, _ = make([step("go", "final_answer(1)")], tmp_path)
    list(agent.run("one"))
    assert model.calls[0][-1]["role"] == "user"
    agent, model, _ = make([step("go", "final_answer(1)")], tmp_path, step_prefix="Thought:")
    events = list(agent.run("one"))
    assert of(events, ev.CodeReady)[0].thought == "go"


def test_a_step_repeated_with_the_same_result_is_pointed_out(tmp_path):
    from tui_agent.agent.loop import REPEAT_NOTE

    same = step("look again", "print('F failed')")
    agent, model, _ = make([same, same, same, step("stop", "final_answer(0)")], tmp_path)
    events = list(agent.run("loop"))
    texts = [o.text for o in of(events, ev.Observation)]
    assert texts[0].strip() == "F failed" and REPEAT_NOTE not in texts[0]
    assert texts[1].endswith(REPEAT_NOTE) and texts[2].endswith(REPEAT_NOTE)
    assert texts[2].count(REPEAT_NOTE) == 1  # said once per repeat, not piled up
    assert REPEAT_NOTE in model.calls[2][-1]["content"]


def test_the_same_code_with_a_new_result_is_not_a_repeat(tmp_path):
    from tui_agent.agent.loop import REPEAT_NOTE

    count = step("count", "n = globals().get('n', 0) + 1\nprint(n)")
    agent, _, _ = make([count, count, step("stop", "final_answer(n)")], tmp_path)
    events = list(agent.run("count twice"))
    assert [o.text.strip() for o in of(events, ev.Observation)] == ["1", "2"]
    assert events[-1].answer == "2" and not any(REPEAT_NOTE in o.text for o in of(events, ev.Observation))


def test_a_copied_example_answer_is_refused_and_the_model_tries_again(tmp_path):
    agent, model, _ = make(
        [
            step("the count is", "final_answer(12987)"),
            step("compute", "x = 3 * 5\nprint(x)"),
            step("d", "final_answer(x)"),
        ],
        tmp_path,
    )
    events = list(agent.run("What is 3 times 5?"))
    refused = of(events, ev.Observation)[0]
    assert "12987 is the answer of an example" in refused.text and refused.error
    assert model.calls[1][-1]["content"].startswith("Observation:\nError: 12987 is the answer of an example")
    assert events[-1].answer == "15" and events[-1].stop_reason == "answered"
    assert agent.last_record.steps[0].copied_answer and agent.last_record.steps[0].final_answer is None


def test_a_copied_forced_answer_ends_the_run_without_an_answer(tmp_path):
    agent, _, _ = make([step("a", "print(1)"), "12987)\n```"], tmp_path, max_steps=1)
    events = list(agent.run("How many apples?"))
    assert events[-1].answer is None and events[-1].stop_reason == "max_steps"
    assert "not accepted" in of(events, ev.Observation)[-1].text
    assert agent.last_record.steps[-1].copied_answer and agent.last_record.steps[-1].forced_final


def test_an_example_answer_the_run_computed_is_accepted(tmp_path):
    agent, _, _ = make([step("c", "print(12980 + 7)"), step("d", "final_answer(12987)")], tmp_path)
    assert list(agent.run("What is 12980 plus 7?"))[-1].answer == "12987"


def test_the_copy_guard_can_be_turned_off(tmp_path):
    agent, _, _ = make([step("the count is", "final_answer(12987)")], tmp_path, copy_guard=False)
    assert list(agent.run("apples"))[-1].answer == "12987"
    assert agent.settings()["copy_guard"] is False


def test_an_example_cell_gets_a_notice_and_its_printed_answer_is_still_refused(tmp_path):
    agent, _, _ = make(
        [step("pow", "result = pow(7, 222, 1000003)\nprint(result)"), step("done", "final_answer(849282)")],
        tmp_path,
        max_steps=2,
    )
    events = list(agent.run("What is 3 to the power 5?"))
    first, second = of(events, ev.Observation)[:2]
    assert first.text.startswith("849282") and "copied from an example" in first.text
    assert "849282 is the answer of an example" in second.text
    assert agent.last_record.steps[0].copied_cell and agent.last_record.steps[1].copied_answer


def test_a_forced_answer_computed_from_the_prompts_demo_numbers_is_refused(tmp_path):
    agent, _, _ = make([step("a", "print(1)"), "12345 * 678)\n```"], tmp_path, max_steps=1)
    events = list(agent.run("What is 8 to the power 97?"))
    assert "12345 * 678" in agent.system_prompt  # the format demo of the system prompt
    assert events[-1].answer is None and agent.last_record.steps[-1].copied_answer

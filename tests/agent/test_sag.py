"""Self-consistent action generation: selection rules, and trial runs in a real kernel's throwaway forks."""

from __future__ import annotations

import pytest

from tui_agent.agent import events as ev
from tui_agent.agent.approval import Approval
from tui_agent.agent.loop import Agent
from tui_agent.agent.parse import parse_step
from tui_agent.agent.sag import Candidate, choose_by_code, choose_by_output

from .fakes import FakeKernel, FakeResult, ScriptedModel, step


def cand(i, code, result=None):
    raw = step("t", code) if code is not None else "no code here"
    return Candidate(i, raw, parse_step(raw), result=result)


def test_largest_output_group_wins():
    candidates = [
        cand(0, "print(1)", FakeResult(stdout="1\n")),
        cand(1, "print(2)", FakeResult(stdout="2\n")),
        cand(2, "print(1 + 0)", FakeResult(stdout="1\n")),
    ]
    choice = choose_by_output(candidates)
    assert choice.winner.index == 0 and choice.agreement == 2 and choice.groups == 2


def test_failures_dropped_and_ties_go_to_the_first():
    candidates = [
        cand(0, None),
        cand(1, "1/0", FakeResult(error="ZeroDivisionError")),
        cand(2, "print(3)", FakeResult(stdout="3")),
        cand(3, "print(4)", FakeResult(stdout="4")),
        cand(4, "while 1: pass", FakeResult(timed_out=True)),
    ]
    choice = choose_by_output(candidates)
    assert choice.winner.index == 2 and choice.agreement == 1


def test_all_fail_falls_back_to_first():
    candidates = [cand(0, "1/0", FakeResult(error="E")), cand(1, None)]
    choice = choose_by_output(candidates)
    assert choice.winner.index == 0 and choice.agreement == 0


def test_candidates_that_show_nothing_do_not_outvote_one_that_answers():
    candidates = [
        cand(0, "x = 1", FakeResult()),
        cand(1, "y = 2", FakeResult()),
        cand(2, "z = 3", FakeResult(stdout="   \n")),
        cand(3, "print(42)", FakeResult(stdout="42\n")),
    ]
    choice = choose_by_output(candidates)
    assert choice.winner.index == 3 and choice.agreement == 1 and choice.groups == 1
    silent = [cand(0, "a = 1", FakeResult()), cand(1, "b = 2", FakeResult()), cand(2, "b  =  2", FakeResult())]
    choice = choose_by_output(silent)  # nobody showed anything: grouped by code instead
    assert choice.winner.index == 1 and choice.agreement == 2


def test_final_answers_count_in_the_output():
    candidates = [
        cand(0, "final_answer(1)", FakeResult(final_answer="1")),
        cand(1, "final_answer(2)", FakeResult(final_answer="2")),
        cand(2, "final_answer(2)", FakeResult(final_answer="2")),
    ]
    assert choose_by_output(candidates).winner.index == 1


def test_code_grouping_ignores_formatting_and_comments():
    candidates = [cand(0, "print(1)"), cand(1, "print( 2 )"), cand(2, "# same\nprint(2)")]
    choice = choose_by_code(candidates)
    assert choice.winner.index == 1 and choice.agreement == 2


def test_samples_with_different_seeds_and_positive_temperature(tmp_path):
    model = ScriptedModel([step("a", "final_answer(1)")] * 3)
    agent = Agent(model, FakeKernel(), workspace=tmp_path, repo_map="", sag=3, temperature=0.0)
    events = list(agent.run("x"))
    assert len(set(model.seeds)) == 3 and all(t > 0 for t in model.temperatures)
    assert {t.candidate for t in events if isinstance(t, ev.Token)} == {0, 1, 2}
    assert events[-1].answer == "1"


def test_with_an_approver_nothing_runs_before_approval(tmp_path):
    kernel = FakeKernel()
    asked = []
    model = ScriptedModel([step("a", "final_answer(1)"), step("b", "final_answer(2)"), step("c", "final_answer(2)")])
    agent = Agent(
        model,
        kernel,
        workspace=tmp_path,
        repo_map="",
        sag=3,
        approver=lambda s, c: asked.append(c) or Approval("run"),
    )
    events = list(agent.run("x"))
    assert kernel.tried == [] and asked == ["final_answer(2)"]
    assert events[-1].answer == "2"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    from tui_agent.tools.kernel import Kernel

    k = Kernel(tmp_path_factory.mktemp("ws"), web=False, timeout=20)
    k.start()
    yield k
    k.shutdown()


def test_real_kernel_trials_leave_no_side_effects(tmp_path, kernel):
    from tui_agent.agent.trajectory import TrajectoryRecorder, read_trajectories

    kernel.execute("base = 5")
    replies = [
        step("double", "leak_a = 1\nprint(base * 2)"),  # prints 10
        step("broken", "leak_b = 1\nprint(base / 0)"),  # raises: dropped
        step("add", "leak_c = 1\nprint(base + 5)"),  # prints 10: same group as the first
        step("other", "leak_d = 1\nprint(base)"),  # prints 5: a group of one
        step("answer", "final_answer(base * 2)"),
    ]
    path = tmp_path / "t.jsonl"
    model = ScriptedModel(replies)
    agent = Agent(model, kernel, workspace=tmp_path, repo_map="", sag=4, max_steps=3, recorder=TrajectoryRecorder(path))
    gen = agent.run("double base")
    events = []
    for event in gen:
        events.append(event)
        if isinstance(event, ev.Observation):
            break
    gen.close()
    assert [e.code for e in events if isinstance(e, ev.CodeReady)] == ["leak_a = 1\nprint(base * 2)"]
    assert events[-1].text.strip() == "10"
    seen = kernel.execute("print(sorted(n for n in dir() if n.startswith('leak_')))")
    assert seen.stdout.strip() == "['leak_a']"  # only the winner ran for real
    (run,) = read_trajectories(path)
    assert run.steps[0].candidates == 4 and run.steps[0].agreement == 2


def test_real_kernel_trials_leave_files_as_they_were(tmp_path, kernel):
    kernel.execute("open('log.txt', 'w').write('start\\n')")
    append = "open('log.txt', 'a').write('ran\\n')\nprint(open('log.txt').read().count('ran'))"
    replies = [step("append", append)] * 3 + [step("answer", "final_answer('done')")]
    agent = Agent(ScriptedModel(replies), kernel, workspace=tmp_path, repo_map="", sag=3, max_steps=2)
    observations = [e.text for e in agent.run("append once") if isinstance(e, ev.Observation)]
    assert observations[0].strip() == "1"  # each trial saw its own write, then the winner's real run saw one
    log = kernel.execute("print(open('log.txt').read())").stdout
    assert log.split() == ["start", "ran"]  # three trials and one real run: the file was appended once

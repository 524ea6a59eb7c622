"""Failure kinds: each wrong run in exactly one kind, counted per row with examples, shown as a trajectory."""

from __future__ import annotations

from training.failures import KINDS, excerpt, failure_kind, failure_summary, failures_markdown, tools_called
from tui_agent.agent.trajectory import RunRecord, StepRecord

TOOLS = ["final_answer", "find_symbol", "search_code"]


def run(task_id: str, *steps: StepRecord, answer: str | None = None, stop: str = "answered") -> RunRecord:
    return RunRecord(
        task=f"question {task_id}",
        model="m",
        task_id=task_id,
        reference={"answer": "42", "kind": "number"},
        steps=list(steps),
        final_answer=answer,
        stop_reason=stop if answer is not None else (stop if stop != "answered" else "max_steps"),
        settings={"tools": TOOLS},
    )


def answered(n: int, answer: str, **flags) -> StepRecord:
    return StepRecord(
        step=n, code=f"final_answer({answer})", observation=f"Final answer: {answer}", final_answer=answer, **flags
    )


def cell(n: int, code: str = "print(6 * 7)", observation: str = "42", **flags) -> StepRecord:
    return StepRecord(step=n, thought="compute it", code=code, observation=observation, **flags)


def test_each_wrong_run_gets_the_first_kind_that_applies():
    assert failure_kind(run("a", cell(1), answered(2, "42"), answer="42"), True) is None
    assert failure_kind(run("b", cell(1), answered(2, "41"), answer="41"), False) == "wrong_plan"
    errored = cell(1, "1/0", "Error: ZeroDivisionError", error="ZeroDivisionError")
    assert failure_kind(run("c", errored, answered(2, "41"), answer="41"), False) == "wrong_after_error"
    unparsed = StepRecord(step=1, raw="The answer is 41.", parse_failure=True, observation="Error: no code block")
    assert failure_kind(run("d", unparsed, errored, answered(3, "41"), answer="41"), False) == (
        "wrong_after_parse_failure"  # the parse failure came first in the rules: format before plan
    )
    assert failure_kind(run("e", cell(1), answered(2, "41", forced_final=True), answer="41"), False) == "forced_answer"
    assert failure_kind(run("f", cell(1), cell(2)), False) == "no_answer_max_steps"
    assert failure_kind(run("g", cell(1), stop="context_full"), False) == "no_answer_context_full"
    assert all(kind in KINDS for kind in ("no_answer_max_steps", "no_answer_context_full", "no_answer_error"))


def test_tools_called_are_those_offered_and_called():
    record = run("a", cell(1, "find_symbol('Container')\nsearch_code = 3"), answered(2, "41"), answer="41")
    assert tools_called(record) == {"find_symbol", "final_answer"}  # an assignment to a tool's name is no call


def test_summary_counts_kinds_most_frequent_first_with_examples():
    records = [run(f"w{i}", cell(1), answered(2, "41"), answer="41") for i in range(5)]
    records += [run("n0", cell(1, "search_code('x')"), cell(2)), run("ok", answered(1, "42"), answer="42")]
    summary = failure_summary(records, [False] * 6 + [True])
    assert list(summary["failure_kinds"]) == ["wrong_plan", "no_answer_max_steps"]
    assert summary["failure_kinds"]["wrong_plan"] == {"count": 5, "examples": ["w0", "w1", "w2"]}
    assert summary["runs_calling"] == {"final_answer": 6, "search_code": 1}


def test_an_excerpt_shows_the_steps_and_cuts_long_text():
    long_code = "\n".join(f"x{i} = {i}" for i in range(40))
    long_output = "7" * 2000
    record = run("a", cell(1, long_code, long_output), answered(2, "41"), answer="41")
    text = "\n".join(excerpt(record))
    assert "Task `a`: question a" in text and "Expected `42`, got `41`" in text
    assert "# ... 25 more lines" in text and "[... 1600 more characters]" in text
    unparsed = StepRecord(step=1, raw="The answer is 41.", parse_failure=True, observation="Error: no code block")
    assert "Step 1 (parse failure)" in "\n".join(excerpt(run("b", unparsed)))
    assert "The answer is 41." in "\n".join(excerpt(run("b", unparsed)))  # what the model wrote instead of code


def test_the_markdown_has_counts_and_one_trajectory_per_kind():
    wrong = [run("w0", cell(1), answered(2, "41"), answer="41"), run("n0", cell(1), cell(2))]
    text = failures_markdown("gsm-hard", {"row-sag1": (wrong, [False, False]), "empty-sag1": ([], [])})
    assert text.startswith("# Failures: gsm-hard")
    assert "0 of 2 right." in text and "- `wrong_plan`: 1" in text and "- `no_answer_max_steps`: 1" in text
    assert "### row-sag1: `wrong_plan`" in text and "Task `w0`" in text and "Task `n0`" in text
    assert "empty-sag1" not in text  # a row not run yet has nothing to show

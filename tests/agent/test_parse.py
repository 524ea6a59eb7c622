"""Lenient parsing of model steps: fence, tags, bare Python, and what counts as a failure."""

from __future__ import annotations

from tui_agent.agent.parse import format_step, literal_final_answer, parse_step


def test_fenced_block_with_thought():
    p = parse_step("Thought: add them.\n```py\nx = 1 + 2\nprint(x)\n```<end_code>")
    assert (p.how, p.thought, p.code) == ("fence", "add them.", "x = 1 + 2\nprint(x)")


def test_python_fence_and_missing_closing_fence():
    assert parse_step("Thought: t\n```python\nprint(3)\n```").code == "print(3)"
    # generation stopped at <end_code> without closing the fence
    p = parse_step("Thought: t\n```py\nprint(4)\n")
    assert (p.how, p.code) == ("fence", "print(4)")


def test_several_blocks_are_joined_in_order():
    p = parse_step("Thought: two\n```py\na = 1\n```\nthen\n```py\nprint(a)\n```")
    assert p.code == "a = 1\n\nprint(a)"


def test_tags():
    p = parse_step("Thought: use tags\n<code>print('hi')</code>")
    assert (p.how, p.thought, p.code) == ("tag", "use tags", "print('hi')")
    assert parse_step("<execute>y = 2</execute>").code == "y = 2"


def test_bare_python_whole_text_and_after_thought_line():
    assert parse_step("print(2 ** 10)").how == "bare"
    p = parse_step("Thought: compute it\nresult = 2 ** 10\nprint(result)")
    assert (p.how, p.thought, p.code) == ("bare", "compute it", "result = 2 ** 10\nprint(result)")


def test_prose_is_a_failure():
    for text in ("Thought: I think the answer is 42.", "42", "Done", "", "The answer is clearly five"):
        p = parse_step(text)
        assert not p.ok and p.code is None, text


def test_empty_fence_is_a_failure():
    assert not parse_step("Thought: hmm\n```py\n\n```").ok


def test_format_step_round_trips():
    text = format_step("do it", "print(1)")
    p = parse_step(text)
    assert (p.thought, p.code) == ("do it", "print(1)")
    assert text.endswith("<end_code>")


def test_literal_final_answer():
    assert literal_final_answer("final_answer(42)") == "42"
    assert literal_final_answer("final_answer('Paris')") == "Paris"
    assert literal_final_answer("final_answer(x)") is None
    assert literal_final_answer("import os\nfinal_answer(1)") is None
    assert literal_final_answer("final_answer(") is None

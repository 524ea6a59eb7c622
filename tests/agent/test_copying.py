"""Answers copied from the few-shot examples: recognised only when the run itself never produced them."""

from __future__ import annotations

from tui_agent.agent.copying import copied_answer, copied_cell
from tui_agent.agent.prompt import load_examples


def test_every_example_declares_its_answer():
    assert all(str(example.get("answer", "")).strip() for example in load_examples())


def test_an_example_answer_the_run_never_saw_is_copied():
    own = ["Task: Quinn and Ines each eat 464199 apples a day. How many in 57 days?", "Observation:\n26459343"]
    assert copied_answer("12987", own)
    assert copied_answer("12987.0", own) and copied_answer("'12,987'", own)
    assert copied_answer("app/settings.py:12, returns a dict", own)


def test_an_answer_the_run_found_or_that_no_example_gives_is_not_copied():
    assert not copied_answer("12987", ["Task: count them", "Observation:\n12987"])
    assert not copied_answer("12987", ["Observation:\nThere are 12,987 of them."])
    assert not copied_answer("26459343", ["Task: apples"])  # not an example's answer: a wrong answer, not a copy
    assert not copied_answer("1096", ["Task: In which year was the University of Oxford founded? (1096)"])


def test_a_longer_number_containing_the_answer_does_not_count_as_found():
    assert copied_answer("12987", ["Observation:\n112987"])
    assert copied_answer("12987", ["Observation:\n12987.5"])


def test_literal_final_answers_in_the_prompt_count_as_the_prompts_answers():
    prompt = 'final_answer(answer)\n    Call it like final_answer(42).\n...final_answer(count)\nfinal_answer("x")'
    assert copied_answer("42", ["Task: apples"], prompt) and copied_answer("x", ["Task: apples"], prompt)
    assert not copied_answer("count", ["Task: apples"], prompt)  # a name in the prompt is no value to copy
    assert not copied_answer("42", ["Task: apples"], "no literal answers here")


def test_an_example_cell_is_recognised_up_to_whitespace():
    example = next(e for e in load_examples() if "power_mod" in e["steps"][0]["code"])
    code = example["steps"][1]["code"]
    assert copied_cell(code) and copied_cell("  " + code.replace("\n", "\n\n") + "\n")
    assert not copied_cell("result = pow(7, 223, 1000003)\nprint(result)")


def test_numbers_only_the_prompts_worked_examples_show_make_a_copied_cell():
    prompt = "Like this:\n```py\nx = 12345 * 678\nprint(x)\n```\nObservation:\n8369910\n\nTools:\nrepo_map(budget=1024)"
    assert copied_cell("final_answer(12345 * 678)", ["Task: What is 8 to the power 97?"], prompt)
    assert not copied_cell("final_answer(12345 * 678)", ["Task: What is 12345 times 678?"], prompt)
    assert not copied_cell("print(size / 1024)", ["Task: how big?"], prompt)  # a tool default, not an example
    assert not copied_cell("print(8 ** 97)", ["Task: What is 8 to the power 97?"], prompt)


def test_a_generic_example_cell_is_no_copy_but_one_on_the_examples_own_values_is():
    own = ["Task: The tests fail. Fix the bug in shop.py.", "Observation:\nFAILED test_shop.py::test_total_price"]
    assert not copied_cell('print(run(["python", "-m", "pytest", "-q"]))', own)
    assert copied_cell('print(find_symbol("load_config"))', own)
    assert not copied_cell('print(find_symbol("load_config"))', ["Task: where is load_config defined?"])
    assert copied_cell("print(power_mod(7, 222, 1000003))", ["Task: What is 7 to the power 5, modulo 13?"])

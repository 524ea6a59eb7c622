"""Answer checking against real math-verify: numbers, LaTeX, text, codebase answers, and inputs that must not raise."""

from __future__ import annotations

import threading

import pytest

from training.checking import check_answer, last_number, normalize_text, parse_number, split_items
from training.tasks import Task


def ref(answer, kind, **meta):
    return {"answer": answer, "kind": kind, "meta": meta}


@pytest.mark.parametrize(
    ("predicted", "gold", "expected"),
    [
        ("13138980", "13138980", True),
        ("The answer is 13138980.", "13138980", True),
        ("13138980.0", "13138980", True),
        ("1,234.50", "1234.5", True),
        ("$12", "12", True),
        ("It costs $12.", "12", True),
        ("1e6", "1000000", True),
        ("3/4", "0.75", True),
        ("\\frac{3}{4}", "0.75", True),
        ("-7", "-7", True),
        ("\u22127", "-7", True),  # Unicode minus sign
        ("50%", "50", True),
        ("1000000.4", "1000000", True),  # within the relative tolerance
        ("12874172.999999998", "12874173", True),  # a float artifact
        ("9202361", "9202335", False),  # a near miss on a GSM-Hard-sized answer
        ("230427", "230427.5714285714", False),  # rounded: the gold is what the problem's numbers give
        ("12.004", "12", True),  # within the absolute tolerance
        ("12.5", "12", False),
        ("first 5 then 7", "7", True),  # the last number counts
        ("first 7 then 5", "7", False),
        ("x-5", "-5", False),  # a hyphen after a letter is not a sign
        ("seven", "7", False),
        ("1/0", "0", False),
        ("", "7", False),
    ],
)
def test_numbers(predicted, gold, expected):
    assert check_answer(predicted, ref(gold, "number")) is expected


@pytest.mark.parametrize(
    ("predicted", "gold", "expected"),
    [
        ("0.5", "\\frac{1}{2}", True),
        ("\\frac12", "0.5", True),
        ("\\boxed{\\frac{1}{2}}", "\\frac12", True),
        ("The answer is $\\frac{1}{2}$.", "\\frac12", True),
        ("\\dfrac{3}{4}", "\\frac{3}{4}", True),
        ("(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
        ("(\\frac{\\pi}{2}, 3)", "\\left( 3, \\frac{\\pi}{2} \\right)", False),  # tuples keep their order
        ("[8,\\infty)\\cup(-\\infty,-8]", "(-\\infty,-8]\\cup [8,\\infty)", True),
        ("(-\\infty,-8)\\cup [8,\\infty)", "(-\\infty,-8]\\cup [8,\\infty)", False),  # open vs closed end
        ("-q + p", "p - q", True),
        ("x^2+2x", "2x+x^2", True),
        ("2x+x^2", "2", False),  # not read as its first number
        ("4.0", "4", True),
        ("5", "4", False),
        ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}", True),
        ("0.7071", "\\frac{\\sqrt{2}}{2}", False),
        ("90^\\circ", "90", True),
        ("10\\%", "10", True),
        ("x=3", "3", True),
        ("(C)", "\\text{(C)}", True),
        ("Monday", "\\text{Monday}", True),
        ("\\frac{", "3", False),
    ],
)
def test_math(predicted, gold, expected):
    assert check_answer(predicted, ref(gold, "math")) is expected


def test_math_works_outside_the_main_thread():
    """math-verify's timeout uses SIGALRM, which only the main thread may set: other threads run without it."""
    results = []
    worker = threading.Thread(target=lambda: results.append(check_answer("\\frac12", ref("0.5", "math"))))
    worker.start()
    worker.join(60)
    assert results == [True]


@pytest.mark.parametrize(
    ("predicted", "gold", "expected"),
    [
        ("President Richard Nixon", "President Richard Nixon", True),
        ("president richard nixon.", "President Richard Nixon", True),
        ("The Beatles", "Beatles", True),
        ("He was named after President Richard Nixon.", "President Richard Nixon", True),
        ("Nixon", "President Richard Nixon", False),  # part of the gold is not enough
        (
            "It might be Ford, Carter, Reagan, Bush, Clinton or President Richard Nixon",
            "President Richard Nixon",
            False,
        ),
        ("yes", "Yes", True),
        ("yes and no", "yes", False),
        ("no", "yes", False),
        ("Crambidae", "Crambidae", True),
        ("3,677 seated", "3,677 seated", True),
        ("Richard Nixonian era", "Richard Nixon", False),  # whole words only
    ],
)
def test_text(predicted, gold, expected):
    assert check_answer(predicted, ref(gold, "text")) is expected


@pytest.mark.parametrize(
    ("predicted", "gold", "meta", "expected"),
    [
        ("pkg/core.py:12", "pkg/core.py:12", {}, True),
        ("  `pkg/core.py:12` ", "pkg/core.py:12", {}, True),
        ("'pkg/core.py:12'", "pkg/core.py:12", {}, True),
        ("pkg/core.py:13", "pkg/core.py:12", {}, False),
        ("self, x, args", "self, x, args", {"list": True}, True),
        ("['self', 'x', 'args']", "self, x, args", {"list": True}, True),
        ("self,x,args", "self, x, args", {"list": True}, True),
        ("x, self, args", "self, x, args", {"list": True}, False),
        ("url: str, wait: bool = False, locate: bool = False", "url, wait, locate", {"list": True}, True),
        ("url, wait=False, locate=False", "url, wait, locate", {"list": True}, True),
        ("url: str, locate: bool, wait: bool", "url, wait, locate", {"list": True}, False),  # order still counts
        ("urls: str, wait, locate", "url, wait, locate", {"list": True}, False),  # a different name
        ("url, wait, locate, extra: int", "url, wait, locate", {"list": True}, False),
        ("b, a", "a, b", {"unordered": True}, True),
        ("['b', 'a', 'a']", "a, b", {"unordered": True}, True),
        ("b\na", "a, b", {"unordered": True}, True),
        ("a", "a, b", {"unordered": True}, False),
        ("a, b, c", "a, b", {"unordered": True}, False),
        ("(x, y=1)", "(x, y=1)", {}, True),
        ('["Parameter", "ABC", "object"]', "['Parameter', 'ABC', 'object']", {}, True),  # printed list, " quotes
        ('\'["A", "B"]\'', "['A', 'B']", {}, True),
        ('["Parameter", "object"]', "['Parameter', 'ABC', 'object']", {}, False),
        ("('a',)", "['a']", {}, False),  # a tuple prints differently from a list
        ("1", "1", {}, True),
        ("1.0", "1", {}, False),  # only containers: a printed 1.0 is not the output 1
    ],
)
def test_exact(predicted, gold, meta, expected):
    assert check_answer(predicted, ref(gold, "exact", **meta)) is expected


def test_a_location_in_a_sentence_answers_a_where_question():
    task = Task("t", "q", "pkg/core.py:12", "exact", "codebase:x", {})
    assert check_answer("It is defined in pkg/core.py:12.", task)
    assert check_answer("`pkg/core.py:12`", task)
    assert not check_answer("pkg/core.py:12 or pkg/other.py:3", task)
    assert not check_answer("pkg/core.py:120", task) and not check_answer("xpkg/core.py:12", task)


def test_paths_relative_to_the_workspace():
    task = Task("t", "q", "pkg/core.py:12", "exact", "codebase:x", {"workspace": "/work/repo"})
    assert check_answer("./pkg/core.py:12", task)
    assert check_answer("/work/repo/pkg/core.py:12", task)
    assert not check_answer("/elsewhere/pkg/core.py:12", task)


def test_reference_forms():
    """A Task, a reference dict with flat or nested meta, or a bare gold answer (kind inferred)."""
    task = Task(id="t", question="q", answer="a, b", kind="exact", source="s", meta={"unordered": True})
    assert check_answer("b, a", task)
    assert check_answer("b, a", {"answer": "a, b", "kind": "exact", "unordered": True})
    assert check_answer("b, a", task.reference())
    assert check_answer("The answer is 42", "42")
    assert check_answer("\\frac{1}{2}", "\\frac12")
    assert check_answer("richard nixon", "Richard Nixon")


@pytest.mark.parametrize("predicted", [None, "", "   ", ["a"], {"x": 1}, object()])
def test_odd_predictions_never_raise(predicted):
    assert check_answer(predicted, ref("42", "text")) is False
    assert check_answer(predicted, ref("\\frac12", "math")) is False
    assert check_answer(predicted, ref("b", "exact", unordered=True)) is False


@pytest.mark.parametrize("reference", [None, {}, {"kind": "math"}, {"answer": None, "kind": "number"}, object()])
def test_unusable_references_give_false(reference):
    assert check_answer("42", reference) is False


def test_non_string_predictions_are_read_as_their_text():
    assert check_answer(42, ref("42", "number")) is True
    assert check_answer(["b", "a"], ref("a, b", "exact", unordered=True)) is True


def test_helpers():
    assert last_number("from 1,000 to 2,500.5 dollars") == 2500.5
    assert last_number("no digits") is None
    assert parse_number("3/4") == 0.75
    assert parse_number("1/0") is None
    assert parse_number("abc") is None
    assert normalize_text("The  Beatles!") == "beatles"
    assert split_items("[a, b]") == ["a", "b"]
    assert split_items("('a', 'b')") == ["a", "b"]

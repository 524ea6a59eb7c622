"""Copied from the prompt instead of worked out. A small base model that cannot solve a task often answers with an
example's answer (12987, the first example's count, came up in 4 of 30 forced answers of Qwen2.5-Coder-0.5B), or
runs an example's code cell word for word and answers with what it printed.

Two checks, both against the prompt the model actually saw:
- a cell that is an example's cell (up to whitespace) and works on that example's own values (its numbers, file
  or symbol names) which this run never saw, or that computes with numbers that only the prompt's examples show
  (``12345 * 678``), gets a notice that its result is not about this task. A generic cell such as the example's
  ``run(["python", "-m", "pytest", "-q"])`` is the right move in any project, so it is not a copy;
- a final answer that the prompt gives as an answer (the examples' answers, literal ``final_answer(...)`` values)
  and that the run's own task and observations never produced (copied cells do not count), or that a copied cell
  computes, is refused.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from functools import lru_cache

COPIED_NOTE = (
    "Error: {answer} is the answer of an example in your instructions, not of this task. Work out this task's "
    "answer from its own numbers with code, print it, then call final_answer."
)
COPIED_FORCED = "The final answer {answer} was not accepted: it is an example's answer, not one found for this task."
COPIED_CELL = (
    "Note: this cell is copied from an example in your instructions, so its result is not about this task. "
    "Write code for this task's own numbers and names."
)
_FINAL_CALL = re.compile(r"final_answer\(([^()\n]*)\)")
_NUMBER = re.compile(r"(?<![\w.])\d{3,}(?![\w])")
_CODE_BLOCK = re.compile(r"```py\n(.*?)```", re.DOTALL)
_OBSERVATION = re.compile(r"Observation:\n(.*?)(?:\n\n|$)", re.DOTALL)


def prompt_answers(system_prompt: str) -> frozenset[str]:
    """What the prompt shows as answers: the examples' declared answers and every literal ``final_answer(...)``."""
    return _example_answers() | _literal_finals(system_prompt)


def copied_answer(answer: str, own_texts: Iterable[str], system_prompt: str = "") -> bool:
    """True when ``answer`` is one the prompt shows and none of ``own_texts`` (the task, the observations of cells
    that were not copied) contains it."""
    key = _key(answer)
    if key not in prompt_answers(system_prompt):
        return False
    pattern = re.compile(rf"(?<![\w.]){re.escape(key)}(?![\w]|\.\d)")
    return not any(pattern.search(_plain_numbers(text)) for text in own_texts)


def copied_cell(code: str, own_texts: Iterable[str] = (), system_prompt: str = "") -> bool:
    """True when ``code`` is one of the examples' cells (up to whitespace) using a value of its example that the
    run's own texts never showed, or computes with a number of three or more digits that the prompt's code or
    observations show and the run's own texts never did (12345 * 678)."""
    own = list(own_texts)
    specific = _example_cells().get(_squash(code))
    if specific and not all(_mentions("\n".join(own), value) for value in specific):
        return True
    return bool(borrowed_numbers(code, own, system_prompt))


def borrowed_numbers(code: str, own_texts: Iterable[str], system_prompt: str) -> set[str]:
    """The numbers in ``code`` that come from the prompt's worked examples, not from the task or the run."""
    found = set(_NUMBER.findall(code)) & _prompt_numbers(system_prompt)
    own = _plain_numbers("\n".join(own_texts))
    return {n for n in found if not re.search(rf"(?<![\w.]){n}(?![\w])", own)}


@lru_cache(maxsize=1)
def _example_answers() -> frozenset[str]:
    from tui_agent.agent.prompt import load_examples

    return frozenset(_key(str(example["answer"])) for example in load_examples() if example.get("answer"))


@lru_cache(maxsize=1)
def _example_cells() -> dict[str, frozenset[str]]:
    """Each example cell (squashed) with its specific values: the words and numbers of its literals that its
    example's task or earlier observations show. A cell without any is generic."""
    from tui_agent.agent.prompt import load_examples

    cells: dict[str, frozenset[str]] = {}
    for example in load_examples():
        context = example["task"]
        for step in example["steps"]:
            specific = {value for value in _literal_values(step["code"]) if _mentions(context, value)}
            cells[_squash(step["code"])] = frozenset(specific)
            context += "\n" + step.get("observation", "")
    return cells


def _literal_values(code: str) -> set[str]:
    """The words (three or more characters) and numbers in a cell's string and number literals."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return set()
    values = set()
    for node in ast.walk(tree):
        value = node.value if isinstance(node, ast.Constant) else None
        if isinstance(value, str):
            values |= set(re.findall(r"[\w./-]{3,}", value))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            values.add(str(value))
    return values


def _mentions(text: str, value: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(value)}(?![\w]|\.\w)", _plain_numbers(text)) is not None


@lru_cache(maxsize=8)
def _literal_finals(system_prompt: str) -> frozenset[str]:
    found = set()
    for argument in _FINAL_CALL.findall(system_prompt):
        try:
            found.add(_key(str(ast.literal_eval(argument.strip()))))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue  # a name (final_answer(count)) is no value to copy
    return frozenset(found)


@lru_cache(maxsize=8)
def _prompt_numbers(system_prompt: str) -> frozenset[str]:
    """Numbers of three or more digits in the prompt's code blocks and observations (not in its tool signatures,
    whose defaults such as 1024 are ordinary constants)."""
    shown = _CODE_BLOCK.findall(system_prompt) + _OBSERVATION.findall(system_prompt)
    return frozenset(n for text in shown for n in _NUMBER.findall(text))


def _squash(code: str) -> str:
    return " ".join(code.split())


def _key(answer: str) -> str:
    """An answer as compared: without quotes, whitespace, thousands separators or a ``.0`` ending."""
    text = answer.strip().strip("'\"").strip()
    if re.fullmatch(r"-?[\d,]+(\.0+)?", text):
        text = text.replace(",", "")
        text = re.sub(r"\.0+$", "", text)
    return text


def _plain_numbers(text: str) -> str:
    """Numbers written with thousands separators (12,987) read as plain ones, so the run's own text matches."""
    return re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)

"""Answers copied from the few-shot examples. A small base model that has not worked a task out often answers with
an example's answer instead (12987, the first example's count, came up in 4 of 30 forced answers of
Qwen2.5-Coder-0.5B). Such an answer is caught when it is an example's answer and appears nowhere in the run's own
task, code or observations: the model cannot have found it there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

COPIED_NOTE = (
    "Error: {answer} is the answer of an example in your instructions, not of this task. Work out this task's "
    "answer from its own numbers with code, print it, then call final_answer."
)
COPIED_FORCED = "The final answer {answer} was not accepted: it is an example's answer, not one found for this task."


def copied_answer(answer: str, own_texts: Iterable[str]) -> bool:
    """True when ``answer`` is a few-shot example's answer that none of ``own_texts`` (the run's turns) contains."""
    key = _key(answer)
    if key not in _example_answers():
        return False
    pattern = re.compile(rf"(?<![\w.]){re.escape(key)}(?![\w]|\.\d)")
    return not any(pattern.search(_plain_numbers(text)) for text in own_texts)


@lru_cache(maxsize=1)
def _example_answers() -> frozenset[str]:
    from tui_agent.agent.prompt import load_examples

    return frozenset(_key(str(example["answer"])) for example in load_examples() if example.get("answer"))


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

"""Context-window management: shorten old observations, then drop old exchanges, else fail loudly."""

from __future__ import annotations

import pytest

from tui_agent.agent.history import DROPPED_NOTE, ContextOverflow, TokenCounter, fit_history, shorten

counter = TokenCounter(lambda text: len(text.split()))


def _conversation(turns: int, obs_words: int) -> list[dict]:
    messages = [{"role": "system", "content": "system prompt here"}, {"role": "user", "content": "Task: one"}]
    for i in range(turns):
        messages.append({"role": "assistant", "content": f"Thought: step {i}\n```py\nprint({i})\n```<end_code>"})
        messages.append({"role": "user", "content": "Observation:\n" + " ".join(["word"] * obs_words) + f" end{i}"})
    return messages


def test_fits_unchanged():
    messages = _conversation(2, 5)
    assert fit_history(messages, budget=10_000, counter=counter) == messages


def test_old_observations_shortened_first_and_last_kept():
    messages = _conversation(4, 400)
    total = counter.total(messages)
    fitted = fit_history(messages, budget=total - 300, counter=counter, keep_from=1)
    assert counter.total(fitted) <= total - 300
    assert "shortened" in fitted[3]["content"]
    assert fitted[-1] == messages[-1]  # the latest observation is intact
    assert len(fitted) == len(messages)  # nothing dropped
    assert messages[3]["content"].endswith("end0")  # the input was not mutated


def test_drops_earlier_tasks_before_current_one():
    old = _conversation(3, 50)
    current = [
        {"role": "user", "content": "Task: two"},
        {"role": "assistant", "content": "Thought: x\n```py\nprint(1)\n```<end_code>"},
    ]
    messages = old + current
    keep_from = len(old)
    fitted = fit_history(messages, budget=45, counter=counter, keep_from=keep_from)
    assert fitted[0]["role"] == "system"
    assert fitted[-2]["content"].endswith("Task: two")
    assert DROPPED_NOTE in fitted[-2]["content"]
    assert [m["role"] for m in fitted] == ["system", "user", "assistant"]


def test_overflow_is_loud():
    messages = [{"role": "system", "content": "word " * 100}, {"role": "user", "content": "Task: x"}]
    with pytest.raises(ContextOverflow, match="tokens but only 50 fit"):
        fit_history(messages, budget=50, counter=counter, keep_from=1)


def test_shorten_keeps_head_and_tail():
    text = "a" * 500 + "b" * 500
    short = shorten(text, 300)
    assert short.startswith("a") and short.endswith("b") and "shortened" in short
    assert shorten("short", 300) == "short"

"""Instruct behaviour through the ChatML renderer on the real Qwen2.5-Coder-0.5B-Instruct GGUF."""

from __future__ import annotations

import pytest

from tui_agent.models.chat_formats import get_format
from tui_agent.models.llm import LlamaChatModel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def qwen(qwen05_gguf):
    loaded = LlamaChatModel(qwen05_gguf, get_format("chatml"), name="qwen", n_ctx=1024)
    yield loaded
    loaded.close()


def test_answers_a_simple_question_and_stops_at_end_of_turn(qwen):
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 17 + 25? Reply with the number only."},
    ]
    text = "".join(qwen.stream_chat(messages, max_tokens=16))
    assert text.strip() == "42"
    assert qwen.last_usage.stop_reason == "stop"
    assert "<|im_end|>" not in text


def test_continues_a_started_assistant_turn(qwen):
    messages = [
        {"role": "user", "content": "Which city is the capital of France?"},
        {"role": "assistant", "content": "Thought: The capital of France is"},
    ]
    text = "".join(qwen.stream_chat(messages, max_tokens=8))
    assert "Paris" in text
    assert not text.startswith("Thought")  # continued, not restarted

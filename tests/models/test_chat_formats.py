"""Prompt rendering: exact strings, open assistant turns, and the prefix property that KV reuse depends on."""

from __future__ import annotations

import pytest

from tui_agent.models.base import ModelError
from tui_agent.models.chat_formats import FORMATS, detect_format, get_format, render_chatml, render_gemma

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Observation: 3"},
]


def test_chatml_exact():
    assert render_chatml(CONVERSATION) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nObservation: 3<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_gemma_folds_system_into_first_user_turn():
    assert render_gemma(CONVERSATION) == (
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\nObservation: 3<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


@pytest.mark.parametrize("render", [render_chatml, render_gemma])
def test_final_assistant_turn_stays_open_for_continuation(render):
    prompt = render([*CONVERSATION, {"role": "assistant", "content": "Thought: the answer is"}])
    assert prompt.endswith("\nThought: the answer is")


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_growing_conversation_renders_as_a_prefix_extension(name):
    """Rendering n turns, then the reply and a new observation, only appends text: the KV cache stays valid."""
    fmt = FORMATS[name]
    history = list(CONVERSATION)
    for step in range(3):
        before = fmt.render(history)
        reply = f"Thought: step {step}\n```py\nprint({step})\n```<end_code>"
        history += [{"role": "assistant", "content": reply}, {"role": "user", "content": f"Observation: {step}"}]
        after = fmt.render(history)
        assert after.startswith(before + reply + fmt.end_of_turn)


def test_end_of_turn_is_always_a_stop():
    assert get_format("chatml").stops[0] == "<|im_end|>"
    assert get_format("gemma").stops[0] == "<end_of_turn>"


def test_bad_input_is_a_model_error():
    with pytest.raises(ModelError, match="empty conversation"):
        render_chatml([])
    with pytest.raises(ModelError, match="Unknown chat role 'tool'"):
        render_gemma([{"role": "tool", "content": "x"}])
    with pytest.raises(ModelError, match="Unknown chat format 'llama-2'"):
        get_format("llama-2")


def test_detect_format_from_gguf_metadata():
    assert detect_format({"tokenizer.chat_template": "{{'<|im_start|>' + role}}"}).name == "chatml"
    assert detect_format({"general.architecture": "gemma3"}).name == "gemma"
    assert detect_format({"general.architecture": "qwen2"}).name == "chatml"
    with pytest.raises(ModelError, match="chat_format"):
        detect_format({"general.architecture": "llama"})

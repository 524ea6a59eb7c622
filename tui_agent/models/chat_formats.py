"""How a conversation becomes one prompt string, per model family.

The runtime sends a single string to llama.cpp's completion API instead of using its chat handlers, because a
string that only ever grows at the end lets llama.cpp reuse the KV cache of everything already evaluated. The
renderers are deterministic and byte-stable: rendering turns 1..n yields a prefix of rendering turns 1..n+1.

A final assistant message is left open (no end-of-turn), so generation continues it: the training pipeline's
first-thought prefix and the agent's forced ``Thought:`` opening both rely on that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tui_agent.models.base import Message, ModelError


@dataclass(frozen=True)
class ChatFormat:
    """A renderer plus the text that ends a turn (always added to the stop sequences)."""

    name: str
    render: Callable[[Sequence[Message]], str]
    end_of_turn: str
    extra_stops: tuple[str, ...] = ()

    @property
    def stops(self) -> tuple[str, ...]:
        return (self.end_of_turn, *self.extra_stops)


def _check(messages: Sequence[Message]) -> None:
    if not messages:
        raise ModelError("Cannot generate from an empty conversation.")
    for message in messages:
        if message.get("role") not in ("system", "user", "assistant"):
            raise ModelError(f"Unknown chat role {message.get('role')!r} (expected system, user or assistant).")


def render_chatml(messages: Sequence[Message]) -> str:
    """Qwen's ChatML: ``<|im_start|>role\\ncontent<|im_end|>\\n`` per turn, then an open assistant turn."""
    _check(messages)
    parts = []
    last = len(messages) - 1
    for i, message in enumerate(messages):
        opened = f"<|im_start|>{message['role']}\n{message['content']}"
        parts.append(opened if i == last and message["role"] == "assistant" else opened + "<|im_end|>\n")
    if messages[-1]["role"] != "assistant":
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)


def render_gemma(messages: Sequence[Message]) -> str:
    """Gemma 3 turns (``user``/``model``); system text is folded into the next user turn, as Gemma's template does.

    The tokenizer adds ``<bos>`` itself, so it is not part of the string.
    """
    _check(messages)
    parts: list[str] = []
    pending_system: list[str] = []
    last = len(messages) - 1
    for i, message in enumerate(messages):
        role, content = message["role"], message["content"]
        if role == "system":
            pending_system.append(content)
            continue
        if role == "user" and pending_system:
            content = "\n\n".join([*pending_system, content])
            pending_system = []
        elif role == "assistant" and pending_system:
            parts.append(f"<start_of_turn>user\n{chr(10).join(pending_system)}<end_of_turn>\n")
            pending_system = []
        turn = "model" if role == "assistant" else "user"
        opened = f"<start_of_turn>{turn}\n{content}"
        parts.append(opened if i == last and role == "assistant" else opened + "<end_of_turn>\n")
    if pending_system:
        parts.append(f"<start_of_turn>user\n{chr(10).join(pending_system)}<end_of_turn>\n")
    if messages[-1]["role"] != "assistant":
        parts.append("<start_of_turn>model\n")
    return "".join(parts)


FORMATS: dict[str, ChatFormat] = {
    "chatml": ChatFormat("chatml", render_chatml, "<|im_end|>", ("<|im_start|>",)),
    "gemma": ChatFormat("gemma", render_gemma, "<end_of_turn>", ("<start_of_turn>",)),
}


def get_format(name: str) -> ChatFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ModelError(f"Unknown chat format {name!r} (known: {', '.join(FORMATS)}).") from None


def detect_format(metadata: dict[str, str]) -> ChatFormat:
    """Pick a format for a bare GGUF file from its metadata (chat template, else architecture)."""
    template = metadata.get("tokenizer.chat_template", "")
    architecture = metadata.get("general.architecture", "")
    if "<|im_start|>" in template:
        return FORMATS["chatml"]
    if "<start_of_turn>" in template or architecture.startswith("gemma"):
        return FORMATS["gemma"]
    if architecture.startswith("qwen"):
        return FORMATS["chatml"]
    known = ", ".join(FORMATS)
    raise ModelError(
        f"Cannot tell the chat format of this {architecture or 'unknown'} model; add it to models.toml with "
        f"chat_format = one of {known}."
    )

"""Conversation -> training example: the runtime's exact prompt text, tokenized as llama.cpp will see it.

A student only imitates well what it is trained on in the very context it later runs in. So the text comes from the
runtime's own renderer (``tui_agent.models.chat_formats``), the BOS token follows llama.cpp's rule for the model, and
every assistant turn's prompt is checked to be a token-for-token prefix of the whole example: the tokens before a
turn are exactly the prompt llama.cpp evaluates before generating it. Labels are -100 everywhere except the
assistant turns' tokens and the end-of-turn token after each (the student learns to stop).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_agent.models.chat_formats import ChatFormat, detect_format

IGNORE = -100


class RenderError(ValueError):
    """A conversation or tokenizer that cannot give a faithful training example."""


@dataclass(frozen=True)
class StudentRenderer:
    """Renders conversations for one student: its chat format, its HF tokenizer and llama.cpp's BOS rule."""

    tokenizer: Any
    chat_format: ChatFormat
    add_bos: bool

    @property
    def bos_id(self) -> int | None:
        return self.tokenizer.bos_token_id if self.add_bos else None

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` as llama.cpp's ``tokenize(add_bos=True, special=True)`` gives them."""
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return [self.tokenizer.bos_token_id, *ids] if self.add_bos else ids

    def example(
        self, messages: Sequence[dict[str, str]], *, system_prompt: str | None = None, prompt_style: str = "full"
    ) -> dict[str, list[int]]:
        """One training example: ``input_ids`` and ``labels`` (-100 outside the assistant turns).

        Messages after the last assistant turn teach nothing and are left out; the last assistant turn is closed
        with the format's end-of-turn, written by the renderer itself.
        """
        messages = canonical_steps(_with_system(messages, system_prompt, prompt_style))
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        if last is None:
            raise RenderError("The conversation has no assistant turn to learn from.")
        messages = messages[: last + 1]
        render = self.chat_format.render
        end = self.chat_format.end_of_turn
        open_text = render(messages)
        closed = render([*messages, {"role": "user", "content": "."}])
        if not closed.startswith(open_text + end):
            raise RenderError(f"The {self.chat_format.name} renderer does not close an assistant turn with {end!r}.")
        input_ids = self.tokenize(open_text + end)
        end_ids = self.tokenize(end)[1 if self.add_bos else 0 :]
        labels = [IGNORE] * len(input_ids)
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            start = self._prefix_length(render(messages[:i]), input_ids, f"the prompt before assistant turn {i}")
            stop = self._prefix_length(render(messages[: i + 1]), input_ids, f"assistant turn {i}")
            if input_ids[stop : stop + len(end_ids)] != end_ids:
                raise RenderError(f"Assistant turn {i} is not followed by the end-of-turn tokens of {end!r}.")
            stop += len(end_ids)
            labels[start:stop] = input_ids[start:stop]
        return {"input_ids": input_ids, "labels": labels}

    def _prefix_length(self, text: str, full: list[int], what: str) -> int:
        ids = self.tokenize(text)
        if full[: len(ids)] != ids:
            at = next((k for k, (a, b) in enumerate(zip(ids, full, strict=False)) if a != b), len(full))
            raise RenderError(
                f"The tokenizer breaks the prefix property at {what}: the prompt's tokens differ from the "
                f"conversation's at position {at} ({self.tokenizer.decode(ids[at : at + 3])!r} vs "
                f"{self.tokenizer.decode(full[at : at + 3])!r}), so training would not match inference."
            )
        return len(ids)


@dataclass
class RenderedSet:
    """Examples ready for training, and how many conversations were left out and why."""

    examples: list[dict[str, list[int]]] = field(default_factory=list)
    too_long: int = 0
    no_assistant: int = 0

    @property
    def tokens(self) -> int:
        return sum(len(e["input_ids"]) for e in self.examples)

    @property
    def label_tokens(self) -> int:
        return sum(sum(1 for t in e["labels"] if t != IGNORE) for e in self.examples)


def render_conversations(
    conversations: Iterable[Any],
    renderer: StudentRenderer,
    *,
    max_length: int | None = None,
    system_prompt: str | None = None,
    prompt_style: str = "full",
) -> RenderedSet:
    """Render many conversations (RunRecords, dicts with ``messages`` or message lists).

    An example longer than ``max_length`` tokens is dropped whole (and counted): cutting it would train on half an
    assistant turn, which teaches the student to stop mid-step.
    """
    result = RenderedSet()
    for conversation in conversations:
        messages = _messages_of(conversation)
        if not any(m.get("role") == "assistant" for m in messages):
            result.no_assistant += 1
            continue
        example = renderer.example(messages, system_prompt=system_prompt, prompt_style=prompt_style)
        if max_length is not None and len(example["input_ids"]) > max_length:
            result.too_long += 1
            continue
        result.examples.append(example)
    return result


def format_for(tokenizer: Any, model_type: str) -> ChatFormat:
    """The runtime's chat format for a student, chosen as for a GGUF file (chat template, else architecture)."""
    template = getattr(tokenizer, "chat_template", None)
    template = template if isinstance(template, str) else ""
    return detect_format({"tokenizer.chat_template": template, "general.architecture": model_type or ""})


def gguf_adds_bos(path: Path) -> bool:
    """Whether llama.cpp puts BOS in front of a prompt for this GGUF (its vocabulary decides, not the HF tokenizer)."""
    with _vocab(path) as llm:
        return len(llm.tokenize(b"a", add_bos=True, special=True)) > len(llm.tokenize(b"a", add_bos=False))


def gguf_architecture(path: Path) -> str:
    """``general.architecture`` of a GGUF, read in a second by llama.cpp (transformers parses the whole vocab)."""
    with _vocab(path) as llm:
        return llm.metadata.get("general.architecture", "")


@contextmanager
def _vocab(path: Path) -> Iterator[Any]:
    import llama_cpp

    from tui_agent.models.llm import quiet_stderr

    with quiet_stderr():
        llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    try:
        yield llm
    finally:
        llm.close()


def tokenizer_adds_bos(tokenizer: Any) -> bool:
    """For an HF checkpoint: its tokenizer's own special-token rule, which GGUF conversion copies."""
    bos = tokenizer.bos_token_id
    return bos is not None and list(tokenizer("a")["input_ids"][:1]) == [bos]


def make_renderer(tokenizer: Any, model_type: str, *, gguf: Path | None = None) -> StudentRenderer:
    """The renderer for a student; ``gguf`` is its file when it is one (llama.cpp then decides BOS)."""
    add_bos = gguf_adds_bos(gguf) if gguf is not None else tokenizer_adds_bos(tokenizer)
    if add_bos and tokenizer.bos_token_id is None:
        raise RenderError("The model wants a BOS token but its tokenizer has none.")
    return StudentRenderer(tokenizer, format_for(tokenizer, model_type), add_bos)


def _with_system(
    messages: Sequence[dict[str, str]], system_prompt: str | None, prompt_style: str = "full"
) -> list[dict[str, str]]:
    """The conversation under the student's system prompt: a given text, or the trajectory's own prompt rebuilt
    in the student's style by today's prompt code (``compact``: without the few-shot examples), exactly as the
    runtime will prompt the student, even for trajectories recorded under older tool docs."""
    from tui_agent.agent.prompt import PROMPT_STYLES, rebuild_system_prompt

    if prompt_style not in PROMPT_STYLES:
        raise RenderError(f"Unknown prompt style {prompt_style!r} (expected one of {', '.join(PROMPT_STYLES)}).")
    messages = [{"role": m["role"], "content": m["content"]} for m in messages]
    if system_prompt is None:
        if messages and messages[0]["role"] == "system":
            messages[0]["content"] = rebuild_system_prompt(messages[0]["content"], prompt_style)
        return messages
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": system_prompt}, *messages[1:]]
    return [{"role": "system", "content": system_prompt}, *messages]


def canonical_steps(messages: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """Assistant turns in the one format the student should write: ``Thought: ...``, a fenced block, ``<end_code>``.

    The teacher closed more than half of its final steps as ``final_answer(42)<end_code>``, without the fence, which
    the parser accepts; a 270M student trained on both forms put ``<end_code>`` before the closing parenthesis of
    long numbers. The thought and code are kept as parsed; a turn the parser cannot read stays as it was."""
    from tui_agent.agent.parse import format_step, parse_step

    out = []
    for message in messages:
        if message["role"] == "assistant":
            step = parse_step(message["content"])
            if step.ok:
                message = {"role": "assistant", "content": format_step(step.thought, step.code)}
        out.append(dict(message))
    return out


def _messages_of(conversation: Any) -> list[dict[str, str]]:
    if isinstance(conversation, dict):
        messages = conversation.get("messages")
    elif isinstance(conversation, list):
        messages = conversation
    else:
        messages = getattr(conversation, "messages", None)
    if not isinstance(messages, list):
        raise RenderError(f"Not a conversation: {type(conversation).__name__} has no list of messages.")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise RenderError(f"Not a chat message: {message!r:.80}")
        if not isinstance(message.get("content"), str):
            raise RenderError(f"A {message['role']} message has no text content.")
    return messages

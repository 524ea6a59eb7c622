"""One scripted chat model for every fast test of the loop, `ask` and the TUI (real models are tested elsewhere)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

from tui_agent.models.base import Message, Usage


def step(thought: str, code: str) -> str:
    """A well-formed CodeAct step."""
    return f"Thought: {thought}\n```py\n{code}\n```<end_code>"


class ScriptedModel:
    """Streams each scripted reply in small pieces, honouring stops and cancel.

    ``hold`` makes it wait mid-reply until cancelled (to test interrupts); ``flat_count`` counts every text as one
    token, so figures shown on screen do not move when prompts change; ``when_empty`` is the reply once the script
    has run out.
    """

    name = "scripted"

    def __init__(
        self,
        replies: Sequence[str],
        *,
        context_length: int = 32768,
        on_generate: Callable[[int], None] | None = None,
        hold: bool = False,
        flat_count: bool = False,
        when_empty: str = "Thought: nothing left to say.",
        piece: int = 7,
        seconds: tuple[float, float] = (0.01, 0.02),
    ) -> None:
        self.replies = list(replies)
        self.calls: list[list[Message]] = []
        self.seeds: list[int | None] = []
        self.temperatures: list[float] = []
        self.on_generate = on_generate
        self.hold = hold
        self.flat_count = flat_count
        self.when_empty = when_empty
        self.piece = piece
        self.seconds = seconds
        self.streaming = threading.Event()
        self._context_length = context_length
        self._usage = Usage()

    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def last_usage(self) -> Usage:
        return self._usage

    def count_tokens(self, text: str) -> int:
        return 1 if self.flat_count else len(text.split())

    def stream_chat(
        self,
        messages: Sequence[Message],
        *,
        stop: Sequence[str] = (),
        max_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = None,
        grammar: str | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        self.calls.append([dict(m) for m in messages])
        self.seeds.append(seed)
        self.temperatures.append(temperature)
        if self.on_generate is not None:
            self.on_generate(len(self.calls))
        text = self.replies.pop(0) if self.replies else self.when_empty
        for s in stop:
            if s in text:
                text = text[: text.index(s)]
        prompt = sum(self.count_tokens(m["content"]) for m in messages)
        first, total = self.seconds
        pieces = [text[i : i + self.piece] for i in range(0, len(text), self.piece)]
        for sent, chunk in enumerate(pieces):
            if cancel is not None and cancel.is_set():
                self._usage = Usage(prompt, prompt, sent, first, first, "cancelled")
                return
            yield chunk
            if self.hold and sent == 1:
                self.streaming.set()
                while cancel is not None and not cancel.is_set():
                    time.sleep(0.02)
        self._usage = Usage(prompt, prompt, len(pieces), first, total, "stop")

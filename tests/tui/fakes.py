"""A scripted chat model for the session's fast tests (the kernel and the agent loop stay real)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

from tui_agent.models.base import Message, Usage


def step(thought: str, code: str) -> str:
    """A well-formed CodeAct step."""
    return f"Thought: {thought}\n```py\n{code}\n```<end_code>"


class ScriptedModel:
    """Streams each scripted reply in small pieces; ``hold`` makes it wait (until cancelled) mid-reply."""

    name = "scripted"

    def __init__(self, replies: Sequence[str], *, hold: bool = False, flat_count: bool = False) -> None:
        self.replies = list(replies)
        self.flat_count = flat_count  # every text counts 1 token: figures that do not move when prompts change
        self.calls: list[list[Message]] = []
        self.hold = hold
        self.streaming = threading.Event()
        self._usage = Usage()

    @property
    def context_length(self) -> int:
        return 4096

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
        text = self.replies.pop(0) if self.replies else step("Nothing left.", "final_answer('done')")
        for s in stop:
            if s in text:
                text = text[: text.index(s)]
        prompt = sum(self.count_tokens(m["content"]) for m in messages)
        pieces = [text[i : i + 6] for i in range(0, len(text), 6)]
        for n, piece in enumerate(pieces, 1):
            if cancel is not None and cancel.is_set():
                self._usage = Usage(prompt, prompt, n, 0.5, 0.5, "cancelled")
                return
            yield piece
            if self.hold and n == 2:
                self.streaming.set()
                while cancel is not None and not cancel.is_set():
                    time.sleep(0.02)
        self._usage = Usage(prompt, prompt, len(pieces), 0.5, 0.5, "stop")

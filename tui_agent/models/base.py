"""What the agent loop needs from a model, whatever runs it (llama.cpp here, an HTTP server for teachers).

Kept free of heavy imports so the loop, the CLI and tests can use these types without loading llama.cpp.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict, runtime_checkable


class Message(TypedDict):
    """One chat turn: role is ``system``, ``user`` or ``assistant``."""

    role: str
    content: str


@dataclass
class Usage:
    """Token counts and speed of one generation.

    ``prompt_tokens`` is the whole prompt; ``prompt_eval_tokens`` the part actually evaluated (the rest came from
    the reused KV prefix).
    """

    prompt_tokens: int = 0
    prompt_eval_tokens: int = 0
    completion_tokens: int = 0
    prompt_seconds: float = 0.0
    generation_seconds: float = 0.0
    stop_reason: str = ""  # "stop" | "length" | "cancelled"

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.generation_seconds if self.generation_seconds > 0 else 0.0

    @property
    def seconds(self) -> float:
        return self.prompt_seconds + self.generation_seconds


class ModelError(Exception):
    """A model that cannot be found, downloaded or loaded; the message is a one-line explanation for users."""


@runtime_checkable
class ChatModel(Protocol):
    """A chat model that streams text. Implementations: ``models.llm.LlamaChatModel``, test doubles."""

    name: str

    @property
    def context_length(self) -> int: ...

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
        """Yield text pieces as they are generated; stop sequences are not included in the output.

        Setting ``cancel`` ends the stream early (stop_reason "cancelled"). ``last_usage`` is set when it ends.
        """
        ...

    @property
    def last_usage(self) -> Usage: ...

    def count_tokens(self, text: str) -> int: ...

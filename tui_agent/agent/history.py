"""Keep the conversation inside the model's context window, loudly.

Old observations are shortened first (head and tail kept), then the oldest finished exchanges are dropped; if the
system prompt, the current task and the latest step still do not fit, ``ContextOverflow`` says so rather than letting
llama.cpp truncate silently.
"""

from __future__ import annotations

from collections.abc import Callable

from tui_agent.models.base import Message

MESSAGE_OVERHEAD = 8  # role markers and separators the chat template adds around each message
OBS_PREFIX = "Observation:"
SHORT_MARK = "\n[... shortened to fit the context window ...]\n"
DROPPED_NOTE = "[Earlier steps were removed to fit the context window.]"


class ContextOverflow(Exception):
    """The conversation cannot fit the context window even after shortening; the message says by how much."""


class TokenCounter:
    """Counts tokens of messages with a cache, since the same history is measured every step."""

    def __init__(self, count: Callable[[str], int]):
        self._count = count
        self._cache: dict[str, int] = {}

    def message(self, message: Message) -> int:
        text = message["content"]
        if text not in self._cache:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[text] = self._count(text)
        return self._cache[text] + MESSAGE_OVERHEAD

    def total(self, messages: list[Message]) -> int:
        return sum(self.message(m) for m in messages)


def shorten(text: str, max_chars: int) -> str:
    """Keep the head and tail of ``text`` with a marker between them."""
    if len(text) <= max_chars:
        return text
    head = max_chars * 2 // 3
    tail = max_chars - head
    return text[:head].rstrip() + SHORT_MARK + text[-tail:].lstrip()


def _is_observation(message: Message) -> bool:
    return message["role"] == "user" and message["content"].startswith(OBS_PREFIX)


def fit_history(
    messages: list[Message], *, budget: int, counter: TokenCounter, keep_from: int | None = None
) -> list[Message]:
    """Return a copy of ``messages`` whose token count is at most ``budget``.

    ``keep_from`` is the index of the current task's message: it and everything after it are never dropped (only
    their observations shortened, the latest one last of all).
    """
    messages = [dict(m) for m in messages]  # type: ignore[misc]
    if counter.total(messages) <= budget:
        return messages
    keep_from = len(messages) - 1 if keep_from is None else keep_from
    last = len(messages) - 1
    # 1. shorten old observations, oldest first, in two passes: moderately, then to a stub.
    for max_chars in (600, 120):
        for message in messages[:last]:
            if _is_observation(message) and len(message["content"]) > max_chars:
                message["content"] = shorten(message["content"], max_chars)
                if counter.total(messages) <= budget:
                    return messages
    # 2. drop the oldest exchanges (user + assistant pairs) before the current task.
    dropped = False
    while counter.total(messages) > budget and keep_from >= 2:
        del messages[1]
        keep_from -= 1
        dropped = True
    while dropped and keep_from >= 2 and messages[1]["role"] != "user":
        del messages[1]  # the conversation after the system prompt must start with a user turn
        keep_from -= 1
    if dropped and messages[1]["role"] == "user":
        messages[1]["content"] = DROPPED_NOTE + "\n\n" + messages[1]["content"]
    # 3. shorten the current task's own observations to stubs, then the latest observation itself.
    last = len(messages) - 1
    for i in range(keep_from + 1, last):
        if counter.total(messages) <= budget:
            break
        if _is_observation(messages[i]):
            messages[i]["content"] = OBS_PREFIX + " (shortened to fit the context window)"
    if _is_observation(messages[last]):
        for max_chars in (1500, 400):
            if counter.total(messages) <= budget:
                break
            messages[last]["content"] = shorten(messages[last]["content"], max_chars)
    total = counter.total(messages)
    if total > budget:
        raise ContextOverflow(
            f"the conversation needs {total} tokens but only {budget} fit in the model's context window; "
            "start a new session or use a model with a larger context"
        )
    return messages

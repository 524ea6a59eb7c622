"""Teachers: any OpenAI-compatible endpoint (vLLM, llama.cpp's server, hosted APIs) behind the agent's ChatModel
protocol, or a local GGUF through the app's own runtime; plus the first-thought prefix (FTP).

With a known chat format the endpoint's completions API gets the very prompt string the runtime would render, so
the teacher sees exactly what a student will see, and an assistant turn started for it (the agent's "Thought:",
the first-thought prefix) is continued rather than closed. Without one, the chat API is used and a started turn is
continued with vLLM's ``continue_final_message``.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tui_agent.models.base import Message, ModelError, Usage

FIRST_THOUGHT_PROMPT = (Path(__file__).with_name("prompts") / "first_thought.md").read_text(encoding="utf-8")
CHARS_PER_TOKEN = 3  # a cautious estimate for fitting history: endpoints do not all offer a tokenizer


class TeacherError(ModelError):
    """The teacher endpoint cannot be used (unreachable, unknown model, refused key); one line for the user."""


class OpenAIChatModel:
    """A model behind an OpenAI-compatible HTTP endpoint, streaming like the local runtime.

    Safe to share between threads (N concurrent tasks): each thread sees its own ``last_usage``.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        chat_format: str | None = None,
        context_length: int = 32768,
        timeout: float = 600.0,
    ):
        import openai

        from tui_agent.models.chat_formats import get_format

        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = model
        self.chat_format = get_format(chat_format) if chat_format else None
        self._context_length = context_length
        self._client = openai.OpenAI(base_url=self.base_url, api_key=api_key or "none", timeout=timeout, max_retries=2)
        self._local = threading.local()

    # -- protocol --------------------------------------------------------------------------------------------
    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def last_usage(self) -> Usage:
        return getattr(self._local, "usage", Usage())

    def count_tokens(self, text: str) -> int:
        return len(text) // CHARS_PER_TOKEN + 1

    def describe(self) -> dict[str, object]:
        return {
            "model_name": self.model,
            "endpoint": self.base_url,
            "api": "completions" if self.chat_format else "chat",
            "chat_format": self.chat_format.name if self.chat_format else None,
        }

    def check(self) -> None:
        """Fail fast, in one line, when the endpoint is unreachable or does not serve this model."""
        import openai

        try:
            served = [m.id for m in self._client.models.list()]
        except openai.APIConnectionError:
            raise self._unreachable() from None
        except openai.AuthenticationError:
            raise TeacherError(f"The teacher at {self.base_url} refused the API key (set --api-key).") from None
        except openai.APIError as exc:
            raise TeacherError(f"The teacher at {self.base_url} answered with an error: {_short(exc)}") from None
        if served and self.model not in served and len(served) > 1:
            raise TeacherError(f"The teacher at {self.base_url} does not serve {self.model!r} (it serves: {served}).")

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
        """Stream the reply to ``messages``; a final assistant message is continued, not answered."""
        if grammar:
            raise ModelError("Grammars are not supported by OpenAI-compatible teachers.")
        return self._stream(list(messages), list(stop), max_tokens, temperature, seed, cancel)

    # -- internals -------------------------------------------------------------------------------------------
    def _unreachable(self) -> TeacherError:
        return TeacherError(f"Cannot reach the teacher at {self.base_url}: is the server running?")

    def _request(self, messages: list[Message], stop: list[str], max_tokens: int, temperature: float, seed) -> Any:
        common: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if seed is not None:
            common["seed"] = seed
        if self.chat_format is not None:
            stops = list(dict.fromkeys([*self.chat_format.stops, *stop]))
            return self._client.completions.create(prompt=self.chat_format.render(messages), stop=stops, **common)
        extra = {}
        if messages and messages[-1]["role"] == "assistant":
            extra = {"continue_final_message": True, "add_generation_prompt": False}
        return self._client.chat.completions.create(
            messages=messages, stop=stop[:4] or None, extra_body=extra or None, **common
        )

    def _stream(self, messages, stop, max_tokens, temperature, seed, cancel) -> Iterator[str]:
        import openai

        usage = Usage(stop_reason="cancelled")
        self._local.usage = usage
        start = time.perf_counter()
        first: float | None = None
        pieces: list[str] = []
        try:
            stream = self._request(messages, stop, max_tokens, temperature, seed)
        except openai.APIConnectionError:
            raise self._unreachable() from None
        except openai.APIError as exc:
            raise TeacherError(f"The teacher at {self.base_url} answered with an error: {_short(exc)}") from None
        reason = "cancelled"
        try:
            for chunk in stream:
                if chunk.usage is not None:
                    usage.prompt_tokens = chunk.usage.prompt_tokens or 0
                    usage.completion_tokens = chunk.usage.completion_tokens or 0
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                text = choice.text if self.chat_format is not None else (choice.delta.content or "")
                if choice.finish_reason:
                    reason = choice.finish_reason
                if text:
                    first = first or time.perf_counter()
                    pieces.append(text)
                    yield text
                if cancel is not None and cancel.is_set():
                    reason = "cancelled"
                    break
        except openai.APIConnectionError:
            raise TeacherError(f"Lost the connection to the teacher at {self.base_url}.") from None
        finally:
            stream.close()
            end = time.perf_counter()
            first = first or end
            usage.prompt_seconds, usage.generation_seconds = first - start, end - first
            usage.stop_reason = reason if reason in ("stop", "length", "cancelled") else "stop"
            if not usage.completion_tokens:  # a server that does not report usage while streaming: estimate
                usage.completion_tokens = self.count_tokens("".join(pieces))
            if not usage.prompt_tokens:
                usage.prompt_tokens = sum(self.count_tokens(m["content"]) for m in messages)
            usage.prompt_eval_tokens = usage.prompt_tokens


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def open_teacher(
    model: str,
    *,
    endpoint: str | None = None,
    api_key: str | None = None,
    chat_format: str | None = None,
    n_ctx: int | None = None,
    n_threads: int | None = None,
    lora: str | None = None,
) -> Any:
    """A teacher: ``endpoint`` given, the served ``model`` over HTTP (checked now); otherwise a registry name or
    GGUF path loaded by the local runtime. ``n_ctx`` is the context either way, so a run that outgrows it ends as
    ``context_full`` whether the model is local or served."""
    if endpoint:
        context = {"context_length": n_ctx} if n_ctx else {}
        teacher = OpenAIChatModel(endpoint, model, api_key=api_key, chat_format=chat_format, **context)
        teacher.check()
        return teacher
    from tui_agent.models.loader import load_chat_model

    return load_chat_model(model, n_ctx=n_ctx, n_threads=n_threads, lora_path=lora)


def first_thought(teacher: Any, task: str, *, max_tokens: int = 256, seed: int = 0) -> str:
    """The first-thought prefix: the first paragraph of the teacher's own chain-of-thought answer to ``task``.

    It opens the agent's first ``Thought:``, so the teacher starts its trajectory from a plan it already made.
    Generation stops once that paragraph is complete: the rest of a chain-of-thought answer cost a 1.5B teacher on
    2 cores more time than the agent run itself.
    """
    messages: list[Message] = [
        {"role": "system", "content": FIRST_THOUGHT_PROMPT.strip()},
        {"role": "user", "content": task.strip()},
    ]
    text = ""
    with context_kept(teacher):
        pieces = teacher.stream_chat(messages, max_tokens=max_tokens, temperature=0.0, seed=seed)
        try:
            for piece in pieces:
                text += piece
                if _settled(text):
                    break  # the rest of the answer is never used: stop paying for it
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
    return first_paragraph(text)


@contextlib.contextmanager
def context_kept(model: Any) -> Iterator[None]:
    """Run a side request on a local model without losing what its context holds.

    A local teacher keeps the agent's system prompt in its KV cache from one task to the next; the first-thought
    request has a prompt of its own and would evict it, so the next task would read the whole system prompt
    again (about 40 s of a 60-90 s task for the 1.5B teacher on 2 cores). Served teachers are left alone: the
    server keeps its own caches.
    """
    llama = getattr(model, "llama", None)
    if llama is None or not hasattr(llama, "save_state"):
        yield
        return
    state = llama.save_state()
    try:
        yield
    finally:
        llama.load_state(state)


_TAILS = (" and more words.", "\n\nMore.", "\nMore\n\nMore.")


def _settled(text: str) -> bool:
    """Whether no continuation can change ``first_paragraph(text)``: the paragraph has ended, or its first line
    has (a paragraph of several lines gives its first line)."""
    first = first_paragraph(text)
    return bool(first) and all(first_paragraph(text + tail) == first for tail in _TAILS)


def first_paragraph(text: str, max_chars: int = 400) -> str:
    """The opening of a chain-of-thought answer: its first paragraph, or its first line when the answer runs on
    without blank lines (so the final result is not handed over with it); no "Thought:" label, code or list
    numbering, cut at a sentence if it is long."""
    for block in text.replace("\r\n", "\n").split("\n\n"):
        block = block.strip()
        if block.lower().startswith("thought:"):
            block = block[len("thought:") :].strip()
        if not block or block.startswith("```"):
            continue
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        block = lines[0] if len(lines) > 1 else block
        block = re.sub(r"^(?:step\s*1\s*[:.]|1[.)])\s*", "", block, flags=re.IGNORECASE)
        if len(block) > max_chars:
            cut = block.rfind(". ", 0, max_chars)
            block = block[: cut + 1] if cut > 0 else block[:max_chars]
        return block
    return ""

"""Test doubles for the loop's logic: a scripted chat model and an in-process kernel.

The real model and the real Jupyter kernel are exercised in test_end_to_end.py and test_sag.py.
"""

from __future__ import annotations

import contextlib
import io
import threading
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from tui_agent.models.base import Message, Usage


class ScriptedModel:
    """Answers each generation with the next scripted text, in small pieces, honouring stops and cancel."""

    name = "scripted"

    def __init__(self, replies: list[str], *, context_length: int = 32768, on_generate=None):
        self.replies = list(replies)
        self.calls: list[list[Message]] = []
        self.seeds: list[int | None] = []
        self.temperatures: list[float] = []
        self._context_length = context_length
        self._usage = Usage()
        self.on_generate = on_generate

    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def last_usage(self) -> Usage:
        return self._usage

    def count_tokens(self, text: str) -> int:
        return len(text.split())

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
        text = self.replies.pop(0) if self.replies else "Thought: nothing left to say."
        for s in stop:
            if s in text:
                text = text[: text.index(s)]
        prompt = sum(self.count_tokens(m["content"]) for m in messages)
        sent = 0
        for i in range(0, len(text), 7):
            if cancel is not None and cancel.is_set():
                self._usage = Usage(prompt, prompt, sent, 0.01, 0.01, "cancelled")
                return
            sent += 1
            yield text[i : i + 7]
        self._usage = Usage(prompt, prompt, sent, 0.01, 0.02, "stop")


class _FinalAnswer(BaseException):
    pass


@dataclass
class FakeResult:
    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    error: str | None = None
    images: list[str] = field(default_factory=list)
    final_answer: str | None = None
    timed_out: bool = False
    restarted: bool = False
    notice: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out

    def observation(self, max_chars: int = 4000) -> str:
        text = self.stdout
        if self.error:
            text += ("\n" if text else "") + self.error
        return text[:max_chars]


class FakeKernel:
    """Runs cells with exec() in one namespace; enough to test the loop's control flow."""

    def __init__(self, block: threading.Event | None = None):
        self.namespace: dict = {}
        self.executed: list[str] = []
        self.tried: list[str] = []
        self.alive = False
        self.interrupted = threading.Event()
        self.block = block

    def start(self) -> None:
        self.alive = True

    def interrupt(self) -> None:
        self.interrupted.set()

    def _run(self, code: str, namespace: dict) -> FakeResult:
        out = io.StringIO()

        def final_answer(x):
            raise _FinalAnswer(str(x))

        namespace["final_answer"] = final_answer
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, "<cell>", "exec"), namespace)
        except _FinalAnswer as fa:
            return FakeResult(stdout=out.getvalue(), final_answer=str(fa))
        except Exception as exc:
            line = traceback.format_exception_only(type(exc), exc)[-1].strip()
            return FakeResult(stdout=out.getvalue(), error=line)
        return FakeResult(stdout=out.getvalue())

    def execute(self, code: str, *, timeout: float | None = None) -> FakeResult:
        assert self.alive, "the loop must start the kernel"
        self.executed.append(code)
        if self.block is not None:
            self.block.set()
            self.interrupted.wait(10)
            return FakeResult(error="KeyboardInterrupt")
        return self._run(code, self.namespace)

    def try_execute(self, code: str, *, timeout: float | None = None) -> FakeResult:
        self.tried.append(code)
        return self._run(code, dict(self.namespace))


def step(thought: str, code: str) -> str:
    """A well-formed model step."""
    return f"Thought: {thought}\n```py\n{code}\n```<end_code>"

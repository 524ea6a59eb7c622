"""Test doubles for the loop's logic: the shared scripted chat model and an in-process kernel.

The real model and the real Jupyter kernel are exercised in test_end_to_end.py and test_sag.py.
"""

from __future__ import annotations

import contextlib
import io
import threading
import traceback
from dataclasses import dataclass, field

from tests.scripted import ScriptedModel, step

__all__ = ["FakeKernel", "FakeResult", "ScriptedModel", "step"]


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

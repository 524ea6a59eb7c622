"""Typed events the agent loop yields. The TUI renders them, ``ask`` prints them, the recorder writes them.

Every event is a small frozen dataclass with a ``kind`` string, so consumers can match on type and JSON output
can be produced with ``to_dict``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **asdict(self)}


@dataclass(frozen=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    task: str
    model: str


@dataclass(frozen=True)
class StepStarted(Event):
    kind: ClassVar[str] = "step_started"
    step: int


@dataclass(frozen=True)
class Token(Event):
    """A piece of generated text (thought or code) as it streams."""

    kind: ClassVar[str] = "token"
    step: int
    text: str
    candidate: int = 0  # with SAG (N > 1), which of the N sampled candidates this text belongs to


@dataclass(frozen=True)
class CodeReady(Event):
    """The model's step is parsed: its thought and the code about to run (before approval)."""

    kind: ClassVar[str] = "code_ready"
    step: int
    thought: str
    code: str


@dataclass(frozen=True)
class ApprovalNeeded(Event):
    kind: ClassVar[str] = "approval_needed"
    step: int
    code: str


@dataclass(frozen=True)
class EditApprovalNeeded(Event):
    """A cell proposed a change to a file; the user accepts or refuses its diff before it is written."""

    kind: ClassVar[str] = "edit_approval_needed"
    step: int
    path: str
    diff: str


@dataclass(frozen=True)
class FileChanged(Event):
    """What became of one file change: applied, refused by the user, or not written because the file changed."""

    kind: ClassVar[str] = "file_changed"
    step: int
    path: str
    diff: str
    status: str  # applied | refused | conflict | failed
    message: str = ""


@dataclass(frozen=True)
class Observation(Event):
    """What running the step produced (or the corrective text after a parse failure)."""

    kind: ClassVar[str] = "observation"
    step: int
    text: str
    error: str | None = None
    parse_failure: bool = False
    skipped: bool = False
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class FinalAnswer(Event):
    kind: ClassVar[str] = "final_answer"
    answer: str
    steps: int


@dataclass(frozen=True)
class AgentError(Event):
    """Something went wrong that the user should read (model, kernel); never a traceback."""

    kind: ClassVar[str] = "error"
    message: str
    step: int | None = None


@dataclass(frozen=True)
class PromptProgress(Event):
    """The model is reading its prompt: ``done`` of ``total`` tokens evaluated (step 0: the cached system prompt).

    Not part of a trajectory; it only keeps a long wait before the first token visible."""

    kind: ClassVar[str] = "prompt_progress"
    step: int
    done: int
    total: int


@dataclass(frozen=True)
class UsageReport(Event):
    kind: ClassVar[str] = "usage"
    step: int
    prompt_tokens: int
    prompt_eval_tokens: int
    completion_tokens: int
    seconds: float
    tokens_per_second: float
    context_used: int = 0
    context_length: int = 0


@dataclass(frozen=True)
class RunFinished(Event):
    """Last event of every run: why it ended and totals."""

    kind: ClassVar[str] = "run_finished"
    answer: str | None
    steps: int
    stop_reason: str  # answered | max_steps | cancelled | error
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

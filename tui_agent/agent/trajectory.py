"""Trajectories: one JSON line per agent run, the format ``training`` reads to filter and fine-tune on.

A line holds the task (and, for task sets, its id and reference answer), the model, every step (the model's raw
text, thought, code, observation, error, parse failure, token counts and timings), the final answer, why the run
stopped, ``settings``: everything needed to reproduce the run (model file and sha256, chat format, prompt hash,
seed, sampling, limits, tools), and ``messages``: the conversation as the model produced it, system prompt first,
never the copy shortened to fit the context window. The messages are what a student is trained on.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2


class TrajectoryError(Exception):
    """A trajectory file that cannot be read; the message names the file, line and reason."""


@dataclass
class StepRecord:
    step: int
    raw: str = ""  # the model's text as generated (stop sequence excluded)
    thought: str = ""
    code: str | None = None  # the code that ran (the edited code when the user edited it)
    observation: str = ""
    error: str | None = None
    parse_failure: bool = False
    repetition: bool = False  # the step was stopped because it repeated itself (also a parse failure)
    skipped: bool = False
    edited: bool = False
    forced_final: bool = False
    copied_answer: bool = False  # the final answer was refused: a few-shot example's, never found in this run
    copied_cell: bool = False  # the cell was an example's cell, word for word
    final_answer: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation_seconds: float = 0.0
    execution_seconds: float = 0.0
    candidates: int = 1  # SAG: how many candidate steps were sampled
    agreement: int = 1  # SAG: size of the winning group


@dataclass
class RunRecord:
    task: str
    model: str
    task_id: str = ""
    reference: dict[str, Any] = field(default_factory=dict)  # the task set's answer and how to check it
    started_at: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    final_answer: str | None = None
    stop_reason: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)
    version: int = SCHEMA_VERSION

    @property
    def parse_failures(self) -> int:
        return sum(s.parse_failure for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        step_known = {f.name for f in fields(StepRecord)}
        values = {k: v for k, v in data.items() if k in known}
        values["steps"] = [StepRecord(**{k: v for k, v in s.items() if k in step_known}) for s in data["steps"]]
        return cls(**values)


class TrajectoryRecorder:
    """Appends one JSON line per run to ``path`` (parents created); safe to share between threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def write(self, record: RunRecord) -> None:
        line = json.dumps(record.to_dict(), ensure_ascii=False)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")


def read_trajectories(path: Path, *, complete_only: bool = False) -> list[RunRecord]:
    """Every run in a trajectory file, in order; a malformed line raises TrajectoryError naming it.

    ``complete_only`` leaves out a last line without its newline: a file another process is appending to (a
    running ``train generate``) may be read in the middle of a write."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrajectoryError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if complete_only and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict) or "task" not in data or "steps" not in data:
                raise ValueError("missing 'task' or 'steps'")
            records.append(RunRecord.from_dict(data))
        except (ValueError, TypeError, KeyError) as exc:
            raise TrajectoryError(f"{path}:{number}: not a trajectory line: {exc}") from exc
    return records

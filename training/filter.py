"""Keep the teacher runs worth learning from: a correct final answer reached cleanly.

A run is dropped when it was cancelled, ended in an error, hit the step limit (or was forced to answer), had a
parse failure, gave no answer, has no reference to check against, or answered wrongly. Runs that hit execution
errors and then recovered are kept (they teach repair) and counted; ``keep_recovered=False`` drops them too.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.checking import check_answer, edited_tests
from tui_agent.agent.trajectory import RunRecord, TrajectoryError, read_trajectories

# Drop reasons, in the order they are tested (a run is counted under the first that applies).
REASONS = (
    "cancelled",
    "error",
    "context_full",
    "max_steps",
    "parse_failure",
    "no_answer",
    "no_reference",
    "wrong",
    "recovered",
)
REASON_LABELS = {
    "cancelled": "cancelled",
    "error": "stopped by an error",
    "context_full": "context window full",
    "max_steps": "step limit or forced answer",
    "parse_failure": "parse failure",
    "no_answer": "no final answer",
    "no_reference": "no reference answer",
    "wrong": "wrong answer",
    "recovered": "recovered from errors (not kept)",
}

Progress = Callable[[int, int], None]


@dataclass
class SourceCount:
    """Runs, kept runs and teacher seconds of one task source: what tells which sources are worth the teacher's
    time (kept per teacher-hour)."""

    runs: int = 0
    kept: int = 0
    seconds: float = 0.0

    @property
    def kept_per_hour(self) -> float | None:
        return 3600 * self.kept / self.seconds if self.seconds > 0 else None


@dataclass
class FilterResult:
    """What filtering kept, and why the rest was dropped (reason -> count, reasons from ``REASONS``)."""

    kept: list[RunRecord] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    recovered: int = 0  # kept runs that had an execution error and went on to a correct answer
    total: int = 0
    by_source: dict[str, SourceCount] = field(default_factory=dict)

    @property
    def kept_count(self) -> int:
        return len(self.kept)

    def add(self, record: RunRecord, reason: str | None, source: str, seconds: float | None = None) -> None:
        """Count one run under its drop reason (None: kept) and its task source; ``seconds`` is the run's share
        of the teacher's wall clock (default: its own seconds)."""
        counts = self.by_source.setdefault(source, SourceCount())
        counts.runs += 1
        counts.seconds += float(getattr(record, "seconds", 0.0) or 0.0) if seconds is None else seconds
        if reason is None:
            self.kept.append(record)
            self.recovered += recovered_from_errors(record)
            counts.kept += 1
        else:
            self.dropped[reason] += 1


def wall_shares(records: Sequence[Any]) -> list[float]:
    """Each run's share of the teacher's wall clock: runs made at the same time (a server with parallel slots)
    split the seconds they overlap, so per-hour rates stay true whether tasks ran one at a time or several at once.
    A run without a start time counts its own seconds."""
    from datetime import datetime

    spans: list[tuple[float, float] | None] = []
    for record in records:
        seconds = float(getattr(record, "seconds", 0.0) or 0.0)
        try:
            start = datetime.fromisoformat(str(record.started_at)).timestamp()
        except (AttributeError, TypeError, ValueError):
            spans.append(None)
            continue
        spans.append((start, start + seconds))
    shares = [0.0 if span else float(getattr(r, "seconds", 0.0) or 0.0) for r, span in zip(records, spans, strict=True)]
    events = sorted((t, kind, i) for i, span in enumerate(spans) if span for t, kind in ((span[0], 1), (span[1], -1)))
    active: set[int] = set()
    last = None
    for t, kind, i in events:
        if active and last is not None and t > last:
            for j in active:
                shares[j] += (t - last) / len(active)
        last = t
        if kind == 1:
            active.add(i)
        else:
            active.discard(i)
    return shares


def filter_trajectories(
    records: Iterable[RunRecord | Mapping[str, Any]],
    *,
    keep_recovered: bool = True,
    references: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> FilterResult:
    """Split runs into kept and dropped. A run's reference is its own ``reference`` field, else
    ``references[task_id]`` (a Task or a reference dict); records may be RunRecords or their JSON dicts."""
    pairs = [_as_record(item) for item in records]
    shares = wall_shares([record for record, _ in pairs])
    result = FilterResult(total=len(pairs))
    for done, ((record, raw), share) in enumerate(zip(pairs, shares, strict=True), start=1):
        reason = drop_reason(record, raw, references=references, keep_recovered=keep_recovered)
        result.add(record, reason, source_of(record, raw, references), share)
        if progress is not None:
            progress(done, len(pairs))
    return result


def filter_file(
    inp: str | Path,
    out: str | Path,
    *,
    keep_recovered: bool = True,
    references: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> FilterResult:
    """Filter a trajectory file into ``out``, copying kept lines verbatim (fields this version does not know
    survive). A malformed input line stops the run with a TrajectoryError naming file:line before anything is
    written: a damaged file means a broken generation run, which should be looked at rather than silently
    thinned."""
    inp, out = Path(inp), Path(out)
    records = read_trajectories(inp)
    lines = [line for line in inp.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) != len(records):  # read_trajectories skips exactly the blank lines
        raise TrajectoryError(f"{inp}: changed while it was being read")
    raws = [json.loads(line) for line in lines]
    result = FilterResult(total=len(records))
    kept_lines = []
    shares = wall_shares(records)
    for done, (record, raw, line, share) in enumerate(zip(records, raws, lines, shares, strict=True), start=1):
        reason = drop_reason(record, raw, references=references, keep_recovered=keep_recovered)
        result.add(record, reason, source_of(record, raw, references), share)
        if reason is None:
            kept_lines.append(line)
        if progress is not None:
            progress(done, len(records))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept_lines), encoding="utf-8")
    os.replace(tmp, out)
    return result


def drop_reason(
    record: RunRecord,
    raw: Mapping[str, Any] | None = None,
    *,
    references: Mapping[str, Any] | None = None,
    keep_recovered: bool = True,
) -> str | None:
    """Why a run is dropped (one of ``REASONS``), or None when it is kept."""
    stop = record.stop_reason
    if stop == "cancelled":
        return "cancelled"
    if stop in ("error", "context_full"):
        return stop
    if stop == "max_steps" or any(step.forced_final for step in record.steps):
        return "max_steps"
    if record.parse_failures:
        return "parse_failure"
    if record.final_answer is None or not str(record.final_answer).strip() or stop not in ("answered", ""):
        return "no_answer"
    reference = reference_of(record, raw, references)
    if reference is None:
        return "no_reference"
    if not check_answer(record.final_answer, reference):
        return "wrong"
    kind = reference.get("kind") if isinstance(reference, Mapping) else getattr(reference, "kind", None)
    if kind == "fix_bug" and edited_tests(step.observation for step in record.steps):
        return "wrong"  # it made the tests expect the bug
    if not keep_recovered and recovered_from_errors(record):
        return "recovered"
    return None


def reference_of(
    record: RunRecord, raw: Mapping[str, Any] | None = None, references: Mapping[str, Any] | None = None
) -> Any:
    """The run's reference: its ``reference`` field (attribute or JSON key), else ``references[task_id]``."""
    reference = getattr(record, "reference", None) or (raw or {}).get("reference")
    if isinstance(reference, Mapping) and reference.get("answer") is not None:
        return reference
    task_id = getattr(record, "task_id", None) or (raw or {}).get("task_id")
    if references is not None and task_id and task_id in references:
        return references[task_id]
    return None


def source_of(
    record: RunRecord, raw: Mapping[str, Any] | None = None, references: Mapping[str, Any] | None = None
) -> str:
    """The task source a run came from, by kind (``codebase:rich`` counts as ``codebase``): its reference's
    ``source``, else the first part of its task id."""
    reference = reference_of(record, raw, references)
    source = reference.get("source") if isinstance(reference, Mapping) else getattr(reference, "source", None)
    task_id = getattr(record, "task_id", None) or (raw or {}).get("task_id") or ""
    return str(source or task_id.partition("/")[0] or "unknown").partition(":")[0]


def recovered_from_errors(record: RunRecord) -> bool:
    """Whether the run had a step whose code raised (the model then had to repair it)."""
    return any(step.error for step in record.steps)


def filter_table(result: FilterResult, title: str = "Trajectory filter"):
    """The result as a rich Table: kept runs (and how many recovered from errors), then each drop reason."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("outcome")
    table.add_column("runs", justify="right")
    table.add_column("share", justify="right")

    def share(count: int) -> str:
        return f"{100 * count / result.total:.1f}%" if result.total else "-"

    table.add_row("kept", str(result.kept_count), share(result.kept_count), style="green")
    table.add_row("  of which recovered from errors", str(result.recovered), share(result.recovered))
    for reason in REASONS:
        if result.dropped[reason]:
            count = result.dropped[reason]
            table.add_row(f"dropped: {REASON_LABELS[reason]}", str(count), share(count), style="red")
    table.add_row("total", str(result.total), share(result.total) if result.total else "-", style="bold")
    return table


def source_table(result: FilterResult, title: str = "By task source"):
    """Kept runs per task source, with the keep rate and kept runs per hour of teacher time."""
    from rich.table import Table

    table = Table(title=title)
    for name in ("source", "runs", "kept", "keep rate", "kept / teacher-hour"):
        table.add_column(name, justify="left" if name == "source" else "right")
    for source, counts in sorted(result.by_source.items(), key=lambda item: -item[1].kept):
        rate = f"{100 * counts.kept / counts.runs:.0f}%" if counts.runs else "-"
        per_hour = counts.kept_per_hour
        table.add_row(source, str(counts.runs), str(counts.kept), rate, "-" if per_hour is None else f"{per_hour:.0f}")
    return table


def _as_record(item: RunRecord | Mapping[str, Any]) -> tuple[RunRecord, Mapping[str, Any] | None]:
    if isinstance(item, RunRecord):
        return item, None
    if isinstance(item, Mapping):
        return RunRecord.from_dict(dict(item)), item
    raise TypeError(f"expected a RunRecord or its dict, got {type(item).__name__}")

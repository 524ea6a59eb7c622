"""`generate`: a teacher agent solves a task set with the app's own loop, prompt and trajectory format.

Every finished run is appended to the output file as one JSON line the moment it ends, and a stopped run resumes:
tasks already in the file are skipped, a half-written last line (a kill mid-write) is cut off, and a run that was
interrupted or failed because the teacher could not be reached is never written, so nothing is duplicated or lost.
Tasks run N at a time (an HTTP teacher serves them concurrently), each worker with its own kernel per workspace.
"""

from __future__ import annotations

import json
import queue
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_agent.config import Settings


class GenerateError(Exception):
    """A generation run that cannot go on (bad output file, unreachable teacher); one line for the user."""


@dataclass
class GenerateOptions:
    """The agent settings a teacher runs with (recorded in every trajectory's settings)."""

    max_steps: int = 5
    sag: int = 1
    temperature: float = 0.0
    max_tokens: int = 512
    cell_timeout: float = 30.0
    kernel_memory_mb: int = 2048
    web: bool = False
    seed: int = 0
    ftp: bool = False
    concurrency: int = 1
    samples: int = 1  # trajectories per task (with different seeds)


@dataclass
class GenerateSummary:
    written: int = 0
    skipped: int = 0  # already in the output file
    failed: int = 0  # teacher errors, not written
    answered: int = 0
    stop_reasons: dict[str, int] = field(default_factory=dict)


def done_keys(out: Path, keep: Callable[[dict], bool] | None = None) -> set[tuple[str, int]]:
    """(task id, sample) of every trajectory already in ``out`` (those ``keep`` accepts); repairs a half-written
    last line."""
    if not out.exists():
        return set()
    raw = out.read_bytes()
    if raw and not raw.endswith(b"\n"):
        whole = raw.rfind(b"\n") + 1
        with out.open("r+b") as handle:  # a kill mid-write left a partial line: it was never a trajectory
            handle.truncate(whole)
        raw = raw[:whole]
    keys = set()
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            key = (str(data["task_id"]), int(data.get("settings", {}).get("sample", 0)))
            if keep is None or keep(data):
                keys.add(key)
        except (ValueError, KeyError, TypeError) as exc:
            raise GenerateError(f"{out}:{number}: not a trajectory line ({exc}); fix or remove that line") from None
    return keys


class _Writer:
    """Appends whole lines under a lock, flushed at once, so concurrent workers never interleave."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record: Any) -> None:
        line = json.dumps(record.to_dict(), ensure_ascii=False) + "\n"
        with self._lock:
            self._handle.write(line)
            self._handle.flush()

    def close(self) -> None:
        self._handle.close()


class _Worker:
    """One agent per workspace over the shared teacher; kernels are kept while the worker lives."""

    def __init__(self, teacher: Any, options: GenerateOptions, scratch: Path):
        self.teacher = teacher
        self.options = options
        self.scratch = scratch
        self.sessions: dict[Path, Any] = {}

    def agent_for(self, workspace: Path | None) -> Any:
        from tui_agent.session import open_session

        workspace = workspace or self.scratch
        if workspace not in self.sessions:
            if len(self.sessions) >= 4:  # keep a few kernels, not one per repository ever seen
                oldest = next(iter(self.sessions))
                self.sessions.pop(oldest).close()
            settings = Settings(
                max_steps=self.options.max_steps,
                sag=self.options.sag,
                temperature=self.options.temperature,
                web=self.options.web,
                approval="auto",
                cell_timeout=self.options.cell_timeout,
                kernel_memory_mb=self.options.kernel_memory_mb,
            )
            self.sessions[workspace] = open_session(
                settings,
                workspace=workspace,
                model=self.teacher,
                max_tokens=self.options.max_tokens,
                seed=self.options.seed,
                repo_map=None if workspace != self.scratch else "",
            )
        return self.sessions[workspace].agent

    def close(self) -> None:
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()


def generate(
    tasks: Iterable[Any],
    out: Path,
    teacher: Any,
    options: GenerateOptions | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    on_record: Callable[[Any], None] | None = None,
    before_write: Callable[[Any], None] | None = None,
    keep: Callable[[dict], bool] | None = None,
) -> GenerateSummary:
    """Run ``teacher`` as an agent over ``tasks``, appending each finished trajectory to ``out``.

    ``before_write`` may add to a record (stamps) before it is written; ``keep`` decides which lines already in
    ``out`` count as done (by default all).
    """
    options = options or GenerateOptions()
    cancel = cancel or threading.Event()
    out = Path(out)
    done = done_keys(out, keep)
    jobs = [(t, s) for t in tasks for s in range(options.samples)]
    summary = GenerateSummary(skipped=sum((str(t.id), s) in done for t, s in jobs))
    todo: queue.Queue = queue.Queue()
    for job in jobs:
        if (str(job[0].id), job[1]) not in done:
            todo.put(job)
    total, finished = len(jobs), summary.skipped
    if progress:
        progress(finished, total)
    writer = _Writer(out)
    lock = threading.Lock()
    fatal: list[BaseException] = []
    consecutive_failures = [0]

    def work(scratch: Path) -> None:
        nonlocal finished
        worker = _Worker(teacher, options, scratch)
        try:
            while not cancel.is_set() and not fatal:
                try:
                    task, sample = todo.get_nowait()
                except queue.Empty:
                    return
                record = _run_one(worker, task, sample, options, cancel)
                with lock:
                    if record is None:
                        summary.failed += 1
                        consecutive_failures[0] += 1
                        if consecutive_failures[0] >= 3 and hasattr(teacher, "check"):
                            try:
                                teacher.check()
                            except Exception as exc:  # noqa: BLE001 - the teacher is gone: stop the run
                                fatal.append(exc)
                        continue
                    consecutive_failures[0] = 0
                    if before_write:
                        before_write(record)
                    writer.write(record)
                    summary.written += 1
                    summary.answered += record.final_answer is not None
                    summary.stop_reasons[record.stop_reason] = summary.stop_reasons.get(record.stop_reason, 0) + 1
                    finished += 1
                    if progress:
                        progress(finished, total)
                if on_record:
                    on_record(record)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller's thread
            fatal.append(exc)
        finally:
            worker.close()

    with tempfile.TemporaryDirectory(prefix="tui-agent-generate-") as tmp:
        threads = []
        for i in range(max(1, options.concurrency)):
            scratch = Path(tmp) / f"worker-{i}"
            scratch.mkdir()
            threads.append(threading.Thread(target=work, args=(scratch,), name=f"generate-{i}", daemon=True))
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(timeout=0.2)
        except KeyboardInterrupt:
            cancel.set()
            for thread in threads:
                thread.join(timeout=30)
            raise
        finally:
            writer.close()
    if fatal:
        exc = fatal[0]
        raise GenerateError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    return summary


def _run_one(worker: _Worker, task: Any, sample: int, options: GenerateOptions, cancel: threading.Event) -> Any:
    """One trajectory, or None when it must not be kept (interrupted, or the teacher failed rather than the task)."""
    from training.tasks import resolve_workspace
    from training.teacher import first_thought
    from tui_agent.session import run_episode

    agent = worker.agent_for(resolve_workspace(task))
    agent.seed = options.seed + 1000 * sample
    prefix = None
    if options.ftp:
        try:
            prefix = first_thought(worker.teacher, task.question, seed=agent.seed) or None
        except Exception:  # noqa: BLE001 - counted as a failure; the run goes on with the next task
            return None
    reference = task.reference()
    record = run_episode(
        agent,
        task.question,
        cancel=cancel,
        first_thought=prefix,
        task_id=str(task.id),
        reference=reference,
    )
    if record is None or record.stop_reason in ("cancelled", "error") or cancel.is_set():
        return None  # not the teacher's work: retried when the run resumes
    from training.checking import record_fix_verdict

    record_fix_verdict(record)  # a fix-the-bug run is judged now, while its workspace holds the result
    record.settings["sample"] = sample
    record.settings["ftp"] = options.ftp
    return record

"""`eval`: models as agents over a task set, side by side: accuracy with a 95% interval, mean steps, parse failures
per step, tokens and seconds per task; every trajectory kept.

Each configuration (model, SAG size) writes its trajectories to ``<out>/<config>.jsonl`` through ``generate``, so an
evaluation resumes like a generation run. Every trajectory is stamped with the code version (a hash of the agent's
code and prompts) and the commit; a summary only averages trajectories of the current code version, and says how
many older ones it left out.
"""

from __future__ import annotations

import hashlib
import math
import re
import statistics
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
BEHAVIOUR_FILES = (
    "tui_agent/agent",
    "tui_agent/models/chat_formats.py",
    "tui_agent/models/llm.py",
    "tui_agent/tools/prelude.py",
    "tui_agent/tools/kernel.py",
    "tui_agent/tools/edits.py",
    "tui_agent/tools/runcmd.py",
    "tui_agent/tools/shadowing.py",
    "tui_agent/tools/bare_calls.py",
)


class EvalError(Exception):
    """An evaluation that cannot start (unknown model, bad adapter); one line for the user."""


@dataclass(frozen=True)
class ModelRef:
    """A model to evaluate: a registry name or GGUF path, optionally with a GGUF LoRA adapter (``BASE+ADAPTER``)."""

    base: str
    adapter: str | None = None
    no_adapter: bool = False  # ``BASE+none``: the base without the adapter its registry entry would add

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """The same names ``--model`` takes everywhere (``tui_agent.models.loader.split_adapter``)."""
        from tui_agent.models.loader import split_adapter

        if not text or text.startswith("+"):
            raise EvalError(f"not a model: {text!r} (use NAME, PATH.gguf or NAME+ADAPTER.gguf)")
        base, adapter, no_adapter = split_adapter(text)
        return cls(base, adapter, no_adapter)

    @property
    def label(self) -> str:
        name = Path(self.base).stem if self.base.endswith(".gguf") else self.base
        if self.no_adapter:
            return f"{name}+none"
        return f"{name}+{Path(self.adapter).stem}" if self.adapter else name


def code_version() -> str:
    """A hash of the code and prompts that decide how the agent behaves: equal hashes, comparable rows."""
    digest = hashlib.sha256()
    for entry in BEHAVIOUR_FILES:
        path = REPO_ROOT / entry
        files = (
            sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            if path.is_dir()
            else [path]
        )
        for file in files:
            digest.update(str(file.relative_to(REPO_ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def git_commit() -> str:
    """The commit the code comes from (``-dirty`` with uncommitted changes); "unknown" outside a checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "tui_agent", "training"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip()[:12] + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval of an accuracy measured on n tasks: with 50 tasks, a few points either way is noise."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def config_name(ref: ModelRef, sag: int) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", f"{ref.label}-sag{sag}")


def _edited_tests(record: Any) -> bool:
    """A fix-the-bug run that changed the task's tests (judged from its observations) did not fix the bug."""
    from training.checking import edited_tests

    reference = getattr(record, "reference", None) or {}
    if reference.get("kind") != "fix_bug":
        return False
    return bool(edited_tests(step.observation for step in record.steps))


def summarise(records: Sequence[Any]) -> dict[str, Any]:
    """Accuracy (with interval), answered, mean steps, parse failures per step, tokens and seconds per task, and
    how the wrong runs failed (``training.failures``)."""
    from training.failures import failure_summary

    n = len(records)
    correct = judge(records)
    steps = sum(len(r.steps) for r in records)
    low, high = wilson_interval(sum(correct), n)
    return {
        "tasks": n,
        "accuracy": round(sum(correct) / n, 4) if n else None,
        "accuracy_95ci": [round(low, 4), round(high, 4)],
        "answered": sum(r.final_answer is not None for r in records),
        "mean_steps": round(steps / n, 2) if n else None,
        "parse_failures_per_step": round(sum(r.parse_failures for r in records) / steps, 4) if steps else None,
        "tokens_per_task": round(statistics.mean(r.prompt_tokens + r.completion_tokens for r in records), 1)
        if n
        else None,
        "completion_tokens_per_task": round(statistics.mean(r.completion_tokens for r in records), 1) if n else None,
        "seconds_per_task": round(statistics.mean(r.seconds for r in records), 2) if n else None,
        "median_seconds_per_task": round(statistics.median(r.seconds for r in records), 2) if n else None,
        "accuracy_within_steps": within_steps(records, correct),
        "concurrency": max((int(r.settings.get("concurrency", 1)) for r in records), default=1),
        **failure_summary(records, correct),
    }


def judge(records: Sequence[Any]) -> list[bool]:
    """Whether each run's final answer is right (a fix-the-bug run must also leave the tests alone)."""
    from training.checking import check_answer

    return [check_answer(r.final_answer, r.reference) and not _edited_tests(r) for r in records]


def within_steps(records: Sequence[Any], correct: Sequence[bool]) -> dict[str, float]:
    """Accuracy counting only right answers given, unforced, by step k (k = 1 .. the most steps a run took): what
    a lower step limit would have scored, read from the trajectories instead of run again (a forced answer after
    the lower limit is not counted, so this is a floor)."""
    if not records:
        return {}
    answered_at = [
        next((s.step for s in r.steps if s.final_answer is not None and not s.forced_final), None) if ok else None
        for r, ok in zip(records, correct, strict=True)
    ]
    most = max(len(r.steps) for r in records)
    return {
        str(k): round(sum(1 for at in answered_at if at is not None and at <= k) / len(records), 4)
        for k in range(1, most + 1)
    }


def evaluate(
    models: Sequence[str | ModelRef],
    tasks: Sequence[Any],
    out_dir: Path,
    *,
    sags: Sequence[int] = (1,),
    options: Any = None,
    n_ctx: int = 4096,
    load: Callable[[ModelRef, int], Any] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    chunk: int = 10,
    extra: Sequence[tuple[str | ModelRef, int]] = (),
    concurrency: int = 1,
) -> dict[str, Any]:
    """Evaluate every (model, SAG size) over ``tasks``, then the ``extra`` (model, SAG size) pairs (a SAG row for
    one model only); returns the report (also written to ``<out>/report.json``).

    Tasks are taken in chunks across configurations, so a stopped run has every configuration about as far along.
    ``concurrency`` > 1 runs that many tasks at once, for models served over HTTP with parallel slots; it is
    recorded in each trajectory and in the report, because seconds per task then measure a shared machine.
    """
    from training.generate import GenerateOptions, generate

    configs = config_pairs(models, sags, extra)
    if not configs:
        raise EvalError("no models to evaluate")
    if not tasks:
        raise EvalError("the task set is empty")
    options = options or GenerateOptions()
    version, commit = code_version(), git_commit()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    load = load or _load_model
    loaded: dict[ModelRef, Any] = {}

    def stamp(record: Any) -> None:
        record.settings["code_version"] = version
        record.settings["commit"] = commit
        record.settings["concurrency"] = concurrency

    chunk = chunk * max(1, concurrency)  # a chunk ends with idle slots while its slowest task finishes
    for start in range(0, len(tasks), chunk):
        for ref, sag in configs:
            name = config_name(ref, sag)
            if ref not in loaded:
                loaded[ref] = load(ref, n_ctx)
            path = out_dir / f"{name}.jsonl"
            generate(
                tasks[start : start + chunk],
                path,
                loaded[ref],
                replace(options, sag=sag, concurrency=max(1, concurrency)),
                progress=(lambda done, total, name=name, base=start: progress(name, base + done, len(tasks)))
                if progress
                else None,
                before_write=stamp,
                keep=lambda data: data.get("settings", {}).get("code_version") == version,
            )
    for model in loaded.values():
        close = getattr(model, "close", None)
        if callable(close):
            close()
    return write_report(out_dir, [config_name(r, s) for r, s in configs], tasks, options, version, commit)


def config_pairs(
    models: Sequence[str | ModelRef], sags: Sequence[int] = (1,), extra: Sequence[tuple[str | ModelRef, int]] = ()
) -> list[tuple[ModelRef, int]]:
    """Every (model, SAG size) row, in order and once each: each model at each SAG size, then the ``extra`` pairs."""
    refs = [m if isinstance(m, ModelRef) else ModelRef.parse(m) for m in models]
    pairs = [(m if isinstance(m, ModelRef) else ModelRef.parse(m), int(sag)) for m, sag in extra]
    return list(dict.fromkeys([(ref, sag) for ref in refs for sag in sags] + pairs))


def write_report(
    out_dir: Path,
    names: Sequence[str],
    tasks: Sequence[Any],
    options: Any,
    version: str | None = None,
    commit: str | None = None,
) -> dict[str, Any]:
    """``<out>/report.json`` over the named rows' trajectories of these tasks (this code version only), and
    ``<out>/failures.md`` with a trajectory of each way they failed; a caller that already hashed the code and
    asked git passes ``version`` and ``commit``."""
    import json

    from training.failures import failures_markdown

    out_dir = Path(out_dir)
    version = version or code_version()
    task_ids = {str(t.id) for t in tasks}
    report = build_report(out_dir, names, task_ids, version)
    report.update({"commit": commit or git_commit(), "tasks": len(tasks), "options": vars(options)})
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    rows = {}
    for name in names:
        records = current_records(out_dir, name, task_ids, version)[0]
        rows[name] = (records, judge(records))
    (out_dir / "failures.md").write_text(failures_markdown(out_dir.name, rows), encoding="utf-8")
    return report


def current_records(out_dir: Path, name: str, task_ids: set[str], version: str) -> tuple[list[Any], int]:
    """A row's trajectories of these tasks made by this code version, and how many older ones it left out."""
    from tui_agent.agent.trajectory import read_trajectories

    path = Path(out_dir) / f"{name}.jsonl"
    records = read_trajectories(path) if path.exists() else []
    current = {}
    older = 0
    for record in records:
        if record.task_id not in task_ids:
            continue
        if record.settings.get("code_version") == version:
            current[(record.task_id, record.settings.get("sample", 0))] = record
        else:
            older += 1
    return list(current.values()), older


def build_report(out_dir: Path, names: Sequence[str], task_ids: set[str], version: str) -> dict[str, Any]:
    """Summaries per configuration over the current code version's trajectories of these tasks."""
    rows: dict[str, Any] = {}
    for name in names:
        records, older = current_records(out_dir, name, task_ids, version)
        rows[name] = {**summarise(records), "older_code_versions_left_out": older}
    return {"code_version": version, "configs": rows}


def render_table(report: dict[str, Any], title: str = "Evaluation") -> Any:
    """The report as a rich Table, one row per configuration."""
    from rich.table import Table

    table = Table(title=title)
    for column in (
        "config",
        "tasks",
        "accuracy",
        "95% interval",
        "answered",
        "mean steps",
        "parse fail/step",
        "tokens/task",
        "s/task (median)",
    ):
        table.add_column(column, justify="left" if column == "config" else "right")
    for name, row in report["configs"].items():
        if not row["tasks"]:
            table.add_row(name, "0", *["-"] * 7)
            continue
        pf = row["parse_failures_per_step"]
        table.add_row(
            name,
            str(row["tasks"]),
            f"{row['accuracy']:.1%}",
            "{:.0%}-{:.0%}".format(*row["accuracy_95ci"]),
            str(row["answered"]),
            f"{row['mean_steps']:.2f}",
            f"{pf:.1%}" if pf is not None else "-",
            f"{row['tokens_per_task']:.0f}",
            f"{row['median_seconds_per_task']:.1f}"
            + (f" ({row['concurrency']} at once)" if row.get("concurrency", 1) > 1 else ""),
        )
    return table


def endpoint_loader(
    endpoint: str, *, chat_format: str | None = None, api_key: str | None = None, prompt_style: str | None = None
):
    """A ``load`` for evaluate(): each model is a name a server at ``endpoint`` serves, so its row has the label a
    local run would have (``NAME+none`` asks for NAME and keeps the label of the base row). The server decides any
    adapter; ``prompt_style`` is the system prompt the served model was trained under (a registry entry's
    ``prompt``), and the context is the evaluation's ``n_ctx``, as for a local model."""

    def load(ref: ModelRef, n_ctx: int) -> Any:
        from training.teacher import TeacherError, open_teacher

        if ref.adapter:
            raise EvalError(f"{ref.label}: with an endpoint, the server decides the adapter; give the plain model name")
        try:
            model = open_teacher(ref.base, endpoint=endpoint, api_key=api_key, chat_format=chat_format, n_ctx=n_ctx)
        except TeacherError as exc:
            raise EvalError(str(exc)) from None
        if prompt_style:
            model.prompt_style = prompt_style
        return model

    return load


def _load_model(ref: ModelRef, n_ctx: int) -> Any:
    from tui_agent.models.base import ModelError
    from tui_agent.models.loader import load_chat_model

    try:
        return load_chat_model(ref.base, n_ctx=n_ctx, lora_path=ref.adapter, no_lora=ref.no_adapter)
    except ModelError as exc:
        raise EvalError(str(exc)) from None

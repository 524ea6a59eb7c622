"""Where a recipe's run stands, stage by stage, read from its work directory: nothing is run or written.

A distillation run on a small machine takes days of teacher, training and evaluation time in many sittings; this is
what tells, before starting the next one, how far each stage got and what the teacher's hours have bought so far.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.recipe import Recipe, eval_row_names, eval_set_name, eval_tasks


@dataclass
class StageStatus:
    stage: str
    state: str  # "done", "partial" or "not started"
    detail: str


def recipe_status(recipe: Recipe, *, target: int | None = None) -> list[StageStatus]:
    """One line per stage, in the order ``train run`` runs them; ``target`` kept runs adds how many teacher-hours
    they still need at the rate so far."""
    from tui_agent.agent.trajectory import read_trajectories

    tasks = _task_ids(recipe.data_file("tasks.jsonl"))
    path = recipe.data_file("trajectories.jsonl")
    # read once for both stages; the teacher may be appending right now
    records = read_trajectories(path, complete_only=True) if path.is_file() else None
    return [
        _tasks_status(recipe, tasks),
        _generate_status(records, tasks),
        *_filter_status(recipe, records, target),
        _sft_status(recipe),
        _export_status(recipe),
        *_eval_status(recipe),
    ]


def _task_ids(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    return [str(json.loads(line).get("id")) for line in lines if line.strip()]


def _tasks_status(recipe: Recipe, tasks: list[str] | None) -> StageStatus:
    if tasks is None:
        return StageStatus("tasks", "not started", "no task set yet")
    return StageStatus("tasks", "done", f"{len(tasks)} tasks in {recipe.data_file('tasks.jsonl')}")


def _generate_status(records: list[Any] | None, tasks: list[str] | None) -> StageStatus:
    if records is None:
        return StageStatus("generate", "not started", "no trajectories yet")
    from training.filter import wall_shares

    hours = sum(wall_shares(records)) / 3600
    if tasks is None:
        return StageStatus("generate", "partial", f"{len(records)} trajectories, {hours:.1f} teacher-hours")
    done = {r.task_id for r in records} & set(tasks)
    state = "done" if len(done) == len(tasks) else "partial"
    share = f" ({100 * len(done) / len(tasks):.0f}%)" if tasks else ""
    return StageStatus("generate", state, f"{len(done)} of {len(tasks)} tasks{share}, {hours:.1f} teacher-hours")


def _filter_status(recipe: Recipe, records: list[Any] | None, target: int | None = None) -> list[StageStatus]:
    from training.filter import filter_trajectories

    if records is None:
        return [StageStatus("filter", "not started", "nothing to filter yet")]
    result = filter_trajectories(records, keep_recovered=bool(recipe.filter.get("keep_recovered", True)))
    hours = sum(c.seconds for c in result.by_source.values()) / 3600
    rate = f", {result.kept_count / hours:.0f} kept per teacher-hour" if hours else ""
    kept_file = recipe.file("kept.jsonl")
    written = _count_lines(kept_file) if kept_file.is_file() else None
    if written is None:
        state, note = "not started", "kept.jsonl not written yet"
    elif written == result.kept_count:
        state, note = "done", "kept.jsonl is up to date"
    else:
        state, note = "partial", f"kept.jsonl holds {written}: filter again"
    if target is not None and result.kept_count < target and hours and result.kept_count:
        note += f"; {target} kept needs about {(target - result.kept_count) * hours / result.kept_count:.1f} more hours"
    lines = [StageStatus("filter", state, f"{result.kept_count} of {result.total} kept{rate}; {note}")]
    for source, counts in sorted(result.by_source.items(), key=lambda item: -item[1].kept):
        per_hour = counts.kept_per_hour
        lines.append(
            StageStatus(
                f"  {source}",
                "",
                f"{counts.kept} of {counts.runs} kept" + ("" if per_hour is None else f", {per_hour:.0f} per hour"),
            )
        )
    return lines


def _sft_status(recipe: Recipe) -> StageStatus:
    from training.sft import CHECKPOINTS, SUMMARY

    out = recipe.file("sft")
    summary = out / SUMMARY
    if summary.is_file():
        data = json.loads(summary.read_text(encoding="utf-8"))
        examples, seconds = data.get("examples", "?"), float(data.get("seconds") or 0)
        took = f" in {seconds / 60:.0f} min" if seconds else ""
        return StageStatus("sft", "done", f"adapter trained on {examples} trajectories{took} ({out})")
    steps = [_checkpoint_step(c) for c in (out / CHECKPOINTS).glob("checkpoint-*")] if out.is_dir() else []
    steps = [s for s in steps if s is not None]
    if not steps:
        return StageStatus("sft", "not started", "no checkpoint yet")
    step, total = max(steps)
    return StageStatus("sft", "partial", f"checkpoint at step {step} of {total}; `train run` resumes from it")


def _checkpoint_step(folder: Path) -> tuple[int, int] | None:
    state = folder / "trainer_state.json"
    try:
        data = json.loads(state.read_text(encoding="utf-8"))
        return int(data["global_step"]), int(data["max_steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a checkpoint cut off while being written


def _export_status(recipe: Recipe) -> StageStatus:
    path = (
        Path(recipe.resolve(str(recipe.export["path"]))) if recipe.export.get("path") else recipe.file("adapter.gguf")
    )
    if not path.is_file():
        return StageStatus("export", "not started", f"no adapter at {path}")
    return StageStatus("export", "done", f"{path} ({path.stat().st_size / 1e6:.1f} MB)")


def _eval_status(recipe: Recipe) -> list[StageStatus]:
    from training.evaluate import code_version

    sets = recipe.eval.get("sets") or []
    if not sets:
        return [StageStatus("eval", "not started", "no [eval] sets in the recipe")]
    configs = eval_row_names(recipe)
    version = code_version()
    lines = []
    for item in sets:
        label = eval_set_name(item)
        ids = {str(t.id) for t in eval_tasks(recipe, item)}
        counts = [_evaluated(recipe.file(f"eval/{label}/{config}.jsonl"), ids, version) for config in configs]
        finished = sum(1 for n in counts if n == len(ids))
        state = "done" if finished == len(configs) else "partial" if any(counts) else "not started"
        detail = ", ".join(f"{config} {n}/{len(ids)}" for config, n in zip(configs, counts, strict=True))
        lines.append(StageStatus(f"eval {label}", state, detail))
    return lines


def _evaluated(path: Path, task_ids: set[str], version: str) -> int:
    """Tasks of the set evaluated by this code version (rows of older versions are not comparable)."""
    if not path.is_file():
        return 0
    done = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            data: dict[str, Any] = json.loads(line)
        except ValueError:
            continue
        if data.get("task_id") in task_ids and data.get("settings", {}).get("code_version") == version:
            done.add(data["task_id"])
    return len(done)


def _count_lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def status_table(rows: list[StageStatus], title: str):
    """The status as a rich Table."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("stage")
    table.add_column("state")
    table.add_column("detail", overflow="fold")
    styles = {"done": "green", "partial": "yellow", "not started": "dim"}
    for row in rows:
        table.add_row(row.stage, row.state, row.detail, style=styles.get(row.state, ""))
    return table

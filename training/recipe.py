"""A recipe: the data of a distillation run (tasks, teacher, filter, student, LoRA settings, export, evaluation) in
one TOML file, and ``run_recipe``, which runs every stage in order.

Each stage writes into the recipe's work directory and resumes: the task set is built once, generation continues
where it stopped, training continues from its last checkpoint, and a finished stage is not redone. Relative paths
in a recipe are relative to the recipe file.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

STAGES = ("tasks", "generate", "filter", "sft", "export", "eval")


class RecipeError(Exception):
    """A recipe that cannot be run; the message names the file and the field."""


@dataclass
class Recipe:
    path: Path
    name: str
    workdir: Path
    tasks: dict[str, Any]
    teacher: dict[str, Any]
    filter: dict[str, Any]
    student: dict[str, Any]
    lora: dict[str, Any]
    export: dict[str, Any]
    eval: dict[str, Any] = field(default_factory=dict)
    data: Path | None = None

    def file(self, name: str) -> Path:
        return self.workdir / name

    def data_file(self, name: str) -> Path:
        """The task set and the teacher's trajectories live in ``data`` when the recipe names one: students of
        different sizes then learn from one teacher run instead of each paying for their own."""
        return (self.data or self.workdir) / name

    def resolve(self, value: str) -> str:
        """A path relative to the recipe file made absolute; names (registry models, datasets) stay as they are."""
        candidate = (self.path.parent / Path(value).expanduser()).resolve()
        return str(candidate) if candidate.exists() or value.startswith((".", "/", "~")) else value


def load_recipe(path: Path) -> Recipe:
    """Read and check a recipe file (unknown sections or LoRA fields are errors, not silently ignored)."""
    from training.sft import SFTSettings
    from tui_agent.config import ConfigError, read_toml

    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise RecipeError(f"{path}: no such recipe file")
    try:
        data = read_toml(path)
    except ConfigError as exc:
        raise RecipeError(str(exc)) from None
    unknown = set(data) - {"name", "workdir", "data", "tasks", "teacher", "filter", "student", "lora", "export", "eval"}
    if unknown:
        raise RecipeError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
    for section in ("tasks", "teacher", "student"):
        if not isinstance(data.get(section), dict):
            raise RecipeError(f"{path}: missing [{section}] section")
    if "model" not in data["teacher"]:
        raise RecipeError(f"{path}: [teacher] needs model = ...")
    if "model" not in data["student"]:
        raise RecipeError(f"{path}: [student] needs model = ...")
    known_lora = {f.name for f in fields(SFTSettings)}
    bad = set(data.get("lora", {})) - known_lora
    if bad:
        raise RecipeError(f"{path}: [lora] has unknown field(s) {', '.join(sorted(bad))}")
    name = str(data.get("name") or path.stem)
    workdir = (path.parent / str(data.get("workdir", f"runs/{name}"))).resolve()
    return Recipe(
        path=path,
        name=name,
        workdir=workdir,
        tasks=data["tasks"],
        teacher=data["teacher"],
        filter=data.get("filter", {}),
        student=data["student"],
        lora=data.get("lora", {}),
        export=data.get("export", {}),
        eval=data.get("eval", {}),
        data=(path.parent / str(data["data"])).resolve() if data.get("data") else None,
    )


def run_recipe(
    recipe: Recipe,
    *,
    only: set[str] | None = None,
    bar: Callable[[str], contextlib.AbstractContextManager] | None = None,
    echo: Callable[[str], None] = print,
    rows: set[str] | None = None,
) -> None:
    """Run the recipe's stages in order (or only those named); ``rows`` limits the eval stage to those rows."""
    if only and not only <= set(STAGES):
        raise RecipeError(f"unknown stage(s) {', '.join(sorted(only - set(STAGES)))}; stages: {', '.join(STAGES)}")
    if rows and only and "eval" not in only:
        raise RecipeError("rows choose evaluation rows: run them with the eval stage (--only eval)")
    if rows:
        unknown = rows - set(eval_row_names(recipe))
        if unknown:
            known = ", ".join(eval_row_names(recipe)) or "none"
            raise RecipeError(f"no eval row {', '.join(sorted(unknown))} in {recipe.path}; its rows: {known}")
    bar = bar or _no_bar
    recipe.workdir.mkdir(parents=True, exist_ok=True)
    if recipe.data is not None:
        recipe.data.mkdir(parents=True, exist_ok=True)
    for stage in STAGES:
        if only and stage not in only:
            continue
        echo(f"== {stage}")
        if stage == "eval":
            _eval(recipe, bar, echo, rows=rows)
        else:
            RUNNERS[stage](recipe, bar, echo)


@contextlib.contextmanager
def _no_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    yield lambda done, total: None


GENERATED_SOURCES = {  # [tasks] key = { n, seed, weight }: (module, function, label, default n), in list order
    "fix_bugs": ("training.fixbug_tasks", "generate_fixbug_tasks", "fix-the-bug", 20),
    "arithmetic": ("training.arithmetic_tasks", "generate_arithmetic_tasks", "arithmetic", 100),
}


def _tasks(recipe: Recipe, bar, echo) -> None:
    from training.tasks import load_tasks, write_tasks

    out = recipe.data_file("tasks.jsonl")
    if out.exists():
        echo(f"{out} exists: kept (delete it to rebuild the task set)")
        return
    sources: list[list] = []
    weights: list[int] = []
    for item in recipe.tasks.get("from", []):
        options = {k: v for k, v in item.items() if k not in ("source", "weight")}
        if "levels" in options:
            options["levels"] = set(options["levels"])
        loaded = load_tasks(recipe.resolve(str(item["source"])), **options)
        echo(f"{item['source']}: {len(loaded)} tasks")
        sources.append(loaded)
        weights.append(int(item.get("weight", 1)))
    for item in recipe.tasks.get("codebase", []):
        from training.codebase_tasks import generate_codebase_tasks

        with bar(f"codebase tasks from {item['root']}") as progress:
            made = generate_codebase_tasks(
                recipe.resolve(str(item["root"])),
                n=int(item.get("n", 50)),
                seed=int(item.get("seed", 0)),
                progress=progress,
            )
        echo(f"{item['root']}: {len(made)} codebase tasks")
        sources.append(made)
        weights.append(int(item.get("weight", 1)))
    for key, (module, function, label, default_n) in GENERATED_SOURCES.items():
        spec = recipe.tasks.get(key)
        if spec:
            generate = getattr(importlib.import_module(module), function)
            made = generate(int(spec.get("n", default_n)), seed=int(spec.get("seed", 0)))
            echo(f"{label}: {len(made)} tasks")
            sources.append(made)
            weights.append(int(spec.get("weight", 1)))
    tasks = interleave(sources, weights)
    if not tasks:
        raise RecipeError(
            f"{recipe.path}: [tasks] gives no tasks (add from = [...], codebase = [...], fix_bugs = {{n = 20}} "
            "or arithmetic = {{n = 100}})"
        )
    echo(f"wrote {write_tasks(tasks, out)} tasks to {out}")


def interleave(sources: list[list], weights: list[int]) -> list:
    """Round-robin over the sources, `weight` items from each per round: a run stopped early has
    trajectories of every kind, in the proportions the recipe asks for."""
    if any(w < 1 for w in weights):
        raise RecipeError(f"a task source's weight must be a whole number >= 1, got {weights}")
    chunked = [
        [source[i : i + w] for i in range(0, len(source), w)] for source, w in zip(sources, weights, strict=True)
    ]
    return [t for group in itertools.zip_longest(*chunked, fillvalue=[]) for chunk in group for t in chunk]


def _teacher_model(recipe: Recipe) -> Any:
    from training.teacher import open_teacher

    teacher = recipe.teacher
    model = str(teacher["model"])
    return open_teacher(
        model if teacher.get("endpoint") else recipe.resolve(model),
        endpoint=teacher.get("endpoint") or None,
        api_key=teacher.get("api_key") or None,
        chat_format=teacher.get("chat_format") or None,
        n_ctx=int(teacher.get("n_ctx", 8192)),
        n_threads=int(teacher.get("n_threads", 0)) or None,
    )


def _generate(recipe: Recipe, bar, echo) -> None:
    from training.generate import GenerateOptions, generate
    from training.tasks import load_tasks

    known = {f.name for f in fields(GenerateOptions)}
    options = GenerateOptions(**{k: v for k, v in recipe.teacher.items() if k in known})
    tasks = load_tasks(recipe.data_file("tasks.jsonl"))
    teacher = _teacher_model(recipe)
    try:
        with bar(f"teacher {recipe.teacher['model']}") as progress:
            summary = generate(tasks, recipe.data_file("trajectories.jsonl"), teacher, options, progress=progress)
    finally:
        close = getattr(teacher, "close", None)
        if callable(close):
            close()
    echo(f"{summary.written} new trajectories ({summary.skipped} already there, {summary.failed} failed)")


def _filter(recipe: Recipe, bar, echo) -> None:
    from training.filter import filter_file

    result = filter_file(
        recipe.data_file("trajectories.jsonl"),
        recipe.file("kept.jsonl"),
        keep_recovered=bool(recipe.filter.get("keep_recovered", True)),
    )
    sources = ", ".join(f"{name} {c.kept}/{c.runs}" for name, c in sorted(result.by_source.items()))
    echo(f"kept {len(result.kept)} trajectories ({sources})" if sources else f"kept {len(result.kept)} trajectories")


def student_source(recipe: Recipe) -> str:
    """What sft loads: a registry model's GGUF file, or the path / hub id as given."""
    from tui_agent.models.loader import looks_like_path, resolve_model_file
    from tui_agent.models.registry import load_registry

    model = str(recipe.student["model"])
    if looks_like_path(model) or "/" in model:
        return recipe.resolve(model)
    registry = load_registry()
    if model in registry:
        return str(resolve_model_file(registry.get(model)))
    return model


def _sft(recipe: Recipe, bar, echo) -> None:
    from training.sft import SUMMARY, SFTSettings, train_sft

    out = recipe.file("sft")
    if (out / SUMMARY).exists():
        echo(f"{out} holds a finished adapter: kept (delete it to train again)")
        return
    settings = SFTSettings(**recipe.lora)
    settings.prompt_style = str(recipe.student.get("prompt", "full"))
    prompt = recipe.student.get("system_prompt")
    if prompt:
        settings.system_prompt = Path(recipe.resolve(str(prompt))).read_text(encoding="utf-8")
    with bar(f"training {recipe.student['model']}") as progress:
        train_sft(recipe.file("kept.jsonl"), student_source(recipe), out, config=settings, progress=progress)
    echo(f"adapter saved in {out}")


def adapter_path(recipe: Recipe) -> Path:
    """Where the exported GGUF adapter goes: [export] path, else adapter.gguf in the work directory."""
    return (
        Path(recipe.resolve(str(recipe.export["path"]))) if recipe.export.get("path") else recipe.file("adapter.gguf")
    )


def _export(recipe: Recipe, bar, echo) -> None:
    from training.export import export_adapter, register_model, trained_prompt_style

    out = adapter_path(recipe)
    base = str(recipe.student["model"])
    base_gguf = Path(student_source(recipe))
    result = export_adapter(
        recipe.file("sft"),
        out,
        base_gguf=base_gguf if base_gguf.suffix == ".gguf" else None,
        dtype=str(recipe.export.get("dtype", "f16")),
    )
    echo(f"wrote {result.path} ({result.tensors} adapted matrices, rank {result.rank})")
    name = recipe.export.get("name")
    if name:
        register_model(
            str(name),
            base,
            result.path,
            description=str(recipe.export.get("description", "")),
            prompt=trained_prompt_style(recipe.file("sft")),
        )
        echo(f'registered {name}: tui-agent ask --model {name} "..."')


def _eval(recipe: Recipe, bar, echo, rows: set[str] | None = None) -> None:
    from training.evaluate import config_name, evaluate
    from training.tasks import write_tasks

    if not recipe.eval.get("sets"):
        echo("no [eval] sets: skipped")
        return
    pairs = eval_rows(recipe)
    chosen = [(ref, sag) for ref, sag in pairs if not rows or config_name(ref, sag) in rows]
    _check_student_registered(recipe, [ref.base for ref, _ in chosen])
    options = eval_options(recipe)
    # Every held-out set is written first, for `tui-agent eval` runs beside the recipe's (a model served with
    # parallel slots) that need not wait for this stage to reach the set.
    sets = [(eval_set_name(item), eval_tasks(recipe, item)) for item in recipe.eval["sets"]]
    for label, tasks in sets:
        write_tasks(tasks, recipe.file(f"eval/{label}/tasks.jsonl"))
    for label, tasks in sets:
        with bar(f"eval {label}") as progress:
            evaluate(
                [],
                tasks,
                recipe.file(f"eval/{label}"),
                extra=chosen,
                options=options,
                n_ctx=int(recipe.eval.get("n_ctx", 8192)),
                progress=lambda config, done, total, progress=progress: progress(done, total),
            )
        report = _write_set_report(recipe, label, tasks, options)
        for config, row in report["configs"].items():
            echo(f"{label} {config}: accuracy {row['accuracy']} over {row['tasks']} tasks")


def eval_options(recipe: Recipe) -> Any:
    """The options every row of the recipe's evaluation runs under; each report records them."""
    from training.generate import GenerateOptions

    return GenerateOptions(
        max_steps=int(recipe.eval.get("max_steps", 5)), max_tokens=int(recipe.eval.get("max_tokens", 512))
    )


def eval_reports(recipe: Recipe) -> list[tuple[str, dict[str, Any]]]:
    """Rewrite each held-out set's report.json over every row of the recipe, running nothing: for rows finished
    by separate `tui-agent eval` runs (a served teacher) or judged by a newer answer check. A set whose tasks file
    the eval stage has not written yet is skipped."""
    from training.tasks import load_tasks

    options = eval_options(recipe)
    reports = []
    for item in recipe.eval.get("sets", []):
        label = eval_set_name(item)
        tasks_file = recipe.file(f"eval/{label}/tasks.jsonl")
        if tasks_file.is_file():
            reports.append((label, _write_set_report(recipe, label, load_tasks(tasks_file), options)))
    return reports


def _write_set_report(recipe: Recipe, label: str, tasks: list, options: Any) -> dict[str, Any]:
    """One set's report.json over every row of the recipe, also rows run separately or left out this time."""
    from training.evaluate import write_report

    return write_report(recipe.file(f"eval/{label}"), eval_row_names(recipe), tasks, options)


def _check_student_registered(recipe: Recipe, models: list[str]) -> None:
    """Rows name the student by the registry name its export gave it; on a machine where the export stage has not
    run, say how to get it there instead of failing on an unknown model after the sets are written."""
    from tui_agent.models.registry import load_registry

    name = recipe.export.get("name")
    if not name or name not in models or name in load_registry():
        return
    stages = "export" if recipe.file("sft").is_dir() else "sft,export"
    how = f"`tui-agent train run {recipe.path} --only {stages}` registers it"
    raise RecipeError(f"the student {name!r} is not in the model registry: {how}")


def eval_models(recipe: Recipe) -> tuple[list[str], list[tuple[str, int]]]:
    """The [eval] models (``@student`` is the exported student's registry name), and the (model, SAG size) pairs
    given as tables, e.g. one SAG row for the student only."""
    name = recipe.export.get("name")

    def model(entry: Any) -> str:
        return str(name) if entry == "@student" and name else str(entry)

    entries = recipe.eval.get("models", ["@student"])
    models = [model(m) for m in entries if not isinstance(m, dict)]
    extra = [(model(m["model"]), int(m.get("sag", 1))) for m in entries if isinstance(m, dict)]
    return models, extra


def eval_rows(recipe: Recipe) -> list:
    """The (model, SAG size) rows of the recipe's evaluation, in order."""
    from training.evaluate import config_pairs

    models, extra = eval_models(recipe)
    return config_pairs(models, recipe.eval.get("sag", [1]), extra)


def eval_row_names(recipe: Recipe) -> list[str]:
    """The rows' names, as the reports and `train status` show them (e.g. ``gemma3-270m-agent-sag4``)."""
    from training.evaluate import config_name

    return [config_name(ref, sag) for ref, sag in eval_rows(recipe)]


def eval_set_name(item: dict[str, Any]) -> str:
    return str(item.get("name") or Path(str(item.get("source") or "codebase")).stem)


def eval_tasks(recipe: Recipe, item: dict[str, Any]) -> list:
    """One evaluation set: a task file (``source``, with load_tasks' options) or codebase tasks made from held-out
    packages (``codebase = [{ root = "tomlkit", n = 34 }, ...]``), never from what the teacher saw."""
    from training.tasks import load_tasks

    if "codebase" in item:
        from training.codebase_tasks import generate_codebase_tasks

        trained = {str(c["root"]) for c in recipe.tasks.get("codebase", [])}
        tasks: list = []
        for part in item["codebase"]:
            root = str(part["root"])
            if root in trained:
                raise RecipeError(f"{recipe.path}: [eval] codebase {root!r} is also a training source")
            tasks += generate_codebase_tasks(
                recipe.resolve(root), n=int(part.get("n", 50)), seed=int(part.get("seed", 0))
            )
        return tasks
    if "source" not in item:
        raise RecipeError(f"{recipe.path}: an [eval] set needs source = ... or codebase = [...]")
    options = {k: v for k, v in item.items() if k not in ("source", "name")}
    return load_tasks(recipe.resolve(str(item["source"])), **options)


RUNNERS: dict[str, Callable[[Recipe, Any, Callable[[str], None]], None]] = {
    "tasks": _tasks,
    "generate": _generate,
    "filter": _filter,
    "sft": _sft,
    "export": _export,
    "eval": _eval,
}

"""`tui-agent train <stage>` and `tui-agent eval`: the distillation pipeline, one stage a command.

Each stage reads the previous stage's file and writes its own, resumes when run again, and shows a progress bar.
Only typer is imported here; each command loads its stage (and torch, transformers, llama.cpp) when it runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import typer

train_app = typer.Typer(
    name="train",
    help=(
        "Distil a teacher agent into a small student of your own: tasks -> generate -> filter -> sft -> export "
        "-> eval, or all of them from one recipe with `train run RECIPE.toml`.\n\n"
        'Needs the training extra: pip install "tui-agent\\[train]".'
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)

EXIT_ERROR = 2


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
    app.command("eval", help=EVAL_HELP, epilog=EVAL_EPILOG)(eval_command)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_ERROR)


@contextlib.contextmanager
def _bar(description: str) -> Iterator:
    """A rich progress bar; yields a ``progress(done, total)`` callback for the stage functions."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Every known failure of a stage becomes one line and exit code 2; Ctrl-C (or SIGTERM, as schedulers and
    `kill` send it) stops the stage cleanly and says what was kept."""
    import signal
    import threading

    known = _known_errors()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    except KeyboardInterrupt:
        typer.echo("Interrupted: everything finished so far is saved; run the same command again to resume.", err=True)
        raise typer.Exit(130) from None
    except known as exc:
        raise _fail(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) from None
    except ImportError as exc:
        raise _fail(f'{exc}; install the training extra: pip install "tui-agent[train]"') from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _known_errors() -> tuple[type[BaseException], ...]:
    from tui_agent.agent.trajectory import TrajectoryError
    from tui_agent.config import ConfigError
    from tui_agent.models.base import ModelError

    errors: list[type[BaseException]] = [TrajectoryError, ConfigError, ModelError, FileNotFoundError]
    for module, name in (
        ("training.tasks", "TaskError"),
        ("training.generate", "GenerateError"),
        ("training.evaluate", "EvalError"),
        ("training.sft", "SFTError"),
        ("training.export", "ExportError"),
        ("training.recipe", "RecipeError"),
        ("training.codebase_tasks", "CodebaseError"),
    ):
        try:
            errors.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


# -- tasks ---------------------------------------------------------------------------------------------------
@train_app.command("tasks")
def tasks_command(
    out: Path = typer.Option(..., "--out", "-o", help="Task file to write (JSON lines)."),
    source: list[str] = typer.Option(
        [], "--from", help="JSONL file, Hugging Face dataset name or local dataset directory (repeatable)."
    ),
    codebase: list[str] = typer.Option(
        [], "--codebase", help="A repository directory or an installed package to make codebase tasks from."
    ),
    limit: int | None = typer.Option(None, "--limit", "-n", help="Tasks per --from source (first N)."),
    offset: int = typer.Option(0, "--offset", help="Skip the first N tasks of each --from source."),
    levels: str | None = typer.Option(None, "--levels", help="MATH levels to keep, e.g. 2,3."),
    split: str | None = typer.Option(None, "--split", help="Dataset split (Hugging Face datasets)."),
    per_codebase: int = typer.Option(50, "--per-codebase", help="Codebase tasks per --codebase."),
    seed: int = typer.Option(0, "--seed", help="Seed for the choice of codebase tasks."),
    fix_bugs: int = typer.Option(0, "--fix-bugs", help="Add N fix-the-bug tasks (generated repositories)."),
    arithmetic: int = typer.Option(
        0, "--arithmetic", help="Add N GSM-style arithmetic word problems (from templates, exact answers)."
    ),
) -> None:
    """Build a task set: questions with checkable answers, from task files, datasets and real codebases.

    Codebase tasks are made from the code itself (where is X defined, what are f's parameters, which functions call
    g, what does this snippet print, how many classes derive from C), with answers computed by parsing and running
    the code, so they are always right. Fix-the-bug tasks are small repositories with a one-line bug in a real
    function and a failing test; they are solved when the tests pass. Arithmetic tasks are word problems and
    computations drawn from templates (training/prompts/arithmetic.jsonl), as many as asked, answers exact.
    """
    if not source and not codebase and fix_bugs <= 0 and arithmetic <= 0:
        raise _fail(
            "nothing to read: give --from FILE_OR_DATASET, --codebase DIR_OR_PACKAGE, --fix-bugs N and/or "
            "--arithmetic N"
        )
    with _errors():
        from training.tasks import load_tasks, write_tasks

        tasks = []
        wanted = {int(x) for x in levels.split(",")} if levels else None
        for item in source:
            loaded = load_tasks(item, split=split, limit=limit, offset=offset, levels=wanted)
            typer.echo(f"{item}: {len(loaded)} tasks", err=True)
            tasks.extend(loaded)
        if codebase:
            from training.codebase_tasks import generate_codebase_tasks

            for root in codebase:
                with _bar(f"codebase tasks from {root}") as progress:
                    made = generate_codebase_tasks(root, n=per_codebase, seed=seed, progress=progress)
                typer.echo(f"{root}: {len(made)} codebase tasks", err=True)
                tasks.extend(made)
        if fix_bugs > 0:
            from training.fixbug_tasks import generate_fixbug_tasks

            made = generate_fixbug_tasks(fix_bugs, seed=seed)
            typer.echo(f"{len(made)} fix-the-bug tasks", err=True)
            tasks.extend(made)
        if arithmetic > 0:
            from training.arithmetic_tasks import generate_arithmetic_tasks

            made = generate_arithmetic_tasks(arithmetic, seed=seed)
            typer.echo(f"{len(made)} arithmetic tasks", err=True)
            tasks.extend(made)
        count = write_tasks(tasks, out)
    typer.echo(f"wrote {count} tasks to {out}")


# -- generate ------------------------------------------------------------------------------------------------
@train_app.command("generate")
def generate_command(
    tasks: Path = typer.Argument(..., help="Task file (from `train tasks`, or any JSONL of id/question/answer)."),
    out: Path = typer.Option(..., "--out", "-o", help="Trajectory file to append to (resumes when it exists)."),
    teacher: str = typer.Option(
        ..., "--teacher", "-t", help="Registry name or GGUF path; with --endpoint, the model name the server serves."
    ),
    endpoint: str | None = typer.Option(
        None,
        "--endpoint",
        help="OpenAI-compatible base URL (vLLM, llama.cpp server, a hosted API), e.g. http://127.0.0.1:8000/v1.",
    ),
    api_key: str | None = typer.Option(None, "--api-key", envvar="OPENAI_API_KEY", help="Key for the endpoint."),
    chat_format: str | None = typer.Option(
        None,
        "--chat-format",
        help="chatml | gemma: render prompts locally and use the completions API (exact prompts).",
    ),
    ftp: bool = typer.Option(False, "--ftp", help="First-thought prefix: the teacher's own plan opens the first step."),
    concurrency: int = typer.Option(1, "--concurrency", "-j", help="Tasks at once (an HTTP teacher serves them)."),
    max_steps: int = typer.Option(5, "--max-steps", help="Steps before a forced final answer."),
    sag: int = typer.Option(1, "--sag", help="Candidate steps sampled per step (self-consistent action generation)."),
    samples: int = typer.Option(1, "--samples", help="Trajectories per task (different seeds)."),
    temperature: float = typer.Option(0.0, "--temperature", help="Sampling temperature."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Tokens per step."),
    limit: int | None = typer.Option(None, "--limit", "-n", help="Only the first N tasks."),
    n_ctx: int = typer.Option(8192, "--n-ctx", help="Context of a local teacher."),
    web: bool = typer.Option(False, "--web/--no-web", help="Give the teacher web_search and visit_page."),
) -> None:
    """Run a teacher agent over a task set with the app's own loop and prompt; one trajectory line per task.

    Stopped runs resume where they were: finished tasks are never run or written twice.
    """
    if concurrency < 1 or max_steps < 1 or sag < 1 or samples < 1:
        raise _fail("--concurrency, --max-steps, --sag and --samples must be at least 1")
    with _errors():
        from training.generate import GenerateOptions, generate
        from training.tasks import load_tasks
        from training.teacher import open_teacher

        task_list = load_tasks(tasks, limit=limit)
        model = open_teacher(teacher, endpoint=endpoint, api_key=api_key, chat_format=chat_format, n_ctx=n_ctx)
        if not endpoint and concurrency > 1:
            typer.echo("note: a local teacher runs one task at a time (--concurrency ignored)", err=True)
            concurrency = 1
        options = GenerateOptions(
            max_steps=max_steps,
            sag=sag,
            temperature=temperature,
            max_tokens=max_tokens,
            web=web,
            ftp=ftp,
            concurrency=concurrency,
            samples=samples,
        )
        with _bar(f"teacher {teacher}") as progress:
            summary = generate(task_list, out, model, options, progress=progress)
    typer.echo(
        f"wrote {summary.written} trajectories to {out} ({summary.answered} answered); "
        f"{summary.skipped} already there, {summary.failed} failed (retried on the next run)"
    )


# -- filter --------------------------------------------------------------------------------------------------
@train_app.command("filter")
def filter_command(
    trajectories: Path = typer.Argument(..., help="Trajectory file from `train generate`."),
    out: Path = typer.Option(..., "--out", "-o", help="File of the kept trajectories."),
    drop_recovered: bool = typer.Option(
        False,
        "--drop-recovered",
        help="Also drop runs that hit an execution error (kept by default: they teach repair).",
    ),
) -> None:
    """Keep the trajectories a student should learn from: correct answers, no format errors, no step-limit stops."""
    with _errors():
        from rich.console import Console

        from training.filter import filter_file, filter_table, source_table

        result = filter_file(trajectories, out, keep_recovered=not drop_recovered)
        Console().print(filter_table(result))
        Console().print(source_table(result))
    typer.echo(f"kept {len(result.kept)} trajectories in {out}")


# -- sft -----------------------------------------------------------------------------------------------------
@train_app.command("sft")
def sft_command(
    trajectories: Path = typer.Argument(..., help="Kept trajectories (from `train filter`)."),
    student: str = typer.Option(..., "--student", "-s", help="GGUF file, Hugging Face directory or hub id."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory: checkpoints and the final adapter."),
    r: int = typer.Option(64, "--r", help="LoRA rank."),
    alpha: int = typer.Option(128, "--alpha", help="LoRA alpha."),
    dropout: float = typer.Option(0.05, "--dropout", help="LoRA dropout."),
    lr: float = typer.Option(2e-4, "--lr", help="Learning rate."),
    epochs: float = typer.Option(2.0, "--epochs", help="Epochs over the trajectories."),
    batch: int = typer.Option(8, "--batch", help="Effective batch (per device x accumulation x processes)."),
    max_length: int = typer.Option(4096, "--max-length", help="Longer trajectories are left out whole."),
    max_steps: int = typer.Option(-1, "--max-steps", help="Stop after N optimizer steps (overrides --epochs)."),
    save_steps: int = typer.Option(50, "--save-steps", help="Checkpoint every N steps."),
    system_prompt: Path | None = typer.Option(
        None, "--system-prompt", help="Train under this system prompt (a file) instead of the teacher's."
    ),
    prompt_style: str = typer.Option(
        "full",
        "--prompt-style",
        help="compact: the teacher's prompt without its few-shot examples; student: two sentences, "
        "the tools' signatures and the repo map (shortest: for a distilled student).",
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore checkpoints in --out and start over."),
) -> None:
    """LoRA fine-tuning on the assistant turns of the trajectories (TRL + PEFT); resumes from checkpoints.

    For several GPUs or processes, run the same stage through accelerate, e.g.
    `accelerate launch --config_file training/configs/multi-gpu.yaml -m training.sft ...`.
    """
    with _errors():
        from training.sft import SFTSettings, train_sft

        settings = SFTSettings(
            lora_r=r,
            lora_alpha=alpha,
            lora_dropout=dropout,
            learning_rate=lr,
            epochs=epochs,
            effective_batch=batch,
            max_length=max_length,
            max_steps=max_steps,
            save_steps=save_steps,
            system_prompt=system_prompt.read_text(encoding="utf-8") if system_prompt else None,
            prompt_style=prompt_style,
        )
        with _bar(f"training {Path(student).name}") as progress:
            summary = train_sft(trajectories, student, out, config=settings, progress=progress, resume=not fresh)
    typer.echo(f"adapter saved in {summary.get('adapter_dir', out)}")


# -- export --------------------------------------------------------------------------------------------------
@train_app.command("export")
def export_command(
    adapter: Path = typer.Argument(..., help="PEFT adapter directory (from `train sft`, or a downloaded one)."),
    out: Path = typer.Option(..., "--out", "-o", help="GGUF adapter file to write."),
    base: str | None = typer.Option(
        None, "--base", help="The base model (registry name or GGUF): checks shapes; needed to --register."
    ),
    register: str | None = typer.Option(
        None, "--register", help="Add a model of this name (base + adapter) to your models.toml."
    ),
    dtype: str = typer.Option("f16", "--dtype", help="f16 or f32."),
) -> None:
    """Write a LoRA adapter as a GGUF adapter that llama.cpp applies at load time; optionally register it."""
    if register and not base:
        raise _fail("--register needs --base (the model the adapter was trained on)")
    with _errors():
        from training.export import export_adapter, register_model, trained_prompt_style

        base_gguf = _base_file(base) if base else None
        result = export_adapter(adapter, out, base_gguf=base_gguf, dtype=dtype)
        typer.echo(
            f"wrote {result.path} ({result.architecture}, {result.tensors} adapted matrices, rank {result.rank})"
        )
        if register:
            where = register_model(register, base, result.path, prompt=trained_prompt_style(adapter))
            typer.echo(f'registered {register} in {where}: tui-agent ask --model {register} "..."')


def _base_file(base: str) -> Path:
    from tui_agent.models.loader import looks_like_path, resolve_model_file
    from tui_agent.models.registry import load_registry

    if looks_like_path(base):
        return Path(base).expanduser()
    return resolve_model_file(load_registry().get(base))


# -- eval ----------------------------------------------------------------------------------------------------
EVAL_HELP = (
    "Evaluate models as agents on a task set, side by side: accuracy (95% interval), steps, parse failures, "
    "tokens and seconds per task. Resumable; every trajectory is kept in --out."
)
EVAL_EPILOG = (
    "Models: a registry name, a GGUF path, NAME+ADAPTER.gguf for a base with a LoRA adapter, or NAME+none for a "
    "registry model without its adapter.\n\n"
    "  tui-agent eval gsm.jsonl -m qwen2.5-coder-0.5b -m gemma3-270m --sag 1,4 -n 50 --out runs/eval\n\n"
    "A model behind a server with parallel slots (llama.cpp's `llama-server -np 4`), 4 tasks at once:\n\n"
    "  tui-agent eval gsm.jsonl -m teacher.gguf --endpoint http://127.0.0.1:8080/v1 --chat-format chatml -j 4"
)


def eval_command(
    tasks: Path = typer.Argument(..., help="Task file (JSONL)."),
    model: list[str] = typer.Option(..., "--model", "-m", help="A model to evaluate (repeatable)."),
    out: Path = typer.Option(Path("eval-runs"), "--out", "-o", help="Directory of trajectories and report.json."),
    sag: str = typer.Option("1", "--sag", help="Comma-separated SAG sizes, e.g. 1,4."),
    limit: int | None = typer.Option(None, "--limit", "-n", help="Only the first N tasks."),
    offset: int = typer.Option(0, "--offset", help="Skip the first N tasks."),
    max_steps: int = typer.Option(5, "--max-steps", help="Steps before a forced final answer."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Tokens per step."),
    n_ctx: int = typer.Option(4096, "--n-ctx", help="Context size."),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="OpenAI-compatible base URL serving the models (each --model is a served name)."
    ),
    chat_format: str | None = typer.Option(
        None, "--chat-format", help="chatml | gemma: with --endpoint, render prompts locally (exact prompts)."
    ),
    api_key: str | None = typer.Option(None, "--api-key", envvar="OPENAI_API_KEY", help="Key for the endpoint."),
    concurrency: int = typer.Option(
        1, "--concurrency", "-j", help="Tasks at once (with --endpoint; seconds per task then share the machine)."
    ),
    prompt_style: str | None = typer.Option(
        None,
        "--prompt-style",
        help="With --endpoint: the prompt the served model was trained under (full|compact|student).",
    ),
) -> None:
    with _errors():
        from rich.console import Console

        from training.evaluate import endpoint_loader, evaluate, render_table
        from training.generate import GenerateOptions
        from training.tasks import load_tasks

        if concurrency < 1:
            raise _fail("--concurrency must be at least 1")
        if concurrency > 1 and not endpoint:
            raise _fail("--concurrency needs --endpoint: a local model runs one task at a time")
        if prompt_style and not endpoint:
            raise _fail("--prompt-style needs --endpoint: a local model's registry entry says its prompt")
        from tui_agent.agent.prompt import PROMPT_STYLES

        if prompt_style and prompt_style not in PROMPT_STYLES:
            raise _fail(f"unknown --prompt-style {prompt_style!r} (expected one of {', '.join(PROMPT_STYLES)})")
        sizes = [int(s) for s in sag.split(",") if s.strip()]
        task_list = load_tasks(tasks, limit=limit, offset=offset)
        options = GenerateOptions(max_steps=max_steps, max_tokens=max_tokens)
        with _bar("evaluating") as bar:
            report = evaluate(
                model,
                task_list,
                out,
                sags=sizes,
                options=options,
                n_ctx=n_ctx,
                progress=lambda name, done, total: bar(done, total),
                load=endpoint_loader(endpoint, chat_format=chat_format, api_key=api_key, prompt_style=prompt_style)
                if endpoint
                else None,
                concurrency=concurrency,
            )
        Console().print(render_table(report, title=f"{tasks.name}: {len(task_list)} tasks"))
    typer.echo(f"report: {out / 'report.json'}")


train_app.command("eval", help=EVAL_HELP, epilog=EVAL_EPILOG)(eval_command)


# -- run -----------------------------------------------------------------------------------------------------
@train_app.command("run")
def run_command(
    recipe: Path = typer.Argument(..., help="Recipe file (TOML): tasks, teacher, filter, student, LoRA, export, eval."),
    only: str | None = typer.Option(None, "--only", help="Comma-separated stages to run (default: all)."),
    rows: str | None = typer.Option(
        None,
        "--rows",
        help="Comma-separated evaluation rows to run, as `train status` names them (e.g. gemma3-270m-agent-sag1); "
        "the others are left for later or for `tui-agent eval --endpoint`. The report still lists every row.",
    ),
) -> None:
    """Every stage from one recipe file; each stage resumes, so running it again continues where it stopped."""
    with _errors():
        from training.recipe import load_recipe, run_recipe

        plan = load_recipe(recipe)
        run_recipe(
            plan,
            only=set(only.split(",")) if only else None,
            bar=_bar,
            echo=lambda text: typer.echo(text),
            rows={r.strip() for r in rows.split(",") if r.strip()} if rows else None,
        )


@train_app.command("report")
def report_command(
    recipe: Path = typer.Argument(..., help="Recipe file (TOML), as given to `train run`."),
) -> None:
    """Rewrite and print each held-out set's report (and failures.md: a trajectory of each way a row's runs
    failed) over every eval row of a recipe; runs no model.

    For rows that `tui-agent eval --endpoint` finished beside the recipe (a served teacher), or after the answer
    check changed: the trajectories are judged again, and only this code version's are averaged.
    """
    with _errors():
        from rich.console import Console

        from training.evaluate import render_table
        from training.recipe import eval_reports, load_recipe

        plan = load_recipe(recipe)
        reports = eval_reports(plan)
        if not reports:
            raise _fail(f"no held-out set written yet: run `tui-agent train run {recipe} --only eval` first")
        console = Console()
        for label, report in reports:
            console.print(render_table(report, title=f"{plan.name}: {label} ({report['tasks']} tasks)"))
            folder = plan.file(f"eval/{label}")
            console.print(f"  {folder / 'report.json'}; how the wrong runs failed: {folder / 'failures.md'}")


@train_app.command("status")
def status_command(
    recipe: Path = typer.Argument(..., help="Recipe file (TOML), as given to `train run`."),
    target: int | None = typer.Option(None, "--target", help="Kept trajectories wanted: adds the teacher-hours left."),
) -> None:
    """Where a recipe's run stands, stage by stage; reads the work directory only.

    Trajectories, kept runs per task source and teacher-hour, checkpoint, adapter, this code version's eval rows.
    """
    with _errors():
        from rich.console import Console

        from training.recipe import load_recipe
        from training.status import recipe_status, status_table

        plan = load_recipe(recipe)
        Console().print(status_table(recipe_status(plan, target=target), title=f"{plan.name} ({plan.workdir})"))

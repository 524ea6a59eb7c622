"""`tui-agent models list | pull | path | rm`: what models exist, which are on this machine, and getting them.

Only typer and the standard library are imported here; the model modules load inside each command.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

models_app = typer.Typer(
    name="models",
    help="List, download and remove models (registry: models.toml, plus your own in the config directory).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(models_app, name="models")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _spec(name: str):
    from tui_agent.config import ConfigError
    from tui_agent.models.base import ModelError
    from tui_agent.models.registry import load_registry

    try:
        return load_registry().get(name)
    except (ConfigError, ModelError) as exc:
        raise _fail(str(exc)) from None


def _human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


@models_app.command("list")
def list_models() -> None:
    """Show every registry model, whether it is on this machine, its size and its LoRA adapter (if any)."""
    from tui_agent.config import ConfigError
    from tui_agent.models import hub
    from tui_agent.models.registry import load_registry

    try:
        registry = load_registry()
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    rows = []
    for spec in registry:
        size = hub.local_size(spec)
        if size:
            local, shown = "yes", _human(size)
        else:
            local = "embedded" if spec.package else "no"
            shown = _human(spec.size) if spec.size else "-"
        adapter = "-"
        if spec.lora:
            adapter = Path(spec.lora).name if Path(spec.lora).is_file() else f"{Path(spec.lora).name} (missing)"
        rows.append((spec.name, local, shown, adapter, spec.license, spec.description))
    header = ("NAME", "LOCAL", "SIZE", "ADAPTER", "LICENSE", "DESCRIPTION")
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(5)]
    room = max(20, shutil.get_terminal_size((100, 24)).columns - sum(widths) - 10)
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)]
        text = row[5] if len(row[5]) <= room else row[5][: room - 1] + "…"
        typer.echo("  ".join([*cells, text]).rstrip())


@models_app.command("pull")
def pull(
    name: str = typer.Argument(..., help="Registry name (see `tui-agent models list`)."),
    force: bool = typer.Option(False, "--force", help="Download again even if a file is already there."),
) -> None:
    """Download a model (resumes a dropped connection), verify it, and print its path."""
    from tui_agent.models import hub
    from tui_agent.models.base import ModelError

    spec = _spec(name)
    try:
        path = hub.pull(spec, force=force, on_status=lambda msg: typer.echo(msg, err=True))
    except ModelError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        raise _fail(
            f"interrupted; nothing half-written was kept. Run `tui-agent models pull {name}` again.", 130
        ) from None
    typer.echo(str(path))


@models_app.command("path")
def path(name: str = typer.Argument(..., help="Registry name.")) -> None:
    """Print the local file of a model (for llama.cpp tools or --model)."""
    from tui_agent.models.base import ModelError
    from tui_agent.models.loader import resolve_model_file

    spec = _spec(name)
    try:
        typer.echo(str(resolve_model_file(spec)))
    except ModelError as exc:
        raise _fail(str(exc)) from None


@models_app.command("rm")
def rm(name: str = typer.Argument(..., help="Registry name.")) -> None:
    """Delete a model's downloaded files."""
    from tui_agent.models import hub

    spec = _spec(name)
    removed = hub.remove(spec)
    if not removed:
        typer.echo(f"{name} is not on this machine; nothing to remove.", err=True)
        return
    for item in removed:
        typer.echo(f"removed {item}")

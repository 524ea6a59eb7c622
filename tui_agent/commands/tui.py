"""The interactive session (``tui-agent`` with no command, ``--resume``) and ``tui-agent sessions``."""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    """Add ``sessions`` to the main app (the session itself opens from the root callback)."""
    app.command("sessions", help="List saved sessions (resume one with tui-agent --resume ID).")(sessions)


def resume_default(argv: list[str]) -> list[str]:
    """Let ``--resume`` stand alone for the latest session (click options cannot have an optional value)."""
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--resume" and (i + 1 == len(args) or args[i + 1].startswith("-")):
            args.insert(i + 1, "latest")
            break
    return args


def sessions(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="Show at most this many, newest first."),
) -> None:
    """List saved sessions, newest first."""
    import datetime as dt

    from rich.console import Console
    from rich.table import Table

    from tui_agent.sessions import SessionError, SessionStore

    try:
        found = SessionStore().list(limit=limit)
    except SessionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in found], indent=2))
        return
    console = Console()
    if not found:
        console.print("No saved sessions yet. Start one with [bold]tui-agent[/bold].")
        return
    table = Table(title="Saved sessions", title_justify="left")
    for column in ("id", "updated", "runs", "steps", "model", "title", "directory"):
        table.add_column(column, no_wrap=column in ("id", "updated"))
    for s in found:
        when = dt.datetime.fromtimestamp(s.updated).strftime("%Y-%m-%d %H:%M")
        table.add_row(s.id, when, str(s.runs), str(s.steps), s.model, s.title or "(untitled)", s.workspace)
    console.print(table)
    console.print("Resume one with [bold]tui-agent --resume ID[/bold] (or --resume latest).")


def open_session(model: str | None = None, resume: str | None = None) -> None:
    """Open the interactive session in the current directory."""
    from pathlib import Path

    from tui_agent.config import ConfigError, Settings
    from tui_agent.sessions import SessionError, SessionStore

    try:
        settings = Settings.load()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if model:
        settings.model = model
    store = None
    try:
        store = SessionStore()
        if resume is not None:
            resume = store.resolve(resume).id
    except SessionError as exc:
        if resume is not None:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        # A broken sessions file must not keep anyone from working: the session says it cannot be saved.

    from tui_agent.tui.app import AgentApp

    AgentApp(settings, Path.cwd(), store=store, resume=resume).run()

"""`tui-agent undo [N]`: take back the agent's last N file changes in this workspace, newest first.

Only files the agent changed are touched; a file edited since the agent's change is left alone and the undo stops
there (see ``tui_agent.undo``). ``--list`` shows what can be undone.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("undo", help="Take back the agent's last N file changes here, newest first (--list shows them).")(undo)


def undo(
    steps: int = typer.Argument(1, help="How many changes to take back (newest first)."),
    list_: bool = typer.Option(False, "--list", "-l", help="List the changes that can be undone; change nothing."),
    workspace: Path | None = typer.Option(None, "--workspace", help="The workspace (default: here)."),
) -> None:
    from tui_agent.undo import UndoError, UndoStore

    root = (workspace or Path.cwd()).expanduser()
    if not root.is_dir():
        typer.echo(f"error: --workspace {root} is not a directory", err=True)
        raise typer.Exit(2)
    store = UndoStore(root)
    if list_:
        changes = store.changes()
        if not changes:
            typer.echo("Nothing to undo.")
        for change in reversed(changes):
            when = dt.datetime.fromtimestamp(change.time).strftime("%Y-%m-%d %H:%M:%S")
            what = "created" if change.before is None else "deleted" if change.after is None else "changed"
            typer.echo(f"#{change.id}  {when}  {what}  {store.shown(Path(change.path))}")
        return
    try:
        done = store.undo(steps)
    except UndoError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for line in done:
        typer.echo(line[0].upper() + line[1:] + ".")

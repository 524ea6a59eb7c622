"""The ``tui-agent`` command. Each sub-command lives in ``tui_agent.commands.<name>`` and imports its heavy
libraries inside the command function, so ``tui-agent --help`` stays instant."""

from __future__ import annotations

import typer

from tui_agent import __version__
from tui_agent.commands import MODEL_HELP, ask, doctor, index, models, train, tui, undo

app = typer.Typer(
    name="tui-agent",
    help=(
        "A coding agent in your terminal, on a small local model. It searches your code and the web and runs "
        "Python in a Jupyter kernel.\n\n"
        "Run it with no command to open the interactive session in the current directory."
    ),
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

for module in (tui, ask, models, index, undo, train, doctor):
    module.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tui-agent {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
    resume: str | None = typer.Option(
        None, "--resume", help="Resume a saved session: its id, or 'latest'.", show_default=False
    ),
    model: str | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
) -> None:
    if ctx.invoked_subcommand is None:
        tui.open_session(model=model, resume=resume)


def main() -> None:
    import sys

    app(args=tui.resume_default(sys.argv[1:]))


if __name__ == "__main__":
    main()

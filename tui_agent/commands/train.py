"""`tui-agent train ...` and `tui-agent eval`: the distillation pipeline lives in the ``training`` package, whose
command module imports only typer; each stage loads torch, transformers or llama.cpp when it runs."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from training import cli

    cli.register(app)

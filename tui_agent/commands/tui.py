"""`tui-agent tui` (placeholder until its module lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""


def open_session(model: str | None = None, resume: str | None = None) -> None:
    """Open the interactive session."""
    raise typer.Exit(0)

"""`tui-agent doctor`: what this machine gives tui-agent's safety promises, checked rather than assumed.

Private mode and trial runs use Linux namespaces where the system allows them and weaker fallbacks elsewhere;
this says which is in force here, and which environment variables the kernel will not see.
"""

from __future__ import annotations

import json
import os
import platform
import sys

import typer


def register(app: typer.Typer) -> None:
    """Add this module's command to the main app."""
    app.command("doctor")(doctor_command)


def doctor_command(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text.")) -> None:
    """Show how private mode and SAG trial runs are isolated on this machine, and which secrets the kernel gets."""
    from tui_agent.config import ConfigError, Settings
    from tui_agent.tools.sandbox import describe, is_secret

    try:
        settings = Settings.load()
    except ConfigError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from exc
    hidden = sorted(name for name in os.environ if is_secret(name))
    report = {
        "platform": f"{platform.system()} {platform.release()} ({platform.machine()}), Python {sys.version.split()[0]}",
        **describe(),
        "kernel secrets": (
            "passed to the kernel (kernel_secrets = true)"
            if settings.kernel_secrets
            else ("kept from the kernel: " + ", ".join(hidden) if hidden else "none in this environment")
        ),
        "web": "on" if settings.web else "off (private mode)",
    }
    if as_json:
        typer.echo(json.dumps(report))
        return
    width = max(map(len, report)) + 2
    for key, value in report.items():
        typer.echo(f"{key + ':':<{width}}{value}")

"""Slash commands of the interactive session: their names, arguments and help, and parsing of a typed line.

Kept free of Textual so completion and parsing are testable on their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_agent.config import SAG_MAX


@dataclass(frozen=True)
class SlashCommand:
    name: str
    args: str
    help: str


COMMANDS: tuple[SlashCommand, ...] = (
    SlashCommand("help", "", "show commands and keys"),
    SlashCommand("model", "[NAME|PATH]", "list models, or switch to another one"),
    SlashCommand("clear", "", "forget the conversation and start a new session"),
    SlashCommand("sag", "N", "sample N candidate steps and keep the consistent one (1 = off)"),
    SlashCommand("mode", "[ask|auto|read-only]", "show, cycle or set the approval mode"),
    SlashCommand("index", "", "refresh the code index of this directory"),
    SlashCommand("undo", "[N]", "take back the agent's last N file changes (default 1)"),
    SlashCommand("save", "[TITLE]", "name this session (it is saved as it goes)"),
    SlashCommand("sessions", "", "list saved sessions"),
    SlashCommand("resume", "[ID]", "resume a saved session (latest if no id)"),
    SlashCommand("context", "", "show how much of the model's context is used"),
    SlashCommand("quit", "", "leave tui-agent"),
)

BY_NAME = {c.name: c for c in COMMANDS}
MODES = ("ask", "auto", "read-only")


class SlashError(Exception):
    """A line that is not a valid slash command; the message is one line for users."""


def is_command(text: str) -> bool:
    """A line is a command when it starts with ``/`` followed by a letter (``/tmp/x`` paths are messages)."""
    stripped = text.strip()
    if not stripped.startswith("/") or "\n" in stripped:
        return False
    head = stripped[1:].split(" ", 1)[0]
    return head.isalpha()


def parse(text: str) -> tuple[str, str]:
    """Split ``/name args`` into (name, args); an unknown name is a SlashError."""
    head, _, arg = text.strip()[1:].partition(" ")
    name = head.lower()
    if name not in BY_NAME:
        matches = [c.name for c in COMMANDS if c.name.startswith(name)]
        if len(matches) == 1:
            name = matches[0]
        else:
            raise SlashError(f"unknown command /{head}: /help lists the commands")
    return name, arg.strip()


def parse_sag(arg: str) -> int:
    """The N of ``/sag N``: a whole number from 1 to SAG_MAX (the bound ``ask --sag`` and config.toml share)."""
    try:
        value = int(arg)
    except ValueError:
        raise SlashError(f"/sag needs a whole number from 1 to {SAG_MAX}, not {arg!r}") from None
    if not 1 <= value <= SAG_MAX:
        raise SlashError(f"/sag needs a whole number from 1 to {SAG_MAX}, not {value}")
    return value


def parse_mode(arg: str, current: str) -> str:
    """The mode named by ``arg``, or the next one after ``current`` when ``arg`` is empty."""
    if not arg:
        return MODES[(MODES.index(current) + 1) % len(MODES)] if current in MODES else MODES[0]
    value = arg.lower().replace("_", "-")
    if value in ("readonly", "ro"):
        value = "read-only"
    if value not in MODES:
        raise SlashError(f"/mode takes ask, auto or read-only, not {arg!r}")
    return value


def help_markdown() -> str:
    """The /help text: commands, then keys."""
    lines = ["**Commands**", ""]
    lines += [f"- `/{c.name}{' ' + c.args if c.args else ''}`: {c.help}" for c in COMMANDS]
    lines += [
        "",
        "**Keys**",
        "",
        "- `Enter` send · `Ctrl+J` or `Alt+Enter` new line (or end a line with `\\`) · `Up`/`Down` history",
        "- `Tab` accept completion · `@path` attaches a file · `/` commands",
        "- `Esc` stop the current step · `Ctrl+C` twice quits · `F2` cycles the approval mode",
    ]
    return "\n".join(lines)

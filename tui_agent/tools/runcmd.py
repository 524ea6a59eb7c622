"""``run(cmd)``: the project's own commands (tests, linters) for the model, from the kernel, in the workspace.

An argv list (or a string split like a shell would, but run without one), so quoting mistakes and shell
injection cannot happen by default; ``shell=True`` is an explicit choice. Output is captured and cut like a
cell's, and a command that runs too long is killed with its whole process group.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tui_agent.tools.cell import cut_middle, strip_ansi

MAX_OUTPUT_CHARS = 6000


def run_command(
    workspace: Path,
    cmd: str | Sequence[str],
    timeout: float = 60.0,
    shell: bool = False,
    max_chars: int = MAX_OUTPUT_CHARS,
) -> str:
    """Run ``cmd`` in the workspace; returns its exit status and its output (stdout and stderr together)."""
    if isinstance(cmd, str):
        if not cmd.strip():
            return "run: the command is empty."
        argv: str | list[str] = cmd if shell else shlex.split(cmd)
    else:
        argv = [os.fspath(part) for part in cmd]
        if not argv:
            return "run: the command is empty."
        if shell:
            argv = shlex.join(argv)
    shown = argv if isinstance(argv, str) else shlex.join(argv)
    try:
        proc = subprocess.Popen(  # noqa: S603 - running the project's commands is the point
            argv,
            cwd=str(workspace),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            shell=shell,  # noqa: S604 - only when the caller asks for a shell
            start_new_session=True,
            env=_plain_env(),
        )
    except FileNotFoundError:
        return f"run: command not found: {shown.split()[0] if shown else shown}"
    except OSError as exc:
        return f"run: {shown} could not start: {exc}"
    try:
        out, _ = proc.communicate(timeout=float(timeout))
        status = f"exit code {proc.returncode}"
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, _ = proc.communicate()
        status = f"killed after {float(timeout):g} s (timeout)"
    except BaseException:  # an interrupted cell must not leave the command running
        _kill_group(proc)
        proc.communicate()
        raise
    text = cut_middle(strip_ansi(out.decode("utf-8", errors="replace")), max_chars).rstrip()
    return f"$ {shown}\n{text}\n[{status}]" if text else f"$ {shown}\n[{status}, no output]"


def _plain_env() -> dict[str, str]:
    """The kernel's environment, asking programs for plain output (the model reads text, not colour codes)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE")}
    env.update(NO_COLOR="1", PY_COLORS="0", TERM="dumb")
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()

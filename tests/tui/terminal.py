"""Driving the real `tui-agent` command in a tmux terminal, for the smoke tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


class Terminal:
    """One tmux session running a command."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str]) -> None:
        self.name = f"tui-agent-test-{os.getpid()}-{time.monotonic_ns()}"
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", "110", "-y", "40", "-c", str(cwd),
             f"env {exports} {command}"],
            check=True,
        )  # fmt: skip

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True).stdout

    def flat(self) -> str:
        """The screen with all whitespace runs as one space, so wrapped lines read as one."""
        return " ".join(self.screen().split())

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """Wait until ``text`` is on screen (whitespace-insensitive); returns the flattened screen."""
        deadline = time.monotonic() + timeout
        needle = " ".join(text.split())
        while needle not in (screen := self.flat()):
            assert time.monotonic() < deadline, f"{text!r} never appeared:\n{screen}"
            time.sleep(0.2)
        return screen

    def type(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)
        subprocess.run(["tmux", "send-keys", "-t", self.name, "Enter"], check=True)

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def alive(self) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True).returncode == 0

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def tui_agent(*args: str) -> str:
    return " ".join([str(Path(sys.executable).with_name("tui-agent")), *args])


def dirs_env(isolated_dirs: Path) -> dict[str, str]:
    return {f"TUI_AGENT_{n}_DIR": str(isolated_dirs / n.lower()) for n in ("CONFIG", "DATA", "CACHE")}

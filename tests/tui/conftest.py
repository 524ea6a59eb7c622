"""Fixtures for the interactive session: a small workspace and apps built on a scripted model and a real kernel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.tui.fakes import ScriptedModel
from tui_agent.config import Settings
from tui_agent.sessions import SessionStore
from tui_agent.tui.app import AgentApp
from tui_agent.tui.backend import Backend

SIZE = (100, 36)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "notes.txt").write_text("The secret number is 42.\n")
    (root / "src" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    return root


@pytest.fixture
def make_app(workspace: Path) -> Callable[..., AgentApp]:
    """Build an app whose model is scripted; kernel and agent loop are the real ones."""

    def build(
        replies=(),
        *,
        mode: str = "auto",
        model: ScriptedModel | None = None,
        resume=None,
        history=(),
        store: bool = True,
        **backend,
    ) -> AgentApp:
        scripted = model or ScriptedModel(replies)
        settings = Settings(model="scripted", approval=mode, web=False, max_steps=4, cell_timeout=30.0)
        parts = {"load_model": lambda name, s: scripted, "model_names": lambda: ["scripted", "other"], **backend}
        app = AgentApp(
            settings,
            workspace,
            backend=Backend(**parts),
            store=SessionStore() if store else None,
            resume=resume,
            history=history,
        )
        app.scripted = scripted  # type: ignore[attr-defined]
        return app

    return build


async def wait_until(pilot, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Let the app run until ``condition`` holds (fails the test after ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("the app did not reach the expected state")
        await pilot.pause(0.05)


async def ready(pilot) -> None:
    await wait_until(pilot, lambda: pilot.app.agent is not None)


async def send(pilot, text: str) -> None:
    """Type a message and press Enter."""
    prompt = pilot.app.prompt
    prompt.load_text(text)
    prompt.move_cursor(prompt.document.end)
    prompt.focus()
    await pilot.press("enter")


async def finished(pilot, timeout: float = 60.0) -> None:
    await pilot.pause(0.05)
    await wait_until(pilot, lambda: not pilot.app.running, timeout)
    await pilot.pause(0.05)

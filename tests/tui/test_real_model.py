"""End to end with the real Qwen2.5-Coder-0.5B model: in Pilot, and as the real command in tmux."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tui.conftest import SIZE, finished, ready, send
from tui_agent.config import Settings
from tui_agent.sessions import SessionStore
from tui_agent.tui.app import AgentApp
from tui_agent.tui.backend import Backend
from tui_agent.tui.widgets.conversation import FinalAnswerBlock, StepBlock

pytestmark = pytest.mark.slow
QUESTION = "What is 17 * 23? Compute it with Python."


@pytest.fixture(scope="module")
def qwen(qwen05_gguf):
    from tui_agent.models.loader import load_chat_model

    model = load_chat_model(str(qwen05_gguf), n_ctx=4096)
    yield model
    close = getattr(model, "close", None)
    if callable(close):
        close()


async def test_one_exchange_with_the_real_model(qwen, workspace):
    settings = Settings(model=qwen.name, approval="auto", web=False, max_steps=3, cell_timeout=30.0)
    backend = Backend(load_model=lambda name, s: qwen)
    app = AgentApp(settings, workspace, backend=backend, store=SessionStore())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.status.context_length == qwen.context_length
        await send(pilot, QUESTION)
        await finished(pilot)
        blocks = list(app.query(StepBlock))
        assert blocks and blocks[0].streamed  # tokens were streamed into the first step
        assert any(b.code and "17" in b.code for b in blocks)
        answers = [a.answer for a in app.query(FinalAnswerBlock)]
        assert answers and "391" in answers[-1]
        assert app.status.tokens_per_second > 0 and app.status.context_used > 0
        saved = app.store.load(app.session_id)
    assert any(e["event"] == "final_answer" and "391" in str(e["answer"]) for e in saved.events)


def _screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_real_command_in_tmux(qwen05_gguf, workspace, isolated_dirs):
    """Start `tui-agent --model PATH` in a real terminal, type a question, read the answer off the screen."""
    session = f"tui-agent-smoke-{os.getpid()}"
    command = Path(sys.executable).with_name("tui-agent")
    env = {
        "TUI_AGENT_APPROVAL": "auto",
        "TUI_AGENT_WEB": "false",
        "TUI_AGENT_MAX_STEPS": "3",
        "TUI_AGENT_N_CTX": "4096",
        **{f"TUI_AGENT_{n}_DIR": str(isolated_dirs / n.lower()) for n in ("CONFIG", "DATA", "CACHE")},
    }
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "110", "-y", "45", "-c", str(workspace),
         f"env {exports} {command} --model {qwen05_gguf}"],
        check=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "ready" not in _screen(session):
            assert time.monotonic() < deadline, _screen(session)
            time.sleep(0.5)
        subprocess.run(["tmux", "send-keys", "-t", session, "-l", QUESTION], check=True)
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
        deadline = time.monotonic() + 240
        while not re.search(r"Answer ━", _screen(session)) and "Stopped after" not in _screen(session):
            assert time.monotonic() < deadline, _screen(session)
            time.sleep(1)
        screen = _screen(session)
        answer = screen[screen.index("Answer ━") :]
        assert "391" in answer, screen
        assert "Traceback" not in screen
        subprocess.run(["tmux", "send-keys", "-t", session, "C-c"], check=True)
        subprocess.run(["tmux", "send-keys", "-t", session, "C-c"], check=True)
        deadline = time.monotonic() + 30
        while subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "Ctrl+C twice did not quit"
            time.sleep(0.5)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    sessions = SessionStore(isolated_dirs / "data" / "sessions.sqlite").list()
    assert len(sessions) == 1 and sessions[0].title == QUESTION

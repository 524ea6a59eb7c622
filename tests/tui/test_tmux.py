"""The real `tui-agent` command in a real terminal (tmux): it starts, takes input, reports a missing model in
plain words, resumes a saved session, and quits on Ctrl+C twice. The model exchange itself is in test_real_model."""

from __future__ import annotations

import shutil
import time

import pytest

from tests.tui.terminal import Terminal, dirs_env, tui_agent
from tui_agent.agent import events as ev
from tui_agent.sessions import SessionStore

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def test_missing_model_in_a_real_terminal(workspace, isolated_dirs, tmp_path):
    term = Terminal(tui_agent("--model", str(tmp_path / "absent.gguf")), workspace, dirs_env(isolated_dirs))
    try:
        screen = term.wait_for("could not be loaded")
        assert "No such model file" in screen and "Traceback" not in screen
        assert "mode ask" in screen
        term.type("/help")
        term.wait_for("/quit: leave tui-agent")
        term.keys("C-c")
        term.wait_for("again to quit")
        term.keys("C-c")
        deadline = time.monotonic() + 20
        while term.alive():
            assert time.monotonic() < deadline, "Ctrl+C twice did not quit"
            time.sleep(0.2)
    finally:
        term.close()


def test_resume_in_a_real_terminal(workspace, isolated_dirs, tmp_path):
    store = SessionStore(isolated_dirs / "data" / "sessions.sqlite")
    sid = store.create(model="qwen", workspace=workspace)
    store.append(sid, {"event": "user", "text": "what is the answer to everything?"})
    store.append(sid, ev.RunStarted(task="what is the answer to everything?", model="qwen"))
    store.append(sid, ev.StepStarted(step=1))
    store.append(sid, ev.CodeReady(step=1, thought="Compute it.", code="final_answer(6 * 7)"))
    store.append(sid, ev.FinalAnswer(answer="42", steps=1))
    store.close()
    command = tui_agent("--resume", "--model", str(tmp_path / "absent.gguf"))
    term = Terminal(command, workspace, dirs_env(isolated_dirs))
    try:
        screen = term.wait_for(f"Resumed session {sid}")
        assert "what is the answer to everything?" in screen and "final_answer(6 * 7)" in screen
        assert "Answer" in screen and "42" in screen
    finally:
        term.close()

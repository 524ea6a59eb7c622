"""File changes in the interactive session: the diff is shown per file, accepted or refused there, and /undo takes
an applied change back. Pilot drives the app; the kernel, agent loop and files are real, the model is scripted."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.scripted import step
from tests.tui.conftest import SIZE, finished, ready, send, wait_until
from tests.tui.terminal import Terminal, dirs_env
from tui_agent.tui.screens.approval import ApprovalScreen
from tui_agent.tui.screens.edit_approval import EditApprovalScreen
from tui_agent.tui.widgets.conversation import StepBlock

EDIT = 'print(edit_file("src/calc.py", "a + b", "a * b"))'
ORIGINAL = "def add(a, b):\n    return a + b\n"


def replies() -> list[str]:
    return [step("Change it.", EDIT), step("Done.", "final_answer('done')")]


async def test_refused_change_is_not_written(make_app, workspace):
    app = make_app(replies(), mode="ask")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "multiply instead")
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, EditApprovalScreen))
        assert app.screen.path == "src/calc.py" and "+    return a * b" in app.screen.diff
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.press("r")
        await finished(pilot)
        text = list(app.query(StepBlock))[0].observation
        assert "The user refused the change to src/calc.py" in text
        titles = [w.border_title for w in app.query(".file-change")]
        assert titles == ["src/calc.py: refused"]
    assert (workspace / "src" / "calc.py").read_text() == ORIGINAL


async def test_auto_change_is_shown_and_undone(make_app, workspace):
    app = make_app(replies(), mode="auto")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "multiply instead")
        await finished(pilot)
        assert [w.border_title for w in app.query(".file-change")] == ["src/calc.py: written"]
        assert (workspace / "src" / "calc.py").read_text() == ORIGINAL.replace("+", "*")
        await send(pilot, "/undo")
        await wait_until(pilot, lambda: (workspace / "src" / "calc.py").read_text() == ORIGINAL)
        await send(pilot, "/undo")
        await wait_until(pilot, lambda: "nothing to undo" in " ".join(str(n.render()) for n in app.query("Notice")))


LAUNCH = """
import sys
from pathlib import Path
from tests.scripted import ScriptedModel, step
from tui_agent.config import Settings
from tui_agent.sessions import SessionStore
from tui_agent.tui.app import AgentApp
from tui_agent.tui.backend import Backend

model = ScriptedModel([step("Change it.", {edit!r}), step("Done.", "final_answer('done')")])
settings = Settings(model="scripted", approval="ask", web=False, max_steps=3, cell_timeout=30.0)
AgentApp(settings, Path(sys.argv[1]), backend=Backend(load_model=lambda n, s: model), store=SessionStore()).run()
"""


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_diff_in_a_real_terminal_and_the_user_refuses(workspace, isolated_dirs, tmp_path):
    script = tmp_path / "launch.py"
    script.write_text(LAUNCH.format(edit=EDIT))
    env = {**dirs_env(isolated_dirs), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    term = Terminal(f"{sys.executable} {script} {workspace}", workspace, env)
    try:
        term.wait_for("mode ask")
        term.type("multiply instead")
        term.wait_for("Run (r)")
        term.keys("r")
        screen = term.wait_for("wants to change src/calc.py")
        assert "- return a + b" in screen and "+ return a * b" in screen and "Refuse (n)" in screen
        term.keys("n")
        term.wait_for("Run (r)")
        term.keys("Escape")  # stop at the next step: the refused change stays in view
        screen = term.wait_for("Stopped", timeout=120)
        # the refusal is on screen: as the change's status line, or (when that scrolled up) in the observation
        assert "src/calc.py: refused" in screen or "The user refused the change to src/calc.py" in screen, screen
        assert (workspace / "src" / "calc.py").read_text() == ORIGINAL
    finally:
        term.close()

"""Snapshots of the main screens (fixed size, scripted model, real kernel; nothing time-dependent in view).

Update after an intended change with ``pytest tests/tui/test_snapshots.py --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

from tests.tui.conftest import SIZE, finished, ready, send, wait_until
from tests.tui.fakes import ScriptedModel, step
from tui_agent.tui.screens.approval import ApprovalScreen

LONG = "\\n".join(f"row {i}" for i in range(20))


def steady(app) -> None:
    app.prompt.cursor_blink = False


def test_exchange_screen(make_app, snap_compare):
    replies = [
        step("I will **print** a table of rows.", f"print('{LONG}')"),
        step("The table has 20 rows.", "final_answer('20 rows')"),
    ]
    app = make_app(model=ScriptedModel(replies, flat_count=True))

    async def run_before(pilot) -> None:
        steady(pilot.app)
        await ready(pilot)
        await send(pilot, "how many rows does the table have?")
        await finished(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_approval_screen(make_app, snap_compare):
    replies = [step("Count the files.", "import os\nprint(len(os.listdir('.')))")]
    app = make_app(model=ScriptedModel(replies, flat_count=True), mode="ask")

    async def run_before(pilot) -> None:
        steady(pilot.app)
        await ready(pilot)
        await send(pilot, "how many files are here?")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ApprovalScreen))

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_and_completion_screen(make_app, snap_compare):
    app = make_app(model=ScriptedModel([], flat_count=True))

    async def run_before(pilot) -> None:
        steady(pilot.app)
        await ready(pilot)
        await send(pilot, "/help")
        await pilot.press("slash", "m", "o")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)

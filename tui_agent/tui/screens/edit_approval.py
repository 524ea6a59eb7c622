"""The prompt shown before a proposed file change is written in ``ask`` mode: its coloured diff, write or refuse.

One screen per file, so the user accepts or refuses each file of a step on its own. Esc refuses and stops the run;
the app also closes this screen whenever a run is stopped, and a closed screen means refused.
"""

from __future__ import annotations

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class EditApprovalScreen(ModalScreen[bool]):
    """Ask whether to write one file change."""

    BINDINGS = [
        Binding("y", "decide(True)", "Write"),
        Binding("n", "decide(False)", "Refuse"),
        Binding("escape", "stop_run", "Stop", show=False),
    ]

    def __init__(self, step: int, path: str, diff: str) -> None:
        super().__init__(classes="approval-screen")
        self.step = step
        self.path = path
        self.diff = diff

    def compose(self) -> ComposeResult:
        with Vertical(id="approval"):
            yield Label(f"Step {self.step} wants to change {self.path}:", id="approval-title")
            with VerticalScroll(id="approval-code"):
                yield Static(Syntax(self.diff.rstrip(), "diff", theme="monokai", word_wrap=True), id="edit-diff")
            with Horizontal(id="approval-buttons"):
                yield Button("Write (y)", id="write", variant="success")
                yield Button("Refuse (n)", id="refuse", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#write", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "write")

    def action_decide(self, accept: bool) -> None:
        self.dismiss(bool(accept))

    def action_stop_run(self) -> None:
        """Esc: the change is refused and the whole run stops (the conversation stays)."""
        self.dismiss(False)
        stop = getattr(self.app, "action_stop", None)
        if callable(stop):
            stop()

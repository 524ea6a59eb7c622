"""The prompt shown before a cell runs in ``ask`` mode: run, skip, edit the code, or always run.

A modal screen that returns an Approval; the agent's worker thread waits for it. Esc skips the cell and stops the
run; the app also closes this screen whenever a run is stopped, so none is ever left behind.
"""

from __future__ import annotations

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static, TextArea

from tui_agent.agent.approval import Approval


class ApprovalScreen(ModalScreen[Approval]):
    """Ask what to do with the code of one step."""

    BINDINGS = [
        Binding("r", "decide('run')", "Run"),
        Binding("s", "decide('skip')", "Skip"),
        Binding("e", "edit", "Edit"),
        Binding("a", "decide('always')", "Always"),
        Binding("escape", "stop_run", "Stop", show=False),
        Binding("ctrl+s", "save_edit", "Run edited", show=False, priority=True),
    ]

    def __init__(self, step: int, code: str) -> None:
        super().__init__(classes="approval-screen")
        self.step = step
        self.code = code
        self.editing = False

    def compose(self) -> ComposeResult:
        with Vertical(id="approval"):
            yield Label(f"Step {self.step} wants to run this code:", id="approval-title")
            with VerticalScroll(id="approval-code"):
                yield Static(Syntax(self.code, "python", theme="monokai", word_wrap=True), id="approval-view")
            with Horizontal(id="approval-buttons"):
                yield Button("Run (r)", id="run", variant="success")
                yield Button("Skip (s)", id="skip", variant="warning")
                yield Button("Edit (e)", id="edit", variant="primary")
                yield Button("Always (a)", id="always", variant="default")

    def on_mount(self) -> None:
        self.query_one("#run", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "edit":
            self.action_edit()
        elif event.button.id == "save":
            self.action_save_edit()
        elif event.button.id in ("run", "skip", "always"):
            self.action_decide(event.button.id)

    def action_decide(self, action: str) -> None:
        if self.editing and action != "skip":
            return
        self.dismiss(Approval(action))  # type: ignore[arg-type]

    async def action_edit(self) -> None:
        """Swap the code view for an editor; Ctrl+S runs the edited code."""
        if self.editing:
            return
        self.editing = True
        holder = self.query_one("#approval-code", VerticalScroll)
        await holder.remove_children()
        editor = TextArea.code_editor(self.code, language=None, id="approval-editor")
        try:  # highlighting needs a tree-sitter Python grammar Textual can load; plain text otherwise
            editor.language = "python"
        except Exception:  # noqa: BLE001 - LanguageDoesNotExist and tree-sitter version mismatches
            editor.language = None
        await holder.mount(editor)
        title = self.query_one("#approval-title", Label)
        title.update(f"Edit step {self.step}'s code, then Ctrl+S to run it (Esc skips):")
        buttons = self.query_one("#approval-buttons", Horizontal)
        await buttons.remove_children()
        await buttons.mount(Button("Run edited (Ctrl+S)", id="save", variant="success"))
        editor.focus()

    def action_stop_run(self) -> None:
        """Esc: the cell is skipped and the whole run stops (the conversation stays)."""
        self.dismiss(Approval("skip"))
        stop = getattr(self.app, "action_stop", None)
        if callable(stop):
            stop()

    def action_save_edit(self) -> None:
        if not self.editing:
            return
        code = self.query_one("#approval-editor", TextArea).text
        self.dismiss(Approval("edit", code=code))

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # While editing, letters go to the editor, not to the r/s/e/a shortcuts.
        if self.editing and action in ("decide", "edit"):  # (Esc still stops)
            return action == "decide" and parameters == ("skip",)
        return True

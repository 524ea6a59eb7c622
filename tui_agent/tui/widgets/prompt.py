"""The input box: multi-line editing, history on Up/Down, and completion of commands and ``@path`` mentions.

Enter sends; Ctrl+J, Alt+Enter or Shift+Enter (where the terminal reports it) insert a new line, and so does Enter
after a trailing backslash. The best completion shows as grey text after the cursor; Tab (or Right) accepts it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from tui_agent.tui.completion import Candidate, common_prefix, current_word

NEWLINE_KEYS = frozenset({"ctrl+j", "alt+enter", "shift+enter", "ctrl+enter"})


class PromptInput(TextArea):
    """Where the user types messages and slash commands."""

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class CompletionsChanged(Message):
        def __init__(self, candidates: list[Candidate]) -> None:
            super().__init__()
            self.candidates = candidates

    def __init__(
        self,
        *,
        completer: Callable[[str], Sequence[Candidate]] | None = None,
        history: Sequence[str] = (),
        **kwargs,
    ) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)
        self.completer = completer
        self.input_history: list[str] = list(history)
        self._history_pos: int | None = None
        self._draft = ""
        self.candidates: list[Candidate] = []

    # -- completion ---------------------------------------------------------------------------------------
    def update_suggestion(self) -> None:
        """Recompute completions for the word before the cursor (a TextArea hook called after every edit)."""
        candidates: list[Candidate] = []
        suggestion = ""
        row, col = self.cursor_location
        line = self.document.get_line(row)
        if self.completer is not None and col == len(line):
            before = self.get_text_range((0, 0), (row, col))
            candidates = list(self.completer(before))
            word = current_word(before)
            if candidates:
                best = candidates[0].text if len(candidates) == 1 else common_prefix(candidates)
                if best.startswith(word) and len(best) > len(word):
                    suggestion = best[len(word) :]
        self.suggestion = suggestion
        if candidates != self.candidates:
            self.candidates = candidates
            self.post_message(self.CompletionsChanged(candidates))

    def accept_completion(self) -> bool:
        """Insert the grey suggestion; returns False when there was none."""
        if not self.suggestion:
            return False
        self.insert(self.suggestion)
        return True

    # -- history ------------------------------------------------------------------------------------------
    def remember(self, text: str) -> None:
        if text.strip() and (not self.input_history or self.input_history[-1] != text):
            self.input_history.append(text)
        self._history_pos = None

    def _recall(self, delta: int) -> bool:
        if not self.input_history:
            return False
        if self._history_pos is None:
            if delta > 0:
                return False
            self._draft = self.text
            pos = len(self.input_history) - 1
        else:
            pos = self._history_pos + delta
        if pos < 0:
            return True
        if pos >= len(self.input_history):
            self._history_pos = None
            self._set_text(self._draft)
            return True
        self._history_pos = pos
        self._set_text(self.input_history[pos])
        return True

    def _set_text(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)
        self.update_suggestion()

    # -- keys -----------------------------------------------------------------------------------------------
    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        handled = True
        if key == "enter":
            row, col = self.cursor_location
            before = self.document.get_line(row)[:col]
            if before.endswith("\\"):
                self.replace("\n", (row, col - 1), (row, col))
            else:
                self.submit()
        elif key in NEWLINE_KEYS:
            self.insert("\n")
        elif key == "tab":
            self.accept_completion()
        elif key == "up" and self.cursor_location[0] == 0:
            handled = self._recall(-1)
        elif key == "down" and self.cursor_location[0] == self.document.line_count - 1:
            handled = self._recall(+1)
        else:
            handled = False
        if handled:
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)

    def submit(self) -> None:
        text = self.text
        if not text.strip():
            return
        self.remember(text)
        self.post_message(self.Submitted(text))

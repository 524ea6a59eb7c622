"""The status bar: model, context used, speed of the last step, kernel state and approval mode."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

MODE_STYLES = {"ask": "bold green", "auto": "bold yellow", "read-only": "bold cyan"}


def short_model_name(name: str, width: int = 32) -> str:
    """A model's name for one line: a file path shows as its file name, long names are cut in the middle."""
    if "/" in name or name.endswith(".gguf"):
        name = name.rstrip("/").rsplit("/", 1)[-1]
    return name if len(name) <= width else name[: width // 2 - 1] + "…" + name[-(width // 2) :]


class StatusBar(Static):
    """One line at the bottom; every field is a reactive the app sets."""

    DEFAULT_CLASSES = "status-bar"

    model: reactive[str] = reactive("")
    model_state: reactive[str] = reactive("loading")  # loading | ready | error
    context_used: reactive[int] = reactive(0)
    context_length: reactive[int] = reactive(0)
    tokens_per_second: reactive[float] = reactive(0.0)
    kernel: reactive[str] = reactive("starting")  # starting | idle | running | dead | off
    mode: reactive[str] = reactive("ask")
    busy: reactive[bool] = reactive(False)
    reading: reactive[str] = reactive("")  # "reading the prompt (n/N tokens)" while the model reads its prompt

    def render(self) -> Text:
        sep = (" │ ", "dim")
        model = short_model_name(self.model) or "no model"
        if self.model_state == "loading":
            model_part = (f"{model} (loading…)", "yellow")
        elif self.model_state == "error":
            model_part = (f"{model} (not loaded)", "red")
        else:
            model_part = (model, "bold")
        if self.context_length:
            pct = 100.0 * self.context_used / self.context_length
            ctx = f"ctx {self.context_used:,}/{self.context_length:,} ({pct:.0f}%)"
        else:
            ctx = f"ctx {self.context_used:,}"
        tps = f"{self.tokens_per_second:.1f} tok/s" if self.tokens_per_second else "– tok/s"
        kernel_style = {"dead": "red", "running": "yellow", "idle": "green"}.get(self.kernel, "dim")
        parts: list[tuple[str, str]] = [
            model_part,
            sep,
            (ctx, ""),
            sep,
            (tps, ""),
            sep,
            (f"kernel {self.kernel}", kernel_style),
            sep,
            (f"mode {self.mode}", MODE_STYLES.get(self.mode, "")),
        ]
        if self.reading:
            parts += [sep, (self.reading + (", Esc stops" if self.busy else ""), "italic yellow")]
        elif self.busy:
            parts += [sep, ("working, Esc stops", "italic")]
        return Text.assemble(*parts)

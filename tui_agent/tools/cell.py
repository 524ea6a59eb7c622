"""What one executed cell produced, and the text of it the model sees as its observation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


def strip_ansi(text: str) -> str:
    """Text without terminal colour and cursor codes (tracebacks come coloured from IPython)."""
    return ANSI_RE.sub("", text)


CELL_FILE_RE = re.compile(r"\S*ipykernel_\d+/\d+\.py|\b\d{6,}\.py")


def tidy_traceback(lines: list[str]) -> list[str]:
    """Name the cell `<cell>` instead of IPython's temp file, and fold frames repeated back to back (recursion)."""
    lines = [CELL_FILE_RE.sub("<cell>", line) for line in lines]
    out: list[str] = []
    i = 0
    while i < len(lines):
        for size in (1, 2):
            block = lines[i : i + size]
            repeats = 0
            while len(block) == size and lines[i + size * (repeats + 1) : i + size * (repeats + 2)] == block:
                repeats += 1
            if repeats >= 2:
                out.extend(block)
                out.append(f"  [... the {size} line(s) above repeated {repeats} more times ...]")
                i += size * (repeats + 1)
                break
        else:
            out.append(lines[i])
            i += 1
    return out


def plain_text(data: dict) -> str:
    """text/plain of a rich output, or the text of its HTML when the plain form is just an object's repr."""
    text = strip_ansi(data.get("text/plain", ""))
    html = data.get("text/html")
    if html and (not text or (text.startswith("<") and text.endswith(" object>"))):
        from tui_agent.tools.web import html_to_text

        return html_to_text(html if isinstance(html, str) else "".join(html))
    return text


def cut_middle(text: str, max_chars: int) -> str:
    """Keep the head and the tail of `text` within max_chars, marking what was cut in the middle."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    marker_room = 40
    keep = max(max_chars - marker_room, 20)
    head = keep * 2 // 3
    tail = keep - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} chars cut ...]\n{text[len(text) - tail :]}"


class BoundedText:
    """An output accumulator that keeps a head and a rolling tail, so a runaway print loop cannot fill memory."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self.head = ""
        self.tail = ""
        self.cut = 0

    def add(self, text: str) -> None:
        if len(self.head) < self.limit // 2:
            room = self.limit // 2 - len(self.head)
            self.head += text[:room]
            text = text[room:]
        if not text:
            return
        self.tail += text
        over = len(self.tail) - self.limit // 2
        if over > 0:
            self.tail = self.tail[over:]
            self.cut += over

    def value(self) -> str:
        if not self.cut:
            return self.head + self.tail
        return f"{self.head}\n[... {self.cut} chars cut ...]\n{self.tail}"


@dataclass
class CellResult:
    """Outputs of one cell; `observation()` is what goes back to the model."""

    stdout: str = ""
    stderr: str = ""
    result: str | None = None  # text/plain of execute_result
    error: str | None = None  # "ZeroDivisionError: division by zero" plus a short traceback
    images: list[str] = field(default_factory=list)  # paths of saved rich outputs
    final_answer: str | None = None  # set when the cell called final_answer(x): str(x)
    timed_out: bool = False
    restarted: bool = False
    notice: str | None = None  # what happened to the kernel, for the model and the user
    changes: list[dict] = field(default_factory=list)  # files the cell changed or proposed to change (edits.py)

    @property
    def ok(self) -> bool:
        """True when the cell ran to the end without error or timeout."""
        return self.error is None and not self.timed_out

    def printed(self) -> str:
        """Printed output and result, the part SAG groups candidates by."""
        parts = [self.stdout.rstrip("\n")] if self.stdout.strip() else []
        if self.result is not None:
            parts.append(self.result)
        return "\n".join(parts)

    def observation(self, max_chars: int = 4000) -> str:
        """The text the model reads: output, result, stderr, error, kernel notice and image paths, cut to size."""
        parts: list[str] = []
        if self.stdout.strip():
            parts.append(self.stdout.rstrip())
        if self.result is not None:
            parts.append(f"Out: {self.result}")
        if self.stderr.strip():
            parts.append(f"[stderr]\n{self.stderr.rstrip()}")
        if self.error:
            parts.append(f"Error: {self.error.rstrip()}")
        for path in self.images:
            parts.append(f"[image saved: {path}]")
        if self.notice:
            parts.append(f"[{self.notice}]")
        if self.final_answer is not None:
            parts.append(f"Final answer: {self.final_answer}")
        if not parts:
            parts.append("(the code ran and printed nothing; print() what you need to see)")
        return cut_middle("\n".join(parts), max_chars)

"""Degenerate repetition: a small model sometimes falls into a loop ("0000…", the same line again and again) and
would run to the token limit. The loop watches the stream and ends such a step early; the step then counts as a
parse failure and the model is told why.
"""

from __future__ import annotations

REPEATED = (
    "Error: your answer fell into a loop, repeating {unit!r} over and over, so it was stopped. Write one short "
    "Thought and one code block, and end the code block with <end_code>."
)

MIN_SPAN = 200  # characters the repetition must cover before it counts: real code repeats, but rarely this long
MAX_UNIT = 40


def repeated_unit(text: str) -> str | None:
    """The unit (1-40 characters) that the end of ``text`` repeats over at least MIN_SPAN characters, if any."""
    for length in range(1, MAX_UNIT + 1):
        unit = text[-length:]
        if len(unit) < length:
            return None
        repeats = 1
        while text.endswith(unit * (repeats + 1)):
            repeats += 1
            if repeats * length >= MIN_SPAN:
                return unit
    return None


class RepetitionGuard:
    """Fed the stream piece by piece; ``tripped`` once the text ends in a long loop (checked every few pieces)."""

    def __init__(self, every: int = 24):
        self.every = every
        self.text = ""
        self.unit: str | None = None
        self._since = 0

    def feed(self, piece: str) -> bool:
        self.text += piece
        self._since += len(piece)
        if self._since >= self.every and len(self.text) >= MIN_SPAN:
            self._since = 0
            self.unit = repeated_unit(self.text)
        return self.unit is not None

    def observation(self) -> str:
        unit = self.unit or ""
        return REPEATED.format(unit=unit if len(unit) <= 20 else unit[:20] + "…")

    def trimmed(self) -> str:
        """The text with the loop cut down to three repetitions (what the trajectory keeps)."""
        if not self.unit:
            return self.text
        body = self.text.rstrip()
        while body.endswith(self.unit * 4):
            body = body[: -len(self.unit)]
        return body

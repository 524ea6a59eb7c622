"""Streamed tokens reach the app in batches: at most one message per ``interval`` instead of one per token.

The agent runs in a worker thread and the app renders on the main thread; every posted message wakes the event
loop and takes the GIL that llama-cpp-python's own per-token Python code needs too. Merging the tokens of one step
and candidate into one event per interval keeps the screen as fresh as the eye can follow (the conversation
redraws at most every 50 ms anyway) and leaves the generating thread alone. Tokens held back go out when the
interval is over even if nothing else arrives (a stalled model still shows all it wrote), and any other event
sends them first, so order is kept.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

from tui_agent.agent import events as ev

INTERVAL_SECONDS = 0.04


class TokenCoalescer:
    """Passes events on to ``post`` (thread-safe), merging runs of Token events of the same step and candidate."""

    def __init__(self, post: Callable[[ev.Event], None], interval: float = INTERVAL_SECONDS) -> None:
        self.post = post
        self.interval = interval
        self._held: ev.Token | None = None
        self._last_post = float("-inf")
        self._timer: threading.Timer | None = None
        self._lock = threading.RLock()

    def push(self, event: ev.Event) -> None:
        with self._lock:
            if not isinstance(event, ev.Token):
                self.flush()
                self.post(event)
                return
            held = self._held
            if held is not None and (held.step, held.candidate) == (event.step, event.candidate):
                self._held = dataclasses.replace(held, text=held.text + event.text)
            else:
                self.flush()
                self._held = event
            wait = self._last_post + self.interval - time.monotonic()
            if wait <= 0:
                self.flush()
            elif self._timer is None:
                self._timer = threading.Timer(wait, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Send the tokens held back, if any."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._held is not None:
                held, self._held = self._held, None
                self._last_post = time.monotonic()
                self.post(held)

"""The scripted chat model as the TUI's fast tests use it (the kernel and the agent loop stay real)."""

from __future__ import annotations

from collections.abc import Sequence

from tests.scripted import ScriptedModel as _Scripted
from tests.scripted import step

__all__ = ["ScriptedModel", "step"]


class ScriptedModel(_Scripted):
    """Ends with a final answer when the script runs out; timings fixed so snapshots stay stable."""

    def __init__(self, replies: Sequence[str], **options) -> None:
        defaults = {
            "context_length": 4096,
            "when_empty": step("Nothing left.", "final_answer('done')"),
            "piece": 6,
            "seconds": (0.5, 0.5),
        }
        super().__init__(replies, **{**defaults, **options})

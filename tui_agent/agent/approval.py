"""The decision a user (or a policy) makes before a cell runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Action = Literal["run", "skip", "edit", "always"]


@dataclass(frozen=True)
class Approval:
    """``edit`` runs ``code`` instead of the model's; ``always`` runs and stops asking for this session."""

    action: Action
    code: str | None = None


Approver = Callable[[int, str], Approval]
"""Called with (step, code) before a cell runs; blocks until a decision is made."""


EditApprover = Callable[[int, str, str], bool]
"""Called with (step, path, unified diff) before a proposed file change is written; True writes it."""


def approve_all(step: int, code: str) -> Approval:
    return Approval("run")

"""How the interactive session gets its model, kernel, agent (from ``tui_agent.session``, like every other
consumer), model list and index refresh.

The app only talks to a Backend, so tests can swap one part (a scripted model) and keep the real others (the
Jupyter kernel, the agent loop). Every heavy import happens inside these functions, in the app's worker threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_agent import session
from tui_agent.config import Settings


def _model_names() -> Sequence[str]:
    from tui_agent.models.registry import load_registry

    return list(load_registry().names())


def _refresh_index(workspace: Path) -> str:
    """Bring the code index up to date; returns a one-line summary."""
    from tui_agent.index import tools

    refresh = getattr(tools, "refresh_index", None)
    if refresh is not None:
        result = refresh(workspace)
    else:
        code_tools = tools.CodeTools(workspace)
        method = getattr(code_tools, "refresh", None) or code_tools.index.refresh
        result = method()
    return str(result) if result is not None else "index up to date"


@dataclass
class Backend:
    """The session's parts, each a plain callable (the real ones by default)."""

    load_model: Callable[[str, Settings], Any] = session.load_model
    make_kernel: Callable[[Path, Settings], Any] = session.make_kernel
    make_agent: Callable[..., Any] = session.make_agent
    warm_prompt: Callable[[Any, Settings], Any] = session.warm_prompt
    model_names: Callable[[], Sequence[str]] = _model_names
    refresh_index: Callable[[Path], str] = _refresh_index


def describe_error(exc: BaseException) -> str:
    """One readable line for any failure, never a traceback."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    if name in ("ModelError", "KernelError", "SessionError", "ConfigError", "MentionError", "SlashError"):
        return text or name
    if isinstance(exc, ImportError):
        return f"not available in this installation ({text or name})"
    return f"{name}: {text}" if text else name

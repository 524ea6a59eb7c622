"""How the interactive session gets its model, kernel, agent, model list and index refresh.

The app only talks to a Backend, so tests can swap one part (a scripted model) and keep the real others (the
Jupyter kernel, the agent loop). Every heavy import happens inside these functions, in the app's worker threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_agent.config import Settings


def _load_model(name: str, settings: Settings) -> Any:
    from tui_agent.models.loader import load_chat_model

    kwargs: dict[str, Any] = {}
    if settings.n_ctx:
        kwargs["n_ctx"] = settings.n_ctx
    if settings.n_threads:
        kwargs["n_threads"] = settings.n_threads
    try:
        return load_chat_model(name, **kwargs)
    except TypeError:
        return load_chat_model(name)


def _make_kernel(workspace: Path, settings: Settings) -> Any:
    from tui_agent.tools.kernel import Kernel

    kernel = Kernel(
        workspace, web=settings.web, timeout=settings.cell_timeout, memory_limit_mb=settings.kernel_memory_mb
    )
    kernel.start()
    return kernel


def _make_agent(model: Any, kernel: Any, workspace: Path, settings: Settings, **kwargs: Any) -> Any:
    from tui_agent.agent.loop import Agent

    return Agent(
        model,
        kernel,
        workspace=workspace,
        max_steps=settings.max_steps,
        sag=settings.sag,
        temperature=settings.temperature,
        web=settings.web,
        cell_timeout=settings.cell_timeout,
        **kwargs,
    )


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

    load_model: Callable[[str, Settings], Any] = _load_model
    make_kernel: Callable[[Path, Settings], Any] = _make_kernel
    make_agent: Callable[..., Any] = _make_agent
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

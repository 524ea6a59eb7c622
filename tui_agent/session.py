"""The one place that opens an agent session: model, kernel, code tools, prompt, approver and recorder, from the
user's settings plus per-call overrides; and ``run_episode``, which runs one task on a fresh conversation and
fresh kernel state and returns its trajectory.

``ask``, the interactive session, the benchmarks and the ``training`` pipeline all build their agents here, so a
trajectory a teacher makes and the agent a user runs are the same loop with the same prompt and settings.
Heavy libraries load inside the functions.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui_agent.config import Settings

OVERRIDABLE = {f.name for f in dataclasses.fields(Settings)}


def with_overrides(settings: Settings, **overrides: Any) -> Settings:
    """A copy of ``settings`` with every override that is not None applied (flags win over config)."""
    unknown = set(overrides) - OVERRIDABLE
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    return dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def load_model(name: str | None, settings: Settings, *, lora: str | None = None) -> Any:
    """A registry name or GGUF path (default: the configured model) loaded with the configured context and threads."""
    from tui_agent.models.loader import load_chat_model
    from tui_agent.models.prompt_cache import default_cache

    model = load_chat_model(
        name or settings.model,
        n_ctx=settings.n_ctx or None,
        n_threads=settings.n_threads or None,
        lora_path=lora,
    )
    model.prompt_cache = default_cache()  # the system prompt's state, kept on disk across runs
    return model


def warm_prompt(model: Any, settings: Settings) -> str | None:
    """Load (or read and cache) the static part of the system prompt into ``model`` before any task is known:
    the interactive session does this while the user types. None when the model cannot be warmed."""
    from tui_agent.agent.loop import warm_prompt as warm
    from tui_agent.agent.prompt import build_system_prompt

    style = getattr(model, "prompt_style", None) or "full"
    return warm(model, build_system_prompt(web=settings.web, repo_map="", style=style), static_only=True)


def make_kernel(workspace: Path, settings: Settings, *, start: bool = True) -> Any:
    """A Jupyter kernel in ``workspace`` with the configured web tools (none: private mode, no network at all),
    cell timeout, memory cap and credentials policy."""
    from tui_agent.tools.kernel import Kernel

    kernel = Kernel(
        workspace,
        web=settings.web,
        timeout=settings.cell_timeout,
        memory_limit_mb=settings.kernel_memory_mb or None,
        secrets=settings.kernel_secrets,
    )
    if start:
        kernel.start()
    return kernel


def make_agent(
    model: Any,
    kernel: Any,
    workspace: Path,
    settings: Settings,
    *,
    approver: Any = None,
    read_only: bool | None = None,
    recorder: Any = None,
    repo_map: str | None = None,
    max_tokens: int = 512,
    seed: int = 0,
) -> Any:
    """The CodeAct agent over ``model`` and ``kernel``; ``read_only`` None follows the configured approval mode."""
    from tui_agent.agent.loop import Agent

    return Agent(
        model,
        kernel,
        workspace=workspace,
        max_steps=settings.max_steps,
        sag=settings.sag,
        temperature=settings.temperature,
        web=settings.web,
        approver=approver,
        read_only=settings.approval == "read-only" if read_only is None else read_only,
        repo_map=repo_map,
        recorder=recorder,
        max_tokens=max_tokens,
        cell_timeout=settings.cell_timeout,
        seed=seed,
    )


@dataclasses.dataclass
class Session:
    """A model, a kernel and an agent working in one workspace; close it (or use ``with``) to stop the kernel."""

    settings: Settings
    workspace: Path
    model: Any
    kernel: Any
    agent: Any

    def run(self, task: str, **kwargs: Any) -> Any:
        """Run ``task`` as a fresh episode (see ``run_episode``) and return its RunRecord."""
        return run_episode(self.agent, task, **kwargs)

    def close(self) -> None:
        self.kernel.shutdown()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_session(
    settings: Settings | None = None,
    *,
    workspace: Path | None = None,
    model: Any = None,
    lora: str | None = None,
    approver: Any = None,
    read_only: bool | None = None,
    recorder: Any = None,
    repo_map: str | None = None,
    max_tokens: int = 512,
    seed: int = 0,
    start_kernel: bool = False,
    **overrides: Any,
) -> Session:
    """Open a session from ``settings`` (default: the user's config) and overrides such as ``max_steps=4``.

    ``model`` is a registry name, a GGUF path, or an already loaded chat model (a teacher behind an HTTP endpoint,
    a test double); None loads the configured model. The kernel starts on first use unless ``start_kernel``.
    """
    settings = with_overrides(settings or Settings.load(), **overrides)
    workspace = Path(workspace or Path.cwd()).expanduser().resolve()
    chat_model = model if model is not None and not isinstance(model, str | Path) else None
    if chat_model is None:
        chat_model = load_model(str(model) if model else None, settings, lora=lora)
    kernel = make_kernel(workspace, settings, start=start_kernel)
    try:
        agent = make_agent(
            chat_model,
            kernel,
            workspace,
            settings,
            approver=approver,
            read_only=read_only,
            recorder=recorder,
            repo_map=repo_map,
            max_tokens=max_tokens,
            seed=seed,
        )
    except BaseException:
        kernel.shutdown()
        raise
    return Session(settings=settings, workspace=workspace, model=chat_model, kernel=kernel, agent=agent)


def run_episode(
    agent: Any,
    task: str,
    *,
    cancel: threading.Event | None = None,
    first_thought: str | None = None,
    task_id: str = "",
    reference: dict[str, Any] | None = None,
    on_event: Callable[[Any], None] | None = None,
    fresh: bool = True,
) -> Any:
    """Run one task to its end and return its RunRecord (also written to the agent's recorder, if any).

    ``fresh`` starts from an empty conversation and a restarted kernel, so no episode sees another's variables;
    every event is passed to ``on_event`` as it happens.
    """
    if fresh:
        agent.reset()
        if getattr(agent.kernel, "alive", False):
            agent.kernel.restart()
    agent.progress = on_event  # prompt progress comes from the generating thread, between the loop's own events
    try:
        for event in agent.run(task, cancel=cancel, first_thought=first_thought, task_id=task_id, reference=reference):
            if on_event is not None:
                on_event(event)
    finally:
        agent.progress = None
    return agent.last_record

"""What each slash command does in the running app (parsing and help live in ``slash``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from tui_agent.tui import slash
from tui_agent.tui.backend import describe_error

if TYPE_CHECKING:
    from tui_agent.tui.app import AgentApp


async def run(app: AgentApp, name: str, arg: str) -> None:
    """Run ``/name arg``; errors surface as SlashError/SessionError for the app to show."""
    handler = HANDLERS[name]
    await handler(app, arg)


async def _help(app: AgentApp, arg: str) -> None:
    await app.show_info(slash.help_markdown())


async def _model(app: AgentApp, arg: str) -> None:
    if not arg:
        try:
            names = list(app.backend.model_names())
        except Exception as exc:  # noqa: BLE001
            raise slash.SlashError(f"cannot read the model registry: {describe_error(exc)}") from exc
        lines = [f"**Models** (current: `{app.model_name}`)", ""]
        lines += [f"- `{n}`{' ← current' if n == app.model_name else ''}" for n in names] or ["- (none)"]
        lines += ["", "Switch with `/model NAME` or `/model PATH.gguf`."]
        await app.show_info("\n".join(lines))
        return
    if app.running:
        raise slash.SlashError("stop the current task (Esc) before switching models")
    app.status.model = arg
    app.status.model_state = "loading" if app.model is None else app.status.model_state
    await app.conversation.notice(f"Loading model {arg}… the current one stays until it is ready.")
    app._load_model(arg)


async def _clear(app: AgentApp, arg: str) -> None:
    if app.running:
        raise slash.SlashError("stop the current task (Esc) before clearing")
    if app.agent is not None:
        app.agent.reset()
    app.session_id = None
    await app.conversation.clear()
    app._update_context()
    await app.conversation.notice("Conversation cleared; the next message starts a new session.")


async def _sag(app: AgentApp, arg: str) -> None:
    if not arg:
        await app.conversation.notice(f"SAG is {app.settings.sag} (candidates per step). Set with /sag N.")
        return
    value = slash.parse_sag(arg)
    app.settings.sag = value
    if app.agent is not None:
        app.agent.sag = value
    text = "off (one candidate per step)" if value == 1 else f"{value} candidates per step, majority by output"
    await app.conversation.notice(f"SAG: {text}.")


async def _mode(app: AgentApp, arg: str) -> None:
    mode = slash.parse_mode(arg, app.mode)
    app.set_mode(mode)
    meaning = {
        "ask": "each cell waits for your approval",
        "auto": "cells run without asking",
        "read-only": "no code runs",
    }[mode]
    await app.conversation.notice(f"Mode {mode}: {meaning}.")


async def _index(app: AgentApp, arg: str) -> None:
    await app.conversation.notice(f"Refreshing the code index of {app.workspace.name}…")
    _refresh_index(app)


def _refresh_index(app: AgentApp) -> None:
    def job() -> None:
        try:
            summary = app.backend.refresh_index(app.workspace)
        except Exception as exc:  # noqa: BLE001
            message = f"Index refresh failed: {describe_error(exc)}"
            app.call_from_thread(lambda: app.conversation.notice(message, error=True))
            return
        app.call_from_thread(lambda: app.conversation.notice(f"Index: {summary}"))

    app.run_worker(job, thread=True, group="index", exit_on_error=False)


async def _save(app: AgentApp, arg: str) -> None:
    if app.session_id is None:
        app.session_id = app.store.create(model=app.model_name, workspace=app.workspace, title=arg)
    elif arg:
        app.store.update(app.session_id, title=arg)
    named = f" as {arg!r}" if arg else ""
    await app.conversation.notice(
        f"Session {app.session_id} saved{named} (it is saved as it goes). Resume: tui-agent --resume {app.session_id}"
    )


async def _sessions(app: AgentApp, arg: str) -> None:
    sessions = app.store.list(limit=20)
    if not sessions:
        await app.conversation.notice("No saved sessions yet.")
        return
    lines = ["| id | updated | runs | title |", "|---|---|---|---|"]
    for s in sessions:
        when = dt.datetime.fromtimestamp(s.updated).strftime("%Y-%m-%d %H:%M")
        mark = " ←" if s.id == app.session_id else ""
        title = (s.title or "(untitled)").replace("|", "\\|")
        lines.append(f"| `{s.id}`{mark} | {when} | {s.runs} | {title} |")
    lines += ["", "Resume one with `/resume ID`."]
    await app.show_info("\n".join(lines))


async def _resume(app: AgentApp, arg: str) -> None:
    if app.running:
        raise slash.SlashError("stop the current task (Esc) before resuming another session")
    await app.resume(arg or None)


async def _context(app: AgentApp, arg: str) -> None:
    agent = app.agent
    if agent is None:
        await app.conversation.notice("No agent yet: the model or the kernel is still starting.")
        return
    messages = list(agent.messages)
    try:
        used = int(agent.context_used())
    except Exception:  # noqa: BLE001
        used = 0
    length = int(getattr(app.model, "context_length", 0) or 0)
    pct = f" ({100 * used / length:.0f}%)" if length else ""
    by_role: dict[str, int] = {}
    for m in messages:
        by_role[m["role"]] = by_role.get(m["role"], 0) + 1
    roles = ", ".join(f"{n} {r}" for r, n in by_role.items()) or "none"
    lines = [
        f"**Context**: {used:,} of {length:,} tokens{pct}",
        "",
        f"- messages: {len(messages)} ({roles})",
        f"- model: `{app.model_name}` · SAG {app.settings.sag} · max steps {app.settings.max_steps}",
        f"- session: `{app.session_id or 'not started'}`",
    ]
    await app.show_info("\n".join(lines))


async def _undo(app: AgentApp, arg: str) -> None:
    from tui_agent.undo import UndoError, UndoStore

    if app.running:
        raise slash.SlashError("stop the current task (Esc) before undoing its changes")
    try:
        steps = int(arg) if arg else 1
    except ValueError as exc:
        raise slash.SlashError(f"/undo takes a number of changes, not {arg!r}") from exc
    try:
        done = UndoStore(app.workspace).undo(steps)
    except UndoError as exc:
        await app.conversation.notice(str(exc), error=True)
        return
    await app.conversation.notice("Undone: " + "; ".join(done) + ".")


async def _quit(app: AgentApp, arg: str) -> None:
    app.action_quit_app()


HANDLERS = {
    "help": _help,
    "model": _model,
    "clear": _clear,
    "sag": _sag,
    "mode": _mode,
    "index": _index,
    "save": _save,
    "sessions": _sessions,
    "resume": _resume,
    "context": _context,
    "undo": _undo,
    "quit": _quit,
}

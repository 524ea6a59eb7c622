"""The interactive session: a Textual app around one agent, one kernel and one saved session.

The screen is usable at once; the kernel and the model start in worker threads and the status bar says when they
are ready. Each task runs ``agent.run`` in a thread worker: every event is written to the session store from that
thread (so a crash loses at most the step in progress) and posted to the app, which renders it. Before a cell runs
in ``ask`` mode the worker blocks on an approval screen through ``call_from_thread``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Static

from tui_agent.agent import events as ev
from tui_agent.agent.approval import Approval
from tui_agent.config import Settings
from tui_agent.sessions import SavedSession, SessionError, SessionStore, event_from_dict
from tui_agent.tui import slash
from tui_agent.tui.backend import Backend, describe_error
from tui_agent.tui.coalesce import TokenCoalescer
from tui_agent.tui.completion import Candidate, MentionError, attach_mentions, complete
from tui_agent.tui.screens.approval import ApprovalScreen
from tui_agent.tui.screens.edit_approval import EditApprovalScreen
from tui_agent.tui.widgets.conversation import Conversation, InfoBlock, UserMessage
from tui_agent.tui.widgets.prompt import PromptInput
from tui_agent.tui.widgets.status import StatusBar

#: Seconds within which a second Ctrl+C quits.
QUIT_WINDOW = 2.0


class AgentEvent(Message):
    """An agent event handed from the worker thread to the app."""

    def __init__(self, event: ev.Event) -> None:
        super().__init__()
        self.event = event


class AgentApp(App):
    """tui-agent's interactive session."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-agent"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("escape", "stop", "Stop", show=False),
        Binding("ctrl+c", "ctrl_c", "Stop / quit", priority=True, show=False),
        Binding("f2", "cycle_mode", "Mode", show=False),
        Binding("ctrl+q", "quit", "Quit", show=False),
        Binding("pageup", "page(-1)", "Scroll up", show=False, priority=True),
        Binding("pagedown", "page(1)", "Scroll down", show=False, priority=True),
    ]

    def __init__(
        self,
        settings: Settings | None = None,
        workspace: Path | None = None,
        *,
        backend: Backend | None = None,
        store: SessionStore | None = None,
        resume: str | None = None,
        history: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.workspace = Path(workspace or Path.cwd()).resolve()
        self.backend = backend or Backend()
        self._store = store
        self.resume_ref = resume
        self.mode = self.settings.approval
        self.model: Any = None
        self.model_name = self.settings.model
        self.kernel: Any = None
        self.agent: Any = None
        self.session_id: str | None = None
        self.running = False
        self.cancel = threading.Event()
        self.pending: list[tuple[str, str, list[str]]] = []
        self._restore: list[dict[str, str]] | None = None
        self._kernel_done = False
        self._model_done = False
        self._approval: asyncio.Future | None = None
        self._edit_approval: asyncio.Future | None = None
        self._last_ctrl_c = 0.0
        self._history = list(history) if history is not None else None
        self._store_failed = False
        self._model_list: list[str] | None = None
        self._building = False

    # -- layout ---------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # Kept as attributes: every agent event touches them, no need to query the DOM each time.
        self.conversation = Conversation(id="conversation")
        self.completions = Static(id="completions")
        self.prompt = PromptInput(completer=self._complete, history=self._history or (), id="prompt")
        self.status = StatusBar(id="status")
        yield self.conversation
        yield self.completions
        yield self.prompt
        yield self.status

    @property
    def store(self) -> SessionStore:
        if self._store is None:
            self._store = SessionStore()
        return self._store

    async def on_mount(self) -> None:
        status = self.status
        status.model = self.model_name
        status.mode = self.mode
        self.prompt.focus()
        await self.conversation.notice(
            f"tui-agent in {self.workspace.name or self.workspace}: type a task and press Enter. "
            "/help lists commands, @path attaches a file."
        )
        if self._history is None:
            self._load_history()
        if self.resume_ref is not None:
            await self.resume(self.resume_ref)
        self._start_kernel()
        self._load_model(self.model_name)

    # -- startup workers ------------------------------------------------------------------------------------
    @work(thread=True, group="kernel", exit_on_error=False)
    def _start_kernel(self) -> None:
        try:
            kernel = self.backend.make_kernel(self.workspace, self.settings)
        except Exception as exc:  # noqa: BLE001 - shown as a notice
            self.call_from_thread(self._kernel_failed, describe_error(exc))
            return
        self.call_from_thread(self._kernel_ready, kernel)

    async def _kernel_failed(self, message: str) -> None:
        self._kernel_done = True
        self.status.kernel = "dead"
        await self.conversation.notice(f"The Python kernel could not start: {message}", error=True)

    async def _kernel_ready(self, kernel: Any) -> None:
        self.kernel = kernel
        self._kernel_done = True
        self.status.kernel = "idle"
        await self._maybe_build_agent()

    @work(thread=True, group="model", exit_on_error=False)
    def _load_model(self, name: str) -> None:
        try:
            model = self.backend.load_model(name, self.settings)
        except Exception as exc:  # noqa: BLE001 - shown as a notice
            self.call_from_thread(self._model_failed, name, describe_error(exc))
            return
        self.call_from_thread(self._model_ready, name, model)

    @work(thread=True, group="warm", exit_on_error=False)
    def _warm_prompt(self, model: Any, warm: Any = None) -> None:
        """Read (or restore from the prompt cache) the system prompt while the user types its task: its static
        part as soon as the model is loaded, the rest (``warm``, the agent's) once the agent exists."""

        def progress(done: int, total: int) -> None:
            self.post_message(AgentEvent(ev.PromptProgress(step=0, done=done, total=total)))

        if hasattr(model, "prompt_progress"):
            model.prompt_progress = progress
        try:
            if warm is not None:
                warm()
            else:
                self.backend.warm_prompt(model, self.settings)
        except Exception:  # noqa: BLE001 - warming is an optimisation; the first task reads the prompt instead
            pass
        finally:
            if getattr(model, "prompt_progress", None) is progress:
                model.prompt_progress = None
            self.post_message(AgentEvent(ev.PromptProgress(step=0, done=1, total=1)))

    async def _model_failed(self, name: str, message: str) -> None:
        self._model_done = True
        if self.model is None:
            self.status.model_state = "error"
        else:
            self.status.model = self.model_name
        await self.conversation.notice(
            f"Model {name!r} could not be loaded: {message}. Choose another with /model NAME.", error=True
        )
        if self.model is None and self.pending:
            self.pending.clear()
            await self.conversation.notice("Your message was not sent; it is back in the input box.")

    async def _model_ready(self, name: str, model: Any) -> None:
        old = self.model
        self.model = model
        self.model_name = getattr(model, "name", None) or name
        self._model_done = True
        status = self.status
        status.model = self.model_name
        status.model_state = "ready"
        status.context_length = int(getattr(model, "context_length", 0) or 0)
        await self.conversation.notice(f"Model {self.model_name} ready.")
        if old is not None and old is not model:
            close = getattr(old, "close", None)
            if callable(close):
                close()
        self._warm_prompt(model)
        await self._maybe_build_agent(replace=old is not None)

    async def _maybe_build_agent(self, replace: bool = False) -> None:
        if self.model is None or self.kernel is None:
            return
        if (self.agent is not None and not replace) or self._building:
            return
        carried = list(self.agent.messages) if self.agent is not None else None
        self._building = True
        try:
            # In a thread: the agent maps the workspace's code for its prompt, which can take a moment.
            agent = await asyncio.to_thread(
                self.backend.make_agent,
                self.model,
                self.kernel,
                self.workspace,
                self.settings,
                approver=self._approver_for(self.mode),
                read_only=self.mode == "read-only",
            )
        except Exception as exc:  # noqa: BLE001 - shown as a notice
            await self.conversation.notice(f"The agent could not start: {describe_error(exc)}", error=True)
            return
        finally:
            self._building = False
        agent.edit_approver = self._approve_edit
        self.agent = agent
        if hasattr(agent, "warm"):
            self._warm_prompt(self.model, agent.warm)  # the whole system prompt, repo map included
        restore = self._restore if self._restore is not None else carried
        self._restore = None
        if restore:
            restore_messages(agent, restore)
        self._update_context()
        if self.pending:
            display, task, attached = self.pending.pop(0)
            self._start_run(display, task, attached, shown=True)

    # -- input ----------------------------------------------------------------------------------------------
    def _complete(self, before_cursor: str) -> list[Candidate]:
        return complete(before_cursor, self.workspace, models=self._models_for_completion, sessions=self._ids)

    def _models_for_completion(self) -> Sequence[str]:
        if self._model_list is None:
            try:
                self._model_list = list(self.backend.model_names())
            except Exception:  # noqa: BLE001 - no completion then
                self._model_list = []
        return self._model_list

    def _ids(self) -> Sequence[str]:
        try:
            return [s.id for s in self.store.list(limit=20)]
        except Exception:  # noqa: BLE001
            return []

    def _load_history(self) -> None:
        try:
            self.prompt.input_history = self.store.recent_inputs(200)
        except Exception:  # noqa: BLE001 - history is a convenience
            pass

    def on_prompt_input_completions_changed(self, message: PromptInput.CompletionsChanged) -> None:
        hint = self.completions
        if not message.candidates:
            hint.remove_class("visible")
            hint.update("")
            return
        lines = [f"[b]{c.text}[/b]  [dim]{c.help}[/dim]" if c.help else c.text for c in message.candidates[:8]]
        if len(message.candidates) > 8:
            lines.append(f"[dim]… {len(message.candidates) - 8} more[/dim]")
        hint.update("\n".join(lines))
        hint.add_class("visible")

    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        text = message.text.strip()
        if slash.is_command(text):
            self.prompt.clear()
            await self.run_command(text)
            return
        try:
            task, attached = attach_mentions(text, self.workspace)
        except MentionError as exc:
            await self.conversation.notice(f"{exc}. Nothing was sent; fix the mention and press Enter.", error=True)
            return
        self.prompt.clear()
        if self.running:
            await self.conversation.notice("Still working on the last task: Esc stops it. Your text is kept.")
            self.prompt.load_text(message.text)
            return
        self._start_run(text, task, attached)

    # -- runs -----------------------------------------------------------------------------------------------
    def _start_run(self, display: str, task: str, attached: list[str], shown: bool = False) -> None:
        if self.agent is None:
            if self._model_done and self.model is None:
                self.prompt.load_text(display)
                self.run_worker(
                    self.conversation.notice("No model is loaded: choose one with /model NAME.", error=True)
                )
                return
            if self._kernel_done and self.kernel is None:
                self.prompt.load_text(display)
                self.run_worker(self.conversation.notice("The Python kernel is not running.", error=True))
                return
            self.pending.append((display, task, attached))
            self.run_worker(self.conversation.add(UserMessage(display, attached)))
            self.run_worker(self.conversation.notice("The model is still loading; your task starts when ready."))
            return
        if not shown:
            self.run_worker(self.conversation.add(UserMessage(display, attached)))
        self._record({"event": "user", "text": display, "attached": attached})
        self.running = True
        self.cancel = threading.Event()
        self.status.busy = True
        self.conversation.anchor()
        self._run_agent(task, self.cancel)

    @work(thread=True, group="agent", exit_on_error=False)
    def _run_agent(self, task: str, cancel: threading.Event) -> None:
        agent = self.agent
        finished = False
        if hasattr(agent, "progress"):
            agent.progress = lambda event: self.post_message(AgentEvent(event))
        stream = TokenCoalescer(lambda event: self.post_message(AgentEvent(event)))
        try:
            for event in agent.run(task, cancel=cancel):
                self._record(event)
                finished = finished or isinstance(event, ev.RunFinished)
                stream.push(event)
        except Exception as exc:  # noqa: BLE001 - the user sees one line, never a traceback
            stream.flush()
            error = ev.AgentError(f"The agent stopped: {describe_error(exc)}")
            self._record(error)
            self.post_message(AgentEvent(error))
        stream.flush()
        if not finished:
            reason = "cancelled" if cancel.is_set() else "error"
            end = ev.RunFinished(answer=None, steps=0, stop_reason=reason)
            self._record(end)
            self.post_message(AgentEvent(end))

    def _record(self, event: ev.Event | dict) -> None:
        """Write an event to the session (creating it on the first one); called from any thread."""
        if isinstance(event, ev.Token):
            return
        try:
            if self.session_id is None:
                self.session_id = self.store.create(model=self.model_name, workspace=self.workspace)
            self.store.append(self.session_id, event)
            if isinstance(event, (ev.StepStarted, ev.RunFinished)) and self.agent is not None:
                self.store.set_messages(self.session_id, list(self.agent.messages))
        except Exception as exc:  # noqa: BLE001 - saving must never break the conversation
            if not self._store_failed:
                self._store_failed = True
                text = f"This session cannot be saved: {describe_error(exc)}"
                if threading.current_thread() is threading.main_thread():
                    self.run_worker(self.conversation.notice(text, error=True))
                else:
                    self.post_message(AgentEvent(ev.AgentError(text)))

    async def on_agent_event(self, message: AgentEvent) -> None:
        event = message.event
        await self.conversation.show_event(event)
        status = self.status
        if isinstance(event, ev.CodeReady) and self.mode == "auto":
            status.kernel = "running"
        elif isinstance(event, ev.Observation):
            status.kernel = "idle"
        elif isinstance(event, ev.PromptProgress):
            done, total = event.done, event.total
            status.reading = f"reading the prompt ({done}/{total} tokens)" if done < total else ""
        elif isinstance(event, ev.UsageReport):
            status.tokens_per_second = event.tokens_per_second
            if event.context_length:
                status.context_length = event.context_length
            status.context_used = event.context_used
        elif isinstance(event, ev.RunFinished):
            self.running = False
            status.busy = False
            self._check_kernel()
            self._update_context()
            if self.pending and self.agent is not None:
                display, task, attached = self.pending.pop(0)
                self._start_run(display, task, attached, shown=True)

    def _check_kernel(self) -> None:
        if self.kernel is None:
            return
        alive = getattr(self.kernel, "alive", True)
        self.status.kernel = "idle" if alive else "dead"

    def _update_context(self) -> None:
        if self.agent is None:
            return
        try:
            self.status.context_used = int(self.agent.context_used())
        except Exception:  # noqa: BLE001 - the figure is informative only
            pass

    # -- approval -------------------------------------------------------------------------------------------
    def _approver_for(self, mode: str) -> Any:
        """No approver in auto mode: the agent then runs cells directly (and SAG can vote on their output)."""
        return None if mode == "auto" else self._approve

    def _approve(self, step: int, code: str) -> Approval:
        """The agent's approver: called in the worker thread, blocks until the user decides."""
        if self.mode == "auto":
            return Approval("run")
        if self.mode == "read-only" or self.cancel.is_set():
            return Approval("skip")
        try:
            return self.call_from_thread(self._ask_approval, step, code)
        except Exception:  # noqa: BLE001 - app closing: never run unapproved code
            return Approval("skip")

    async def _ask_approval(self, step: int, code: str) -> Approval:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._approval = future

        def decided(result: Approval | None) -> None:
            if not future.done():
                future.set_result(result or Approval("skip"))

        await self.push_screen(ApprovalScreen(step, code), callback=decided)
        result: Approval = await future
        self._approval = None
        self._record({"event": "approval", "step": step, "action": result.action, "code": result.code})
        if result.action == "always":
            self.set_mode("auto")
            await self.conversation.notice("Mode auto: cells now run without asking (F2 or /mode to change).")
        if result.action in ("run", "edit", "always") and not self.cancel.is_set():
            self.status.kernel = "running"
        return result

    def _approve_edit(self, step: int, path: str, diff: str) -> bool:
        """The agent's edit approver: called in the worker thread after a cell proposed a file change."""
        if self.mode == "auto":
            return True
        if self.mode == "read-only" or self.cancel.is_set():
            return False
        try:
            return self.call_from_thread(self._ask_edit, step, path, diff)
        except Exception:  # noqa: BLE001 - app closing: never write an unapproved change
            return False

    async def _ask_edit(self, step: int, path: str, diff: str) -> bool:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._edit_approval = future

        def decided(result: bool | None) -> None:
            if not future.done():
                future.set_result(bool(result))

        await self.push_screen(EditApprovalScreen(step, path, diff), callback=decided)
        accepted: bool = await future
        self._edit_approval = None
        self._record({"event": "edit_approval", "step": step, "path": path, "accepted": accepted})
        return accepted and not self.cancel.is_set()

    def _drop_approval(self) -> None:
        if self.screen_stack and isinstance(self.screen_stack[-1], ApprovalScreen):
            self.screen_stack[-1].dismiss(Approval("skip"))
        if self.screen_stack and isinstance(self.screen_stack[-1], EditApprovalScreen):
            self.screen_stack[-1].dismiss(False)
        if self._approval is not None and not self._approval.done():
            self._approval.set_result(Approval("skip"))
        edit = getattr(self, "_edit_approval", None)
        if edit is not None and not edit.done():
            edit.set_result(False)

    # -- keys -----------------------------------------------------------------------------------------------
    def action_stop(self) -> None:
        """Esc: stop the current generation or cell; the conversation stays."""
        if not self.running:
            return
        # The agent watches this event: it ends the generation, or interrupts the kernel if a cell runs.
        self.cancel.set()
        self._drop_approval()

    def action_ctrl_c(self) -> None:
        now = time.monotonic()
        if now - self._last_ctrl_c < QUIT_WINDOW:
            self.action_quit_app()
            return
        self._last_ctrl_c = now
        self.action_stop()
        self.notify("Press Ctrl+C again to quit.", timeout=QUIT_WINDOW)

    def action_quit_app(self) -> None:
        self.cancel.set()
        self._drop_approval()
        self.exit()

    async def action_quit(self) -> None:
        self.action_quit_app()

    def action_page(self, direction: int) -> None:
        """Page through the conversation; scrolling up stops following new output until back at the bottom."""
        conversation = self.conversation
        if direction < 0:
            conversation.release_anchor()
            conversation.scroll_page_up(animate=False)
        elif conversation.scroll_y + conversation.scrollable_content_region.height >= conversation.max_scroll_y:
            conversation.anchor()  # back at the bottom: follow new output again
        else:
            conversation.scroll_page_down(animate=False)

    def action_cycle_mode(self) -> None:
        self.set_mode(slash.parse_mode("", self.mode))
        self.notify(f"Approval mode: {self.mode}", timeout=2)

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.settings.approval = mode
        self.status.mode = mode
        if self.agent is not None:
            # The agent drops its approver after "always"; switching back to ask gives it one again.
            self.agent.read_only = mode == "read-only"
            self.agent.approver = self._approver_for(mode)

    async def on_unmount(self) -> None:
        self.cancel.set()
        self._drop_approval()
        kernel, self.kernel = self.kernel, None
        if kernel is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(kernel.shutdown), timeout=5)
            except Exception:  # noqa: BLE001 - leaving anyway
                pass

    # -- slash commands -------------------------------------------------------------------------------------
    async def run_command(self, text: str) -> None:
        from tui_agent.tui import commands

        try:
            name, arg = slash.parse(text)
            await commands.run(self, name, arg)
        except (slash.SlashError, SessionError) as exc:
            await self.conversation.notice(str(exc), error=True)
        except Exception as exc:  # noqa: BLE001 - a command failing must not end the session
            await self.conversation.notice(
                f"/{text.strip()[1:].split(' ')[0]} failed: {describe_error(exc)}", error=True
            )

    async def show_info(self, markdown: str) -> None:
        await self.conversation.add(InfoBlock(markdown))

    async def resume(self, ref: str | None) -> None:
        """Show a saved session and continue it: the view is replayed and the agent's messages restored."""
        try:
            saved = self.store.load(ref)
        except SessionError as exc:
            await self.conversation.notice(f"Cannot resume: {exc}", error=True)
            return
        await self.show_saved(saved)

    async def show_saved(self, saved: SavedSession) -> None:
        conversation = self.conversation
        await conversation.clear()
        for data in saved.events:
            if data.get("event") in ("token", "approval_needed", "usage", "run_started"):
                continue
            await conversation.show_event(event_from_dict(data))
        self.session_id = saved.info.id
        title = f" ({saved.info.title})" if saved.info.title else ""
        await conversation.notice(f"Resumed session {saved.info.id}{title}. New messages continue it.")
        if self.agent is not None:
            restore_messages(self.agent, saved.messages)
            self._update_context()
        else:
            self._restore = saved.messages


def restore_messages(agent: Any, messages: list[dict[str, str]]) -> None:
    """Put a saved conversation into the agent, keeping the agent's own current system prompt."""
    restore = getattr(agent, "restore", None)
    if callable(restore):
        restore(messages)
        return
    system = [m for m in list(agent.messages)[:1] if m.get("role") == "system"]
    agent.messages = system + [dict(m) for m in messages if m.get("role") != "system"]

"""`tui-agent ask "TASK"`: run the agent once in the terminal, streaming each step, then print the answer.

The agent runs in a worker thread; this thread renders its events and owns the keyboard, so Ctrl-C always lands
here: it sets the cancel event (the loop interrupts the running cell or generation) and the run ends cleanly,
its trajectory written. Exit codes: 0 answered, 1 no answer, 2 usage or model error, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

import typer

from tui_agent.commands import MODEL_HELP

EXIT_ANSWERED, EXIT_NO_ANSWER, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
NO_TTY = (
    "tui-agent ask: stdin is not a terminal, so nobody can approve the code the agent writes; "
    'pass --yes to run it without asking (or set approval = "auto" in config.toml).'
)


ASK_HELP = (
    "Ask the agent one task; it streams its steps and prints the answer.\n\n"
    "Each step the model thinks, writes Python and runs it in a Jupyter kernel in the workspace; what the code "
    'prints comes back to it, until it calls final_answer(...). Unless --yes (or approval = "auto" in '
    "config.toml), you approve each cell first: run, skip, edit or always. Ctrl-C stops the running cell or "
    "generation; --save still gets the steps so far."
)
ASK_EPILOG = (
    "[bold]Examples[/bold]\n\n"
    '  tui-agent ask "What is 2**100 % 97?"\n\n'
    '  tui-agent ask -y -m qwen2.5-coder-1.5b "Where is the config file read?"\n\n'
    '  tui-agent ask -y --sag 4 --save runs.jsonl "How many primes below 10**6?"\n\n'
    '  tui-agent ask -y --json --no-web "Sum the numbers in data.csv" | jq .answer\n\n'
    "Defaults (model, max steps, SAG, web, approval) come from config.toml in the config directory; "
    "see tui-agent models list for models. Exit codes: 0 answered, 1 no answer, 2 usage or model error, "
    "130 interrupted."
)


def register(app: typer.Typer) -> None:
    """Add `ask` to the main app."""
    app.command("ask", help=ASK_HELP, epilog=ASK_EPILOG)(ask)


def ask(
    task: str = typer.Argument(..., help="The task or question, in quotes."),
    model: str | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Steps before a forced final answer."),
    sag: int | None = typer.Option(None, "--sag", help="Sample N candidate steps and keep the most consistent."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Run the agent's code without asking."),
    no_web: bool = typer.Option(
        False,
        "--no-web",
        help="Private mode: no web tools, and the kernel runs without network (`tui-agent doctor` says how).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON lines of events, then a result object."),
    save: Path | None = typer.Option(None, "--save", help="Append the run's trajectory (JSON line) to this file."),
    workspace: Path | None = typer.Option(None, "--workspace", help="Directory the agent works in (default: here)."),
    temperature: float | None = typer.Option(None, "--temperature", help="Sampling temperature (0: greedy)."),
) -> None:
    from tui_agent.config import ConfigError, Settings, check_value
    from tui_agent.session import with_overrides

    try:
        settings = with_overrides(Settings.load(), max_steps=max_steps, sag=sag, temperature=temperature)
    except ConfigError as exc:
        _fail(str(exc))
    max_steps, sag, temperature = settings.max_steps, settings.sag, settings.temperature
    workspace = (workspace or Path.cwd()).expanduser()
    if not task.strip():
        _fail('the task is empty; say what the agent should do, e.g. tui-agent ask "What is 2**100 % 97?"')
    for flag, key, value in (
        ("--max-steps", "max_steps", max_steps),
        ("--sag", "sag", sag),
        ("--temperature", "temperature", temperature),
    ):
        try:
            check_value(key, value)
        except ValueError as exc:
            _fail(f"{flag} {exc}")
    if not workspace.is_dir():
        _fail(f"--workspace {workspace} is not a directory")
    read_only = settings.approval == "read-only" and not yes
    needs_approval = not yes and settings.approval == "ask"
    if needs_approval and not sys.stdin.isatty():
        _fail(NO_TTY)
    settings = with_overrides(settings, web=settings.web and not no_web)

    from tui_agent.models.base import ModelError
    from tui_agent.session import load_model, make_agent, make_kernel

    renderer = JsonRenderer() if json_out else RichRenderer()
    try:
        with renderer.waiting(f"Loading {model or settings.model}..."):
            chat_model = load_model(model, settings)
    except ModelError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _interrupted_before_start()

    from tui_agent.agent.trajectory import TrajectoryRecorder

    kernel = make_kernel(workspace, settings, start=False)
    prompts: queue.Queue = queue.Queue()
    approver = _QueuedApprover(prompts) if needs_approval else None
    try:
        try:
            with renderer.waiting(f"Mapping the code in {workspace}..."):
                agent = make_agent(
                    chat_model,
                    kernel,
                    workspace,
                    settings,
                    approver=approver,
                    read_only=read_only,
                    recorder=TrajectoryRecorder(save) if save else None,
                )
        except KeyboardInterrupt:
            _interrupted_before_start()
        code = _drive(agent, task, renderer, prompts)
    finally:
        kernel.shutdown()
    raise typer.Exit(code)


def _interrupted_before_start() -> None:
    typer.echo("Interrupted before the agent started; nothing ran.", err=True)
    raise typer.Exit(EXIT_INTERRUPTED)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}" if not message.startswith("tui-agent") else message, err=True)
    raise typer.Exit(EXIT_USAGE)


class _QueuedApprover:
    """Called in the worker thread; hands the question to the main thread (which owns stdin) and waits."""

    def __init__(self, prompts: queue.Queue):
        self.prompts = prompts

    def __call__(self, step: int, code: str) -> Any:
        answer: queue.Queue = queue.Queue(maxsize=1)
        self.prompts.put(("approve", step, code, answer))
        return answer.get()

    def approve_edit(self, step: int, path: str, diff: str) -> bool:
        answer: queue.Queue = queue.Queue(maxsize=1)
        self.prompts.put(("approve_edit", step, (path, diff), answer))
        return answer.get()


def _drive(agent: Any, task: str, renderer: Any, prompts: queue.Queue) -> int:
    """Run the agent in a worker thread, render its events here, and turn Ctrl-C into a clean cancel."""
    from tui_agent.agent.events import AgentError, RunFinished
    from tui_agent.session import run_episode

    cancel = threading.Event()
    started = time.monotonic()

    def work() -> None:
        try:
            run_episode(agent, task, cancel=cancel, on_event=lambda event: prompts.put(("event", event)), fresh=False)
        except Exception as exc:  # the loop reports its own errors; this is a last resort, still one line
            prompts.put(("event", AgentError(message=f"{type(exc).__name__}: {exc}")))
            prompts.put(("event", RunFinished(answer=None, steps=0, stop_reason="error")))

    worker = threading.Thread(target=work, name="agent", daemon=True)
    worker.start()
    interrupted = False
    finished = None
    while finished is None:
        item: Any = None
        try:
            try:
                item = prompts.get(timeout=0.1)
            except queue.Empty:
                if not worker.is_alive() and prompts.empty():
                    break
                continue
            if item[0] == "approve":
                _, step, code, answer = item
                answer.put(renderer.approve(step, code))
                continue
            if item[0] == "approve_edit":
                _, step, (path, diff), answer = item
                answer.put(renderer.approve_edit(step, path, diff))
                continue
            event = item[1]
            renderer.event(event)
            if isinstance(event, RunFinished):
                finished = event
        except KeyboardInterrupt:
            if interrupted:  # a second Ctrl-C: stop waiting
                break
            interrupted = True
            cancel.set()
            renderer.notice("Interrupted: stopping the agent (Ctrl-C again to quit now)...")
            if item and item[0] == "approve":
                item[3].put(_skip())
            elif item and item[0] == "approve_edit":
                item[3].put(False)
    worker.join(timeout=5)
    renderer.result(finished, time.monotonic() - started)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_ANSWERED if finished is not None and finished.answer is not None else EXIT_NO_ANSWER


def _skip() -> Any:
    from tui_agent.agent.approval import Approval

    return Approval("skip")


class JsonRenderer:
    """JSON lines: every event except streamed tokens (their text arrives whole in code_ready), then a result."""

    def waiting(self, text: str) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def event(self, event: Any) -> None:
        if event.kind != "token":
            print(json.dumps(event.to_dict(), ensure_ascii=False), flush=True)

    def notice(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def approve(self, step: int, code: str) -> Any:
        return RichRenderer(stderr=True).approve(step, code)

    def approve_edit(self, step: int, path: str, diff: str) -> bool:
        return RichRenderer(stderr=True).approve_edit(step, path, diff, show=True)

    def result(self, finished: Any, seconds: float) -> None:
        result = {
            "event": "result",
            "answer": finished.answer if finished else None,
            "steps": finished.steps if finished else 0,
            "stop_reason": finished.stop_reason if finished else "cancelled",
            "tokens": {
                "prompt": finished.prompt_tokens if finished else 0,
                "completion": finished.completion_tokens if finished else 0,
            },
            "seconds": round(seconds, 3),
        }
        print(json.dumps(result, ensure_ascii=False), flush=True)


class RichRenderer:
    """Human output: a rule per step, the thought, syntax-highlighted code, the observation, then the answer.

    On a terminal, a spinner fills every wait (loading, reading the prompt, running a cell), so a slow machine
    never looks stuck; the streamed reply replaces it as soon as the first token arrives.
    """

    def __init__(self, stderr: bool = False, console: Any = None):
        from rich.console import Console

        self.console = console or Console(stderr=stderr, highlight=False)
        self.err = Console(stderr=True, highlight=False)
        self._live: Any = None
        self._text = ""
        self._usage = ""
        self._spinning = ""
        self._asked_diff: dict[str, bool] = {}  # files whose diff was shown when asked (not shown again)

    def waiting(self, text: str) -> contextlib.AbstractContextManager:
        """A spinner while something slow happens outside the event stream (a model loading)."""
        if not self.console.is_terminal:
            return contextlib.nullcontext()
        return self.console.status(text, spinner="dots")

    def _spin(self, text: str) -> None:
        from rich.spinner import Spinner

        if not self.console.is_terminal or (self._live is not None and self._spinning == text):
            return
        self._stop_live()
        self._show(Spinner("dots", text=text, style="cyan"))
        self._spinning = text

    def _show(self, renderable: Any) -> None:
        from rich.live import Live

        if self._live is None:
            self._live = Live(renderable, console=self.console, transient=True, auto_refresh=True)
            self._live.start(refresh=True)
        else:
            self._live.update(renderable)

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._text = ""
        self._spinning = ""

    def event(self, event: Any) -> None:
        from rich.panel import Panel
        from rich.syntax import Syntax
        from rich.text import Text

        kind = event.kind
        if kind == "run_started":
            self.console.print(Text(f"{event.model} · {event.task}", style="dim"))
        elif kind == "step_started":
            self._stop_live()
            self.console.rule(Text(f"Step {event.step}", style="bold cyan"), align="left")
            self._spin("Thinking...")
        elif kind == "token":
            if event.candidate:
                if not self._text:  # candidates one after another; sampled together, candidate 1 streams
                    self._spin(f"Sampling candidate {event.candidate + 1}...")
                return
            text = self._text + event.text
            if self.console.is_terminal:
                self._spinning = ""
                self._show(Text(text[-2000:], style="dim"))
            self._text = text
        elif kind == "code_ready":
            self._stop_live()
            if event.thought:
                self.console.print(Text(event.thought, style="italic"))
            self.console.print(Panel(Syntax(event.code, "python", theme="monokai", word_wrap=True), expand=False))
            if self._usage:
                self.console.print(Text(self._usage, style="dim"))
                self._usage = ""
            self._spin("Running...")
        elif kind == "approval_needed":
            self._stop_live()
        elif kind == "edit_approval_needed":
            self._stop_live()
            self._diff(event.path, event.diff)
            self._asked_diff[event.path] = True
        elif kind == "file_changed":
            self._stop_live()
            if event.status == "applied" and not self._asked_diff.pop(event.path, False):
                self._diff(event.path, event.diff)
            style = {"applied": "green", "refused": "yellow"}.get(event.status, "red")
            verb = {"applied": "written", "refused": "refused, not written"}.get(event.status, "not written")
            self.console.print(Text(f"{event.path}: {verb}. {event.message}".rstrip(), style=style))
        elif kind == "observation":
            self._stop_live()
            style = "yellow" if event.parse_failure or event.skipped else "red" if event.error else "green"
            self.console.print(
                Panel(
                    Text(event.text.rstrip() or "(no output)"),
                    title="Observation",
                    title_align="left",
                    border_style=style,
                )
            )
        elif kind == "final_answer":
            self._stop_live()
            self.console.print(
                Panel(Text(event.answer, style="bold"), title="Answer", title_align="left", border_style="bold green")
            )
        elif kind == "error":
            self._stop_live()
            self.err.print(Text(f"error: {event.message}", style="bold red"))
        elif kind == "prompt_progress":
            self._reading(event.done, event.total)
        elif kind == "usage":
            speed = f" · {event.tokens_per_second:.1f} tok/s" if event.tokens_per_second else ""
            self._usage = (
                f"{event.completion_tokens} tokens in {event.seconds:.1f} s{speed} · "
                f"context {event.context_used}/{event.context_length}"
            )

    def _reading(self, done: int, total: int) -> None:
        """Show how far the model has read its prompt: the one wait before the first token that has a size."""
        from rich.spinner import Spinner

        if self.console.is_terminal:
            text = f"Reading the prompt ({done}/{total} tokens)..." if done < total else "Thinking..."
            self._spinning = text
            self._show(Spinner("dots", text=text, style="cyan"))  # updated in place, not restarted
        elif done == 0 and total >= 256 and self.err.is_terminal:  # stdout is piped: one line on stderr
            self.err.print(f"Reading the prompt ({total} tokens)...", style="dim")

    def notice(self, text: str) -> None:
        from rich.text import Text

        self._stop_live()
        self.err.print(Text(text, style="yellow"))

    def _diff(self, path: str, diff: str) -> None:
        """A file change as a coloured unified diff."""
        from rich.panel import Panel
        from rich.syntax import Syntax

        self.console.print(
            Panel(Syntax(diff.rstrip() or "(no change)", "diff", theme="monokai", word_wrap=True), title=path,
                  title_align="left", expand=False)
        )  # fmt: skip

    def approve_edit(self, step: int, path: str, diff: str, show: bool = False) -> bool:
        """Ask whether to write one proposed file change (its diff is already on screen)."""
        from rich.prompt import Confirm

        self._stop_live()
        if show:
            self._diff(path, diff)
        return Confirm.ask(f"Write this change to {path}?", default=True, console=self.err)

    def approve(self, step: int, code: str) -> Any:
        """Ask run / skip / edit / always; edit opens $EDITOR (or asks for the new code line by line)."""
        import click
        from rich.prompt import Prompt

        from tui_agent.agent.approval import Approval

        self._stop_live()
        choice = Prompt.ask(
            "Run this code? [r]un / [s]kip / [e]dit / [a]lways",
            choices=["r", "s", "e", "a", "run", "skip", "edit", "always"],
            default="r",
            console=self.err,
            show_choices=False,
        )
        action = {"r": "run", "s": "skip", "e": "edit", "a": "always"}.get(choice, choice)
        if action in ("run", "always"):
            self._spin("Running...")
        if action != "edit":
            return Approval(action)
        try:
            edited = click.edit(code, extension=".py", require_save=False)
        except click.ClickException:
            edited = None
        if edited is None:
            self.err.print("Enter the code to run; finish with an empty line:")
            lines = []
            while (line := input()) != "":
                lines.append(line)
            edited = "\n".join(lines)
        return Approval("edit", code=edited) if edited.strip() else Approval("skip")

    def result(self, finished: Any, seconds: float) -> None:
        from rich.text import Text

        self._stop_live()
        if finished is None:
            self.err.print(Text("The run was stopped before it finished.", style="yellow"))
            return
        if finished.answer is None:
            why = {
                "max_steps": "it ran out of steps",
                "cancelled": "it was interrupted",
                "error": "of an error",
                "context_full": "the conversation outgrew the model's context window",
            }.get(finished.stop_reason, finished.stop_reason)
            self.err.print(Text(f"No answer: {why}.", style="yellow"))
        self.console.print(
            Text(
                f"{finished.steps} steps · {finished.prompt_tokens} prompt + {finished.completion_tokens} "
                f"generated tokens · {seconds:.1f} s",
                style="dim",
            )
        )

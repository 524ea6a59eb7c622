"""The conversation view: user messages, one block per agent step, final answers and notices.

Each step's thought streams into a Markdown widget as tokens arrive (batched, 20 updates a second at most); when
the step is parsed the block shows the thought as Markdown and the code highlighted; the observation follows,
folded when it is long. The view stays at the bottom as content grows until the user scrolls up (Textual's anchor).
"""

from __future__ import annotations

import asyncio

from rich.syntax import Syntax
from rich.text import Text
from textual.containers import Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Collapsible, Markdown, Static

from tui_agent.agent import events as ev

#: Observations longer than this (lines or characters) are folded.
FOLD_LINES = 12
FOLD_CHARS = 1200
#: Streamed text reaches the screen in batches at most this far apart.
FLUSH_SECONDS = 0.05


def split_thought(text: str) -> str:
    """The thought part of a streamed step (before its code fence), without the ``Thought:`` label."""
    head = text.split("```", 1)[0]
    head = head.strip()
    if head.lower().startswith("thought:"):
        head = head[len("thought:") :].strip()
    return head


def live_text(streamed: str) -> str:
    """What a streaming step shows: the model's text without its leading ``Thought:`` label.

    It only ever grows as ``streamed`` grows (a partial label shows nothing yet), so it can be appended piecewise.
    """
    label = "Thought:"
    if label.startswith(streamed):
        return ""
    if streamed.startswith(label):
        return streamed[len(label) :].lstrip(" ")
    return streamed


class UserMessage(Static):
    """What the user typed (attached files named below it)."""

    def __init__(self, text: str, attached: list[str] | None = None) -> None:
        body = Text(text)
        if attached:
            body.append("\n" + "attached: " + ", ".join(attached), style="dim")
        super().__init__(body, classes="user-message")


class Notice(Static):
    """A line from the app itself: information, or an error in plain words."""

    def __init__(self, text: str, *, error: bool = False) -> None:
        label = Text("✗ " if error else "• ", style="bold red" if error else "bold")
        label.append(text)
        super().__init__(label, classes="notice error" if error else "notice")
        self.is_error = error
        self.text = text


class InfoBlock(Markdown):
    """Markdown the app shows (help, session lists, context)."""

    DEFAULT_CLASSES = "info"


class FinalAnswerBlock(Vertical):
    """The agent's answer, set apart from the steps."""

    def __init__(self, answer: str) -> None:
        super().__init__(classes="final-answer")
        self.answer = answer
        self.border_title = "Answer"

    def compose(self):
        yield Markdown(self.answer or "(empty answer)")


class StepBlock(Vertical):
    """One agent step: thought (streamed), code, observation."""

    def __init__(self, step: int) -> None:
        super().__init__(classes="step")
        self.step = step
        self.border_title = f"Step {step}"
        self.streamed = ""
        self._sent = 0  # characters of live_text(streamed) already on screen
        self._timer: Timer | None = None
        self._flush_lock = asyncio.Lock()
        self._live: Markdown | None = None
        self.code: str | None = None
        self.observation: str | None = None

    async def add_token(self, text: str) -> None:
        """Append streamed text. The Markdown is updated at most every FLUSH_SECONDS: re-rendering a growing
        block on every token would cost O(n^2) for a long step, and nobody reads faster than 20 frames a second."""
        self.streamed += text
        if self._live is None:
            self._live = Markdown(classes="thought streaming")
            await self.mount(self._live)
        if self._timer is None:
            self._timer = self.set_timer(FLUSH_SECONDS, self._flush)

    async def _flush(self) -> None:
        async with self._flush_lock:
            self._timer = None
            display = live_text(self.streamed)
            if self._live is not None and len(display) > self._sent:
                new, self._sent = display[self._sent :], len(display)
                await self._live.append(new)

    async def finish_stream(self) -> None:
        """Put every token received so far on screen now."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        await self._flush()

    async def show_code(self, thought: str, code: str) -> None:
        """Replace the streamed text with the parsed thought and the highlighted code."""
        await self.finish_stream()
        if self._live is not None:
            await self._live.remove()
            self._live = None
        self.code = code
        widgets = []
        if thought.strip():
            widgets.append(Markdown(thought.strip(), classes="thought"))
        widgets.append(
            Static(Syntax(code, "python", theme="monokai", word_wrap=True, line_numbers=False), classes="code")
        )
        await self.mount_all(widgets)

    async def show_observation(self, obs: ev.Observation) -> None:
        await self.finish_stream()
        if not obs.error and obs.text.strip().startswith("Final answer:") and "\n" not in obs.text.strip():
            return  # the kernel's echo of final_answer(); the answer block follows
        text = obs.text.rstrip() or "(no output)"
        if obs.error and obs.error not in text:
            text = f"{text}\n{obs.error}" if obs.text.strip() else obs.error
        if obs.images:
            text += "".join(f"\n[image saved: {path}]" for path in obs.images)
        self.observation = text
        classes = "observation"
        title = "Observation"
        if obs.skipped:
            classes += " skipped"
            title = "Skipped"
        elif obs.parse_failure:
            classes += " parse-failure"
            title = "Could not parse the step"
        elif obs.error:
            classes += " failed"
            title = "Error"
        body = Static(Text(text), classes=classes)
        lines = text.count("\n") + 1
        if lines > FOLD_LINES or len(text) > FOLD_CHARS:
            await self.mount(
                Collapsible(body, title=f"{title} ({lines} lines)", collapsed=True, classes="observation-fold")
            )
        else:
            body.border_title = title
            await self.mount(body)

    async def show_change(self, change: ev.FileChanged) -> None:
        """A file change: its coloured diff, titled with the file and what became of it."""
        await self.finish_stream()
        verdict = {"applied": "written", "refused": "refused"}.get(change.status, "not written")
        body = Static(Syntax(change.diff.rstrip() or "(no change)", "diff", theme="monokai", word_wrap=True))
        body.add_class("file-change", change.status)
        body.border_title = f"{change.path}: {verdict}"
        if change.message:
            body.border_subtitle = change.message.strip()
        await self.mount(body)


class Conversation(VerticalScroll):
    """The scrolling list of everything said and done in the session."""

    DEFAULT_CLASSES = "conversation"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.steps: dict[int, StepBlock] = {}

    def on_mount(self) -> None:
        self.anchor()

    async def clear(self) -> None:
        self.steps.clear()
        await self.remove_children()

    async def add(self, widget) -> None:
        await self.mount(widget)

    async def notice(self, text: str, *, error: bool = False) -> Notice:
        widget = Notice(text, error=error)
        await self.mount(widget)
        return widget

    async def step(self, step: int) -> StepBlock:
        block = self.steps.get(step)
        if block is None:
            block = StepBlock(step)
            self.steps[step] = block
            await self.mount(block)
        return block

    async def show_event(self, event: ev.Event | dict) -> None:
        """Render one agent event (or a stored ``user`` / ``notice`` dict when replaying a session)."""
        if isinstance(event, dict):
            kind = event.get("event")
            if kind == "user":
                self.steps.clear()
                await self.mount(UserMessage(str(event.get("text", "")), list(event.get("attached") or [])))
            elif kind == "notice":
                await self.notice(str(event.get("text", "")), error=bool(event.get("error")))
            return
        if isinstance(event, ev.RunStarted):
            self.steps.clear()
        elif isinstance(event, ev.StepStarted):
            await self.step(event.step)
        elif isinstance(event, ev.Token):
            if getattr(event, "candidate", 0):
                return  # with SAG only the first candidate streams; the chosen step is shown when parsed
            await (await self.step(event.step)).add_token(event.text)
        elif isinstance(event, ev.CodeReady):
            await (await self.step(event.step)).show_code(event.thought, event.code)
        elif isinstance(event, ev.Observation):
            await (await self.step(event.step)).show_observation(event)
        elif isinstance(event, ev.FileChanged):
            await (await self.step(event.step)).show_change(event)
        elif isinstance(event, ev.FinalAnswer):
            for block in self.steps.values():
                await block.finish_stream()
            await self.mount(FinalAnswerBlock(event.answer))
        elif isinstance(event, ev.AgentError):
            await self.notice(event.message, error=True)
        elif isinstance(event, ev.RunFinished):
            for block in self.steps.values():
                await block.finish_stream()
            if event.stop_reason == "cancelled":
                await self.notice("Stopped. The conversation is kept; type to continue.")
            elif event.stop_reason == "max_steps":
                await self.notice(f"Stopped after {event.steps} steps without a final answer (max_steps).")

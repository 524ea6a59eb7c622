"""The CodeAct loop: the model writes a thought and code, the kernel runs it, the output comes back, until
``final_answer``. It knows nothing about screens or files; it yields typed events (see ``events``).

One ``Agent`` is one session: the conversation and the kernel's state persist across ``run`` calls. The agent keeps
two copies of the conversation: ``messages``, fitted to the context window, is what the model is shown; the
``transcript`` keeps every turn whole, as produced, and is what a trajectory records (a student learns from it).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tui_agent.agent.approval import Approver, EditApprover
from tui_agent.agent.changes import settle
from tui_agent.agent.copying import (
    COPIED_CELL,
    COPIED_FORCED,
    COPIED_NOTE,
    borrowed_numbers,
    copied_answer,
    copied_cell,
)
from tui_agent.agent.events import (
    AgentError,
    ApprovalNeeded,
    CodeReady,
    Event,
    FinalAnswer,
    Observation,
    PromptProgress,
    RunFinished,
    RunStarted,
    StepStarted,
    Token,
    UsageReport,
)
from tui_agent.agent.history import ContextOverflow, TokenCounter, fit_history
from tui_agent.agent.parse import (
    CORRECTIVE,
    END_CODE,
    STOPS,
    ParsedStep,
    format_step,
    literal_final_answer,
    parse_step,
)
from tui_agent.agent.prompt import (
    FORCED_FINAL,
    FORCED_PREFIX,
    STEP_PREFIX,
    build_system_prompt,
    observation_message,
    prompt_version,
    static_prefix,
    task_message,
    tool_names,
    workspace_repo_map,
)
from tui_agent.agent.repetition import RepetitionGuard
from tui_agent.agent.sag import Candidate, choose_by_code, choose_by_output, code_key, trial_run
from tui_agent.agent.trajectory import RunRecord, StepRecord, TrajectoryRecorder
from tui_agent.models.base import ChatModel, Message, ModelError, Usage

SKIPPED = "The user skipped this code; it was not run. Try another approach, or give your final answer."
READ_ONLY = (
    "Read-only mode: the code was not run (running code is disabled). Answer from what you already know by "
    "calling final_answer with a literal value."
)
SAG_TEMPERATURE = 0.7  # candidates must differ: greedy decoding would sample N copies of the same step


class _Cancelled(Exception):
    """Internal: the cancel event was set during a step."""


class Agent:
    """A CodeAct agent session over a chat model and a kernel.

    ``approver`` None runs every cell without asking; ``read_only`` never runs code. ``sag`` > 1 samples that many
    candidate steps (see ``sag``). ``repo_map`` None builds a short map of ``workspace`` for the prompt ("" skips
    it). ``recorder`` gets one trajectory line per run, also for runs that are cancelled or stopped early.
    """

    def __init__(
        self,
        model: ChatModel,
        kernel: Any,
        *,
        workspace: Path,
        max_steps: int = 8,
        sag: int = 1,
        temperature: float = 0.0,
        web: bool = True,
        approver: Approver | None = None,
        read_only: bool = False,
        repo_map: str | None = None,
        recorder: TrajectoryRecorder | None = None,
        max_tokens: int = 512,
        cell_timeout: float | None = None,
        seed: int = 0,
        step_prefix: str | None = None,
        prompt_style: str | None = None,
        edit_approver: EditApprover | None = None,
        undo: Any = None,
        copy_guard: bool = True,
    ):
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        if sag < 1:
            raise ValueError("sag must be at least 1")
        self.model = model
        self.kernel = kernel
        self.workspace = Path(workspace)
        self.max_steps = max_steps
        self.sag = sag
        self.temperature = temperature
        self.web = web
        self.approver = approver
        self.edit_approver = edit_approver
        self.read_only = read_only
        self._undo = undo  # the UndoStore that records applied file changes (made on first use when None)
        self.recorder = recorder
        self.max_tokens = max_tokens
        self.cell_timeout = cell_timeout
        self.seed = seed
        self.copy_guard = copy_guard  # refuse a few-shot example's answer that the run never found (see copying)
        # A base model (no chat template: the embedded default) gets each turn started with "Thought:" so it
        # continues in the agent's format; instruct models follow the format from the prompt alone.
        if step_prefix is None:
            step_prefix = STEP_PREFIX if getattr(model, "instruct", True) is False else ""
        self.step_prefix = step_prefix
        repo_map = workspace_repo_map(self.workspace) if repo_map is None else repo_map
        # A distilled model runs under the prompt style it was trained with (its registry entry says which).
        self.prompt_style = prompt_style or getattr(model, "prompt_style", None) or "full"
        self.system_prompt = build_system_prompt(web=web, repo_map=repo_map, style=self.prompt_style)
        self.messages: list[Message] = []
        self.transcript: list[Message] = []
        self.last_record: RunRecord | None = None
        self._looped: str | None = None  # the last generation's loop notice, when the repetition guard stopped it
        # Hears PromptProgress while the model reads a prompt (from the generating thread; run_episode sets it).
        self.progress: Callable[[Event], None] | None = None
        self._counter = TokenCounter(model.count_tokens)
        self.reset()

    # -- session -----------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the conversation (the kernel and its variables stay)."""
        self.messages = [{"role": "system", "content": self.system_prompt}]
        self.transcript = [{"role": "system", "content": self.system_prompt}]

    def restore(self, messages: list[Message]) -> None:
        """Continue a saved conversation (its system prompt is replaced by this agent's own)."""
        turns = [dict(m) for m in messages if m.get("role") != "system"]
        self.messages = [{"role": "system", "content": self.system_prompt}, *turns]  # type: ignore[list-item]
        self.transcript = [{"role": "system", "content": self.system_prompt}, *[dict(m) for m in turns]]  # type: ignore[list-item]

    def settings(self) -> dict[str, Any]:
        """Everything needed to reproduce a run: model file and hash, chat format, prompt, sampling, limits, tools."""
        describe = getattr(self.model, "describe", None)
        model = describe() if callable(describe) else {"name": self.model.name}
        return {
            **model,
            "prompt_version": prompt_version(),
            "prompt_style": self.prompt_style,
            "system_prompt_sha256": hashlib.sha256(self.system_prompt.encode("utf-8")).hexdigest(),
            "seed": self.seed,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "max_steps": self.max_steps,
            "sag": self.sag,
            "sag_temperature": SAG_TEMPERATURE if self.sag > 1 else None,
            "step_prefix": self.step_prefix,
            "web": self.web,
            "tools": tool_names(self.web),
            "read_only": self.read_only,
            "cell_timeout": self.cell_timeout,
            "copy_guard": self.copy_guard,
        }

    def warm(self, cancel: threading.Event | None = None) -> str | None:
        """Have the model hold the static part of the system prompt (see ``warm_prompt``); never raises."""
        with self._progress_for(0):
            return warm_prompt(self.model, self.system_prompt, cancel=cancel)

    @contextlib.contextmanager
    def _progress_for(self, step: int) -> Iterator[None]:
        """Route the model's prompt progress to ``self.progress`` as PromptProgress events of ``step``."""
        sink = self.progress
        if sink is None or not hasattr(self.model, "prompt_progress"):
            yield
            return
        self.model.prompt_progress = lambda done, total: sink(PromptProgress(step=step, done=done, total=total))
        try:
            yield
        finally:
            self.model.prompt_progress = None

    def _push(self, role: str, content: str) -> None:
        """Add a turn to both the model's view and the transcript."""
        self.messages.append({"role": role, "content": content})
        self.transcript.append({"role": role, "content": content})

    def _extend_last(self, text: str) -> None:
        """Append to the last (user) turn in both copies: consecutive user turns are merged, never stacked."""
        self.messages[-1]["content"] += text
        self.transcript[-1]["content"] += text

    def context_used(self) -> int:
        """Tokens the current conversation takes in the context window."""
        return self._counter.total(self.messages)

    # -- the loop ----------------------------------------------------------------------------------------------

    def run(
        self,
        task: str,
        *,
        cancel: threading.Event | None = None,
        first_thought: str | None = None,
        task_id: str = "",
        reference: dict[str, Any] | None = None,
    ) -> Iterator[Event]:
        """Work on ``task`` until a final answer, the step limit, an error or ``cancel``; ends with RunFinished.

        ``first_thought`` starts the first step's turn for the model (the teacher's first-thought prefix);
        ``task_id`` and ``reference`` (a task set's answer) are kept in the trajectory for filtering and scoring.
        """
        cancel = cancel or threading.Event()
        started = time.monotonic()
        record = RunRecord(
            task=task,
            model=self.model.name,
            task_id=task_id,
            reference=dict(reference or {}),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            settings=self.settings(),
            stop_reason="cancelled",  # until the run says otherwise (a consumer may stop iterating early)
        )
        if first_thought:
            record.settings["first_thought"] = first_thought
        self.last_record = record
        finished: RunFinished | None = None
        try:
            yield RunStarted(task=task, model=self.model.name)
            if self.messages[-1]["role"] == "user":  # the last run ended on an observation: keep turns alternating
                self._extend_last("\n\n" + task_message(task))
            else:
                self._push("user", task_message(task))
            task_index = len(self.messages) - 1
            stop_reason = "max_steps"
            try:
                self.warm(cancel)  # the cached system prompt, before the kernel starts (both are waits)
                if cancel.is_set():
                    raise _Cancelled
                if not self.read_only:
                    self._ensure_kernel()
                for step in range(1, self.max_steps + 2):
                    forced = step > self.max_steps
                    opening = _first_thought_prefix(first_thought) if step == 1 and first_thought else None
                    task_index = yield from self._step(step, record, cancel, task_index, forced=forced, opening=opening)
                    if record.final_answer is not None:
                        stop_reason = "answered"
                        break
            except _Cancelled:
                stop_reason = "cancelled"
            except ContextOverflow as exc:  # the run outgrew the model: an outcome of the task, not a breakdown
                stop_reason = "context_full"
                yield AgentError(message=_one_line(exc), step=len(record.steps) or None)
            except ModelError as exc:
                stop_reason = "error"
                yield AgentError(message=_one_line(exc), step=len(record.steps) or None)
            except Exception as exc:  # kernel or model failures reach the user as one line, never a traceback
                stop_reason = "error"
                yield AgentError(message=f"{type(exc).__name__}: {_one_line(exc)}", step=len(record.steps) or None)
            record.stop_reason = stop_reason
            record.seconds = round(time.monotonic() - started, 3)
            finished = RunFinished(
                answer=record.final_answer,
                steps=len(record.steps),
                stop_reason=stop_reason,
                prompt_tokens=record.prompt_tokens,
                completion_tokens=record.completion_tokens,
                seconds=record.seconds,
                extra={"parse_failures": record.parse_failures},
            )
        finally:
            record.seconds = record.seconds or round(time.monotonic() - started, 3)
            record.messages = [dict(m) for m in self.transcript]
            if self.recorder is not None:
                self.recorder.write(record)
        yield finished

    def _ensure_kernel(self) -> None:
        if not getattr(self.kernel, "alive", False):
            self.kernel.start()

    def _step(
        self,
        step: int,
        record: RunRecord,
        cancel: threading.Event,
        task_index: int,
        *,
        forced: bool,
        opening: str | None = None,
    ) -> Iterator[Event]:
        """One step: generate (N candidates with SAG), parse, approve, execute, observe. Returns the task index."""
        yield StepStarted(step=step)
        if forced:
            if self.messages[-1]["role"] == "user":
                self._extend_last(f"\n\n{FORCED_FINAL}")
            else:
                self._push("user", FORCED_FINAL)
        task_index = self._fit(task_index)
        rec = StepRecord(step=step, forced_final=forced)
        record.steps.append(rec)

        candidates = []
        n = self.sag
        temperature = self.temperature if n == 1 else max(self.temperature, SAG_TEMPERATURE)
        prefix = FORCED_PREFIX if forced else opening or self.step_prefix
        seeds = [self.seed + i for i in range(n)]
        if n > 1 and callable(getattr(self.model, "stream_many", None)):
            # the N candidates decoded together: one prompt evaluation, one batch per token for all of them
            sampled = yield from self._generate_many(step, temperature, seeds, cancel, prefix=prefix)
            rec.generation_seconds += max(usage.seconds for _, usage, _ in sampled)
        else:
            sampled = []
            for i, seed in enumerate(seeds):
                raw, usage = yield from self._generate(step, temperature, seed, cancel, candidate=i, prefix=prefix)
                sampled.append((raw, usage, self._looped))
                rec.generation_seconds += usage.seconds
        for i, (raw, usage, looped) in enumerate(sampled):
            cut = looped or usage.stop_reason == "straggler"  # stopped half-way: no complete step to vote with
            parsed = ParsedStep(raw, None, "none") if cut else parse_step(raw)
            candidates.append(Candidate(i, raw, parsed, usage, looped=looped))
            rec.prompt_tokens += usage.prompt_tokens
            rec.completion_tokens += usage.completion_tokens
            record.prompt_tokens += usage.prompt_tokens
            record.completion_tokens += usage.completion_tokens
        rec.candidates = n
        if n > 1:
            if self.read_only or self.approver is not None:
                choice = choose_by_code(candidates)
            else:
                distinct = _distinct_code(candidates)
                trial_run(self.kernel, list(distinct.values()), timeout=self.cell_timeout)
                for candidate in candidates:  # the same code in the same state: one trial answers for all copies
                    first = distinct.get(code_key(candidate.parsed.code or "")) if candidate.parsed.ok else None
                    if first is not None and first is not candidate:
                        candidate.result = first.result
                choice = choose_by_output(candidates)
            winner = choice.winner
            rec.agreement = choice.agreement
        else:
            winner = candidates[0]
        parsed = winner.parsed
        rec.raw, rec.thought, rec.code = winner.raw, parsed.thought, parsed.code

        if not parsed.ok:
            rec.parse_failure = True
            rec.repetition = winner.looped is not None
            rec.observation = winner.looped or CORRECTIVE
            self._push("assistant", winner.raw.strip() or "(empty answer)")
            self._push("user", observation_message(rec.observation))
            yield Observation(step=step, text=rec.observation, parse_failure=True)
            return task_index

        code = parsed.code or ""
        self._push("assistant", _history_text(winner.raw, parsed.how, parsed, code))
        yield CodeReady(step=step, thought=parsed.thought, code=code)

        if self.read_only:
            answer = literal_final_answer(code)
            if answer is not None and (yield from self._accepted(step, record, rec, answer, "", code)):
                self._answered(record, rec, answer)
                yield FinalAnswer(answer=answer, steps=step)
                return task_index
            if answer is not None:
                return task_index
            yield from self._observe(step, rec, READ_ONLY, skipped=True)
            return task_index

        if self.approver is not None:
            yield ApprovalNeeded(step=step, code=code)
            decision = self.approver(step, code)
            if cancel.is_set():
                raise _Cancelled
            if decision.action == "skip":
                rec.skipped = True
                yield from self._observe(step, rec, SKIPPED, skipped=True)
                return task_index
            if decision.action == "edit" and decision.code is not None and decision.code.strip():
                if decision.code.strip() != code.strip():
                    code = decision.code.strip()
                    rec.code, rec.edited = code, True
                    self.messages[-1]["content"] = self.transcript[-1]["content"] = format_step(parsed.thought, code)
                    yield CodeReady(step=step, thought=parsed.thought, code=code)
            elif decision.action == "always":
                self.approver = None

        began = time.monotonic()
        self._set_edit_policy()
        result = _reusable_trial(winner, code) or self._execute(code, cancel)
        rec.execution_seconds = round(time.monotonic() - began, 3)
        changes = getattr(result, "changes", None)
        if changes:
            note = yield from settle(step, changes, self.workspace, self._edit_approver(), self.undo_store())
        if cancel.is_set():
            rec.observation = "(cancelled)"
            raise _Cancelled
        text = result.observation()
        if changes and note:
            text = f"{text}\n{note}" if text.strip() else note
        text = _note_repeat(record.steps[:-1], code, text)
        if self.copy_guard and result.final_answer is None and copied_cell(code, self._own(record), self.system_prompt):
            rec.copied_cell = True
            text = f"{text}\n{COPIED_CELL}" if text.strip() else COPIED_CELL
        rec.error = result.error
        answer = None if result.final_answer is None else str(result.final_answer)
        if answer is not None and (yield from self._accepted(step, record, rec, answer, text, code)):
            rec.observation = text
            if text.strip():
                yield Observation(step=step, text=text, error=result.error, images=tuple(result.images or ()))
            self._answered(record, rec, str(result.final_answer))
            yield FinalAnswer(answer=str(result.final_answer), steps=step)
            return task_index
        if result.final_answer is not None:
            return task_index
        yield from self._observe(step, rec, text, error=result.error, images=tuple(result.images or ()))
        return task_index

    def _set_edit_policy(self) -> None:
        """Auto mode writes files at once; ask mode has the kernel propose them (asked after the cell)."""
        setter = getattr(self.kernel, "set_edit_policy", None)
        if callable(setter):
            setter("refuse" if self.read_only else "apply" if self.approver is None else "stage")

    def _edit_approver(self) -> EditApprover | None:
        """Who accepts proposed file changes: the given one, or the cell approver's ``approve_edit``."""
        return self.edit_approver or getattr(self.approver, "approve_edit", None)

    def undo_store(self) -> Any:
        """The undo journal of this workspace, opened on first use; None where it cannot be opened."""
        if self._undo is None:
            try:
                from tui_agent.undo import UndoStore

                self._undo = UndoStore(self.workspace)
            except Exception:  # noqa: BLE001 - edits still work; they are just not undoable
                return None
        return self._undo

    def _own(self, record: RunRecord) -> list[str]:
        """What this run found itself: its task and the observations of the cells it did not copy."""
        return [record.task, *(s.observation for s in record.steps if not s.copied_cell)]

    def _accepted(
        self, step: int, record: RunRecord, rec: StepRecord, answer: str, output: str, code: str
    ) -> Iterator[Event]:
        """False (after telling the model) when the answer is a few-shot example's, found nowhere in this run.

        On a normal step the model is told and gets the next step; on the forced final turn the run ends without an
        answer, which is honest, rather than with a copied one, which is wrong."""
        if not self.copy_guard:
            return True
        own = self._own(record)
        computed_from_prompt = bool(borrowed_numbers(code, own, self.system_prompt))
        if not rec.copied_cell:
            own.append(output)
        if not computed_from_prompt and not copied_answer(answer, own, self.system_prompt):
            return True
        rec.copied_answer = True
        note = (COPIED_FORCED if rec.forced_final else COPIED_NOTE).format(answer=answer)
        yield from self._observe(step, rec, f"{output}\n{note}" if output.strip() else note, error=note)
        return False

    def _answered(self, record: RunRecord, rec: StepRecord, answer: str) -> None:
        rec.final_answer = answer
        record.final_answer = answer

    def _observe(
        self,
        step: int,
        rec: StepRecord,
        text: str,
        *,
        error: str | None = None,
        skipped: bool = False,
        images: tuple[str, ...] = (),
    ) -> Iterator[Event]:
        rec.observation = text
        self._push("user", observation_message(text))
        yield Observation(step=step, text=text, error=error, skipped=skipped, images=images)

    def _fit(self, task_index: int) -> int:
        """Shorten the history to leave room for one generation; returns the task message's new index."""
        budget = self.model.context_length - self.max_tokens
        fitted = fit_history(self.messages, budget=budget, counter=self._counter, keep_from=task_index)
        task_index -= len(self.messages) - len(fitted)
        self.messages = fitted
        return task_index

    def _generate(
        self,
        step: int,
        temperature: float,
        seed: int,
        cancel: threading.Event,
        *,
        candidate: int = 0,
        prefix: str = "",
    ) -> Iterator[Event]:
        """Stream one model turn as Token events; returns (text, usage). A ``prefix`` starts the assistant's
        turn for it (the model continues it) and is part of the returned text."""
        guard = RepetitionGuard()
        messages = list(self.messages)
        if prefix:
            messages.append({"role": "assistant", "content": prefix})
            yield Token(step=step, text=prefix, candidate=candidate)
        stream = self.model.stream_chat(
            messages,
            stop=STOPS,
            max_tokens=self.max_tokens,
            temperature=temperature,
            seed=seed,
            cancel=cancel,
        )
        try:
            with self._progress_for(step):
                for piece in stream:
                    yield Token(step=step, text=piece, candidate=candidate)
                    if guard.feed(piece) or cancel.is_set():
                        break  # a loop: stop generating now rather than at the token limit
        finally:
            close = getattr(stream, "close", None)
            if callable(close):
                close()
        usage = self.model.last_usage or Usage()
        yield UsageReport(
            step=step,
            prompt_tokens=usage.prompt_tokens,
            prompt_eval_tokens=usage.prompt_eval_tokens,
            completion_tokens=usage.completion_tokens,
            seconds=round(usage.seconds, 3),
            tokens_per_second=round(usage.tokens_per_second, 2),
            context_used=self.context_used() + usage.completion_tokens,
            context_length=self.model.context_length,
        )
        if cancel.is_set():
            raise _Cancelled
        self._looped = guard.observation() if guard.unit is not None else None
        return _join_prefix(prefix, guard.trimmed()), usage

    def _generate_many(
        self, step: int, temperature: float, seeds: list[int], cancel: threading.Event, *, prefix: str = ""
    ) -> Iterator[Event]:
        """Stream N candidate turns sampled together (``model.stream_many``) as Token events of each candidate;
        returns [(text, usage, loop notice or None)] in candidate order."""
        guards = [RepetitionGuard() for _ in seeds]
        looping: set[int] = set()
        messages = list(self.messages)
        if prefix:
            messages.append({"role": "assistant", "content": prefix})
            for i in range(len(seeds)):
                yield Token(step=step, text=prefix, candidate=i)
        stream = self.model.stream_many(
            messages,
            seeds=seeds,
            stop=STOPS,
            max_tokens=self.max_tokens,
            temperature=temperature,
            cancel=cancel,
            halt=lambda i, _text: i in looping,
        )
        try:
            with self._progress_for(step):
                for i, piece in stream:
                    yield Token(step=step, text=piece, candidate=i)
                    if guards[i].feed(piece):
                        looping.add(i)  # a loop: this candidate stops now rather than at the token limit
        finally:
            close = getattr(stream, "close", None)
            if callable(close):
                close()
        usages = list(getattr(self.model, "last_usages", None) or [Usage() for _ in seeds])
        wall = max(usage.seconds for usage in usages)
        completion = sum(usage.completion_tokens for usage in usages)
        generation = max(usage.generation_seconds for usage in usages)
        yield UsageReport(
            step=step,
            prompt_tokens=usages[0].prompt_tokens,
            prompt_eval_tokens=usages[0].prompt_eval_tokens,
            completion_tokens=completion,
            seconds=round(wall, 3),
            tokens_per_second=round(completion / generation, 2) if generation > 0 else 0.0,
            context_used=self.context_used() + max(usage.completion_tokens for usage in usages),
            context_length=self.model.context_length,
        )
        if cancel.is_set():
            raise _Cancelled
        return [
            (
                _join_prefix(prefix, guard.trimmed()),
                usage,
                guard.observation() if guard.unit is not None else None,
            )
            for guard, usage in zip(guards, usages, strict=True)
        ]

    def _execute(self, code: str, cancel: threading.Event) -> Any:
        """Run a cell; a watcher interrupts the kernel as soon as ``cancel`` is set from another thread."""
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.05):
                if cancel.is_set():
                    self.kernel.interrupt()
                    return

        watcher = threading.Thread(target=watch, name="agent-cancel-watch", daemon=True)
        watcher.start()
        try:
            if self.cell_timeout is not None:
                return self.kernel.execute(code, timeout=self.cell_timeout)
            return self.kernel.execute(code)
        finally:
            done.set()
            watcher.join()


def warm_prompt(
    model: Any, system_prompt: str, *, cancel: threading.Event | None = None, static_only: bool = False
) -> str | None:
    """Have ``model`` hold ``system_prompt`` in its KV cache, restored from its persistent prompt cache or read
    now, so a first step only reads the task. A prompt not cached yet (a new workspace, a changed repo map) starts
    from its static part (shared by every workspace) and reads only the rest. None for models without
    ``warm_prefix`` (HTTP teachers, test doubles) or when it fails: warming is an optimisation, never an error.
    ``static_only`` warms just the static part (before the workspace is known)."""
    warm, render = getattr(model, "warm_prefix", None), getattr(model, "render", None)
    if not callable(warm) or not callable(render):
        return None
    try:
        text = render([{"role": "system", "content": system_prompt}, {"role": "user", "content": "-"}])
        at = text.find(system_prompt)
        if at < 0:
            return None
        static = text[: at + len(static_prefix(system_prompt))]
        whole = text[: at + len(system_prompt)]
        if static_only or static == whole:
            return warm(static, cancel=cancel)
        return warm(whole, base=static, cancel=cancel)
    except Exception:  # noqa: BLE001
        logging.getLogger(__name__).warning("could not warm the prompt cache", exc_info=True)
        return None


REPEAT_NOTE = (
    "[Note: the previous step ran this same code and got this same result; running it again will not change "
    "anything. Do something different.]"
)


def _note_repeat(earlier: list[StepRecord], code: str, text: str) -> str:
    """Small models fall into loops of whole steps (the same cell, the same output, until the step limit); the
    observation says so, once per repeat, so the model sees that it is going round in circles."""
    previous = next((s for s in reversed(earlier) if s.code is not None and not s.parse_failure), None)
    if previous is None or previous.code is None or previous.code.strip() != code.strip():
        return text
    if previous.observation.removesuffix(REPEAT_NOTE).rstrip() != text.rstrip():
        return text
    return f"{text.rstrip()}\n{REPEAT_NOTE}" if text.strip() else REPEAT_NOTE


def _distinct_code(candidates: list[Candidate]) -> dict[str, Candidate]:
    """The first parsed candidate of each distinct code (by meaning): the ones whose trials need running."""
    distinct: dict[str, Candidate] = {}
    for candidate in candidates:
        if candidate.parsed.ok:
            distinct.setdefault(code_key(candidate.parsed.code or ""), candidate)
    return distinct


def _reusable_trial(winner: Candidate, code: str) -> Any:
    """The winner's trial result when running it again cannot differ: its cell is only ``final_answer(<literal>)``
    (no state to carry into the session, nothing else to run) and its trial ran cleanly. Else None: run it."""
    result = winner.result
    if result is None or code.strip() != (winner.parsed.code or "").strip() or literal_final_answer(code) is None:
        return None
    if getattr(result, "error", None) or getattr(result, "timed_out", False) or getattr(result, "restarted", False):
        return None
    return result if getattr(result, "final_answer", None) is not None else None


def _first_thought_prefix(thought: str) -> str:
    """The opening of the first step built from a first thought: the model continues the sentence it starts."""
    text = thought.strip()
    return text if text.startswith(STEP_PREFIX) else f"{STEP_PREFIX} {text}"


def _join_prefix(prefix: str, continuation: str) -> str:
    """The whole turn: the prefix written for the model plus what it generated, without the prefix twice when a
    model repeats it (instruct models often start with "Thought:" again)."""
    if prefix and continuation.lstrip().startswith(prefix.strip()):
        return continuation.lstrip()
    return prefix + continuation


def _history_text(raw: str, how: str, parsed: Any, code: str) -> str:
    """The assistant turn kept in history: the model's own text when it followed the format, else normalised."""
    if how == "fence":
        text = raw.rstrip()
        return text if text.endswith(END_CODE) else text + END_CODE
    return format_step(parsed.thought, code)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]

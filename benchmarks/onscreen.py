"""Tokens per second the user sees: the TUI's screen, `ask`'s agent loop, and raw llama-cpp-python, on one real
model, quiet and next to a competing CPU-bound process. Used by bench_tui.py (``--speed``).

Each path generates the first step of the same task (same system prompt, greedy, the same token budget); speed is
completion tokens over the time from the first streamed token to the last (the prompt excluded; the prompt cache is
warmed first so every path starts from the same state). The TUI's time is taken off the screen: the first and the
last change of the step's streamed text, polled every 5 ms. Runs alternate raw, ask, tui per round.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

TASK = "Write a Python function that returns the n-th Fibonacci number, then print the first 30 of them."
BURNER = "while True: pass"


def _agent(model, workspace: Path, max_tokens: int):
    from tui_agent.agent.loop import Agent

    return Agent(model, None, workspace=workspace, max_steps=1, read_only=True, repo_map="", max_tokens=max_tokens)


def raw_speed(model, workspace: Path, max_tokens: int) -> float:
    """llama-cpp-python's own streaming completion of the agent's first prompt."""
    agent = _agent(model, workspace, max_tokens)
    messages = [*agent.messages, {"role": "user", "content": f"Task: {TASK}"}]
    if agent.step_prefix:
        messages.append({"role": "assistant", "content": agent.step_prefix})
    llm = model.llama
    tokens = llm.tokenize(model.render(messages).encode(), add_bos=True, special=True)
    stamps = []
    for _chunk in llm.create_completion(
        tokens, max_tokens=max_tokens, temperature=0.0, top_k=1, repeat_penalty=1.0, stream=True
    ):
        stamps.append(time.perf_counter())
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0


def ask_speed(model, workspace: Path, max_tokens: int) -> float:
    """The agent loop as `ask` runs it: Token events timed as they arrive."""
    agent = _agent(model, workspace, max_tokens)
    stamps, count = [], 0
    for event in agent.run(TASK):
        if event.kind == "token" and not (agent.step_prefix and event.text == agent.step_prefix and not stamps):
            stamps.append(time.perf_counter())
        elif event.kind == "usage":
            count = event.completion_tokens
            break  # the first step is what is measured
    return (count - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and count > 1 else 0.0


async def tui_speed(model, workspace: Path, max_tokens: int) -> float:
    """The interactive session: the step's streamed text on screen, first change to last."""
    from tui_agent.config import Settings
    from tui_agent.sessions import SessionStore
    from tui_agent.tui.app import AgentApp
    from tui_agent.tui.backend import Backend
    from tui_agent.tui.widgets.conversation import StepBlock

    settings = Settings(model=model.name, approval="read-only", web=False, max_steps=1)

    def make_agent(chat_model, kernel, ws, s, **kwargs):
        return _agent(chat_model, ws, max_tokens)

    app = AgentApp(
        settings, workspace, backend=Backend(load_model=lambda n, s: model, make_agent=make_agent), store=SessionStore()
    )
    async with app.run_test(size=(100, 40)) as pilot:
        while app.agent is None:
            await pilot.pause(0.05)
        while app.status.reading:
            await pilot.pause(0.05)
        app.prompt.load_text(TASK)
        app.prompt.submit()
        skip = 1 if app.agent.step_prefix else 0  # the step prefix is shown before anything is generated
        seen, changes, first, last = "", 0, None, None
        started = False
        while True:
            started = started or app.running
            blocks = list(app.query(StepBlock))
            if len(blocks) > 1 and app.cancel is not None:
                app.cancel.set()  # the first step is what is measured
            live = blocks[0]._live if blocks else None
            text = live.source if live is not None else ""
            if text and text != seen and len(text) >= len(seen):
                now = time.perf_counter()
                changes += 1
                if changes == skip + 1:
                    first = now
                last, seen = now, text
            if started and not app.running:
                break
            await pilot.pause(0.005)
        record = app.agent.last_record
    count = record.steps[0].completion_tokens if record and record.steps else 0
    return (count - 1) / (last - first) if first and last and last > first and count > 1 else 0.0


def measure(model, workspace: Path, max_tokens: int, rounds: int, *, competing: bool) -> dict:
    """Median tokens/s per path; ``competing`` runs one CPU-bound process for the whole measurement."""
    from tui_agent.agent.loop import warm_prompt

    burner = subprocess.Popen([sys.executable, "-c", BURNER]) if competing else None
    try:
        warm_prompt(model, _agent(model, workspace, max_tokens).system_prompt)
        speeds: dict[str, list[float]] = {"raw": [], "ask": [], "tui": []}
        threads: list[int] = []
        for _ in range(rounds):
            speeds["raw"].append(raw_speed(model, workspace, max_tokens))
            speeds["ask"].append(ask_speed(model, workspace, max_tokens))
            threads.append(getattr(model, "n_threads", 0))
            speeds["tui"].append(asyncio.run(tui_speed(model, workspace, max_tokens)))
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()
    medians = {k: round(statistics.median(v), 2) for k, v in speeds.items()}
    return {
        "competing_process": competing,
        "rounds": rounds,
        "threads_chosen": threads,
        "tokens_per_s": medians,
        "tui_over_raw": round(medians["tui"] / medians["raw"], 3) if medians["raw"] else None,
        "ask_over_raw": round(medians["ask"] / medians["raw"], 3) if medians["raw"] else None,
        "samples": {k: [round(x, 2) for x in v] for k, v in speeds.items()},
    }


def measure_speed(model_path: str, max_tokens: int, rounds: int, workspace: Path) -> dict:
    from tui_agent.config import Settings
    from tui_agent.session import load_model

    model = load_model(model_path, Settings(web=False))
    try:
        return {
            "model": model.name,
            "max_tokens": max_tokens,
            "quiet": measure(model, workspace, max_tokens, rounds, competing=False),
            "competing": measure(model, workspace, max_tokens, rounds, competing=True),
        }
    finally:
        model.close()

"""The interactive session's responsiveness: launch to an interactive screen, and a long streamed answer.

    python benchmarks/bench_tui.py                 # 5 launches each, a 3000-token answer
    python benchmarks/bench_tui.py --launches 10 --tokens 5000 --model PATH.gguf

1. Launch: a fresh process per launch, timed from before the process starts to the moment the app takes input
   (Textual's auto-pilot runs once the first screen is up). tui-agent goes through its own CLI module and the
   session setup, with the model loading in the background (the time until the model is ready is reported too);
   the baseline is a bare Textual app (one Static, one Input) launched the same way, in the same run.
2. Streaming: a thought of N tokens through the real path (agent loop in a worker thread, events posted to the
   app, Markdown), with a real Jupyter kernel. Burst: as fast as possible, timed until the whole text is on
   screen. Paced: at a model's speed, measuring the event loop's responsiveness while it streams (lateness of a
   20 ms timer: p95 and max). Both check that the screen's text equals the streamed text (no dropped tokens).
   The baseline is the same stream written to a bare Static, one update per token.

3. Speed on screen (``--speed``, only this part): tokens/s of the real embedded model as the TUI shows them, next
   to `ask`'s agent loop and raw llama-cpp-python, quiet and with a competing CPU-bound process
   (benchmarks/onscreen.py). Goal: the TUI within 0.8x of raw in both. Writes bench_tui_speed.json.

Prints a rich table and writes benchmarks/results/bench_tui.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_MODEL = Path.home() / ".cache" / "tui-agent" / "offline-models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"

# -- launch ---------------------------------------------------------------------------------------------------

CHILD_TUI = """
import sys, time
started = float(sys.argv[1])
from pathlib import Path
import tui_agent.cli  # the command's own import path
from tui_agent.config import Settings
from tui_agent.sessions import SessionStore
from tui_agent.tui.app import AgentApp
settings = Settings.load()
settings.model = sys.argv[2]
app = AgentApp(settings, Path.cwd(), store=SessionStore())
result = {}
async def pilot(p):
    result["interactive"] = time.time() - started
    if sys.argv[3] == "wait-model":
        while app.status.model_state == "loading":
            await p.pause(0.05)
        result["model_ready"] = time.time() - started
        result["model_state"] = app.status.model_state
    app.exit()
app.run(headless=True, auto_pilot=pilot, size=(100, 30))
print(result)
"""

CHILD_BARE = """
import sys, time
started = float(sys.argv[1])
from textual.app import App
from textual.widgets import Input, Static
class Bare(App):
    def compose(self):
        yield Static("hello")
        yield Input()
result = {}
async def pilot(p):
    result["interactive"] = time.time() - started
    p.app.exit()
Bare().run(headless=True, auto_pilot=pilot, size=(100, 30))
print(result)
"""


def launch(script: str, args: Sequence[str], env: dict[str, str], cwd: Path) -> dict:
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-c", script, str(started), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "child failed")
    return eval(done.stdout.strip().splitlines()[-1])  # noqa: S307 - our own child's dict literal


def bench_launch(n: int, model: str, home: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TUI_AGENT_WEB": "false"}
    for name in ("CONFIG", "DATA", "CACHE"):
        (home / name.lower()).mkdir(parents=True, exist_ok=True)
        env[f"TUI_AGENT_{name}_DIR"] = str(home / name.lower())
    workspace = home / "project"
    workspace.mkdir(exist_ok=True)
    (workspace / "main.py").write_text("def main():\n    print('hi')\n")
    launch(CHILD_BARE, [], env, workspace)  # warm the file cache for both
    bare, tui, ready = [], [], []
    for i in range(n):
        bare.append(launch(CHILD_BARE, [], env, workspace)["interactive"])
        mode = "wait-model" if i == 0 else "no-wait"
        got = launch(CHILD_TUI, [model, mode], env, workspace)
        tui.append(got["interactive"])
        if "model_ready" in got:
            ready.append(got["model_ready"])
            state = got["model_state"]
    return {
        "launches": n,
        "bare_textual_s": _stats(bare),
        "tui_agent_s": _stats(tui),
        "model_ready_s": ready[0] if ready else None,
        "model_state": state if ready else None,
        "goal_s": 1.0,
    }


# -- streaming ------------------------------------------------------------------------------------------------


class StreamingModel:
    """First step: one long thought without code (it stays on screen as streamed); then a final answer step.

    ``rate`` paces the tokens (tokens per second, like a real model); 0 sends them as fast as possible.
    """

    name = "stream-bench"

    def __init__(self, tokens: int, rate: float = 0.0) -> None:
        words = ["The", " answer", " needs", " **careful**", " thought", ",", " `code`", " and", " lists", ".\n"]
        self.pieces = ["Thought: "] + [words[i % len(words)] for i in range(tokens)]
        self.rate = rate
        self.calls = 0
        from tui_agent.models.base import Usage

        self._usage = Usage()
        self._usage_cls = Usage

    @property
    def context_length(self) -> int:
        return 1_000_000

    @property
    def last_usage(self):
        return self._usage

    def count_tokens(self, text: str) -> int:
        return len(text) // 4

    def stream_chat(self, messages, *, stop=(), max_tokens=512, temperature=0.0, seed=None, grammar=None,
                    cancel=None) -> Iterator[str]:  # fmt: skip
        self.calls += 1
        pieces = self.pieces if self.calls == 1 else ["Thought: done.\n```py\nfinal_answer('done')\n```"]
        started = time.perf_counter()
        for i, piece in enumerate(pieces):
            if self.rate:
                delay = started + i / self.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            yield piece
        self._usage = self._usage_cls(10, 10, len(pieces), 0.0, time.perf_counter() - started, "stop")


async def _lag_probe(stop: threading.Event, lags: list[float], period: float = 0.02) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        expected = loop.time() + period
        await asyncio.sleep(period)
        lags.append(max(0.0, loop.time() - expected))


def _result(pieces: list[str], seconds: float, complete: bool, lags: list[float]) -> dict:
    return {
        "tokens": len(pieces),
        "seconds": seconds,
        "tokens_per_s": len(pieces) / seconds,
        "no_dropped_tokens": complete,
        "lag_p95_ms": 1000 * _pct(lags, 95),
        "lag_max_ms": 1000 * max(lags, default=0.0),
    }


async def bench_stream_tui(tokens: int, workspace: Path, rate: float = 0.0) -> dict:
    """Time until the whole streamed thought is on screen, through the real app path."""
    from tui_agent.config import Settings
    from tui_agent.sessions import SessionStore
    from tui_agent.tui.app import AgentApp
    from tui_agent.tui.backend import Backend
    from tui_agent.tui.widgets.conversation import StepBlock, live_text

    model = StreamingModel(tokens, rate)
    settings = Settings(model=model.name, approval="auto", web=False, max_steps=2)
    app = AgentApp(settings, workspace, backend=Backend(load_model=lambda n, s: model), store=SessionStore())
    expected = live_text("".join(model.pieces))
    async with app.run_test(size=(100, 40)) as pilot:
        while app.agent is None:
            await pilot.pause(0.05)
        lags: list[float] = []
        stop = threading.Event()
        probe = asyncio.create_task(_lag_probe(stop, lags))
        started = time.perf_counter()
        app.prompt.load_text("write a long answer")
        app.prompt.submit()  # (pilot.press would wait until the app has processed the whole stream)

        def on_screen() -> str:
            blocks = list(app.query(StepBlock))
            live = blocks[0]._live if blocks else None
            return live.source if live is not None else ""

        while on_screen() != expected and (app.running or not app.query(StepBlock)):
            await pilot.pause(0.005)
        elapsed = time.perf_counter() - started
        stop.set()
        await probe
        complete = on_screen() == expected
        while app.running:
            await pilot.pause(0.05)
    return _result(model.pieces, elapsed, complete, lags)


async def bench_stream_bare(tokens: int, rate: float = 0.0) -> dict:
    """Baseline: the same pieces appended to a bare Static from a thread, one message per piece."""
    from textual.app import App
    from textual.message import Message
    from textual.widgets import Static

    model = StreamingModel(tokens, rate)

    class Piece(Message):
        def __init__(self, text: str | None) -> None:
            super().__init__()
            self.text = text

    class Bare(App):
        def compose(self):
            yield Static(id="out")

        def on_mount(self) -> None:
            self.text = ""
            self.done = False

        def on_piece(self, message: Piece) -> None:
            if message.text is None:
                self.done = True
                return
            self.text += message.text
            self.query_one("#out", Static).update(self.text)

    app = Bare()
    async with app.run_test(size=(100, 40)) as pilot:
        lags: list[float] = []
        stop = threading.Event()
        probe = asyncio.create_task(_lag_probe(stop, lags))
        started = time.perf_counter()

        def feed() -> None:
            for piece in model.stream_chat([]):
                app.post_message(Piece(piece))
            app.post_message(Piece(None))

        threading.Thread(target=feed, daemon=True).start()
        while not app.done:
            await pilot.pause(0.005)
        elapsed = time.perf_counter() - started
        stop.set()
        await probe
        complete = app.text == "".join(model.pieces)
    return _result(model.pieces, elapsed, complete, lags)


# -- helpers --------------------------------------------------------------------------------------------------


def _stats(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": [round(v, 4) for v in values],
    }


def _pct(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=3000)
    parser.add_argument("--paced-tokens", type=int, default=400)
    parser.add_argument("--rate", type=float, default=80.0, help="tokens per second of the paced stream")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model loaded in the background at launch")
    parser.add_argument("--speed", action="store_true", help="only part 3: tokens/s on screen vs ask vs raw")
    parser.add_argument("--speed-model", default="gemma3-270m", help="model of part 3 (default: the embedded one)")
    parser.add_argument("--speed-tokens", type=int, default=160)
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    if args.speed:
        return run_speed(args)

    from rich.console import Console
    from rich.table import Table

    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        for name in ("CONFIG", "DATA", "CACHE"):
            (home / name.lower()).mkdir()
            os.environ[f"TUI_AGENT_{name}_DIR"] = str(home / name.lower())
        console.print(f"[bold]Launch[/bold]: {args.launches} launches each (model {args.model})")
        launch_result = bench_launch(args.launches, args.model, home)
        workspace = home / "project"
        console.print(f"[bold]Streaming[/bold]: {args.tokens} tokens")
        stream_tui = asyncio.run(bench_stream_tui(args.tokens, workspace))
        stream_bare = asyncio.run(bench_stream_bare(args.tokens))
        console.print(f"[bold]Paced[/bold]: {args.paced_tokens} tokens at {args.rate:g} tokens/s")
        paced_tui = asyncio.run(bench_stream_tui(args.paced_tokens, workspace, args.rate))
        paced_bare = asyncio.run(bench_stream_bare(args.paced_tokens, args.rate))

    table = Table(title="tui-agent: launch and streaming", title_justify="left")
    for column in ("measure", "bare Textual (baseline)", "tui-agent", "note"):
        table.add_column(column)
    b, t = launch_result["bare_textual_s"], launch_result["tui_agent_s"]
    table.add_row(
        "launch to interactive, median (s)",
        f"{b['median']:.3f}",
        f"{t['median']:.3f}",
        f"goal < 1 s; model ready after {launch_result['model_ready_s'] or float('nan'):.2f} s "
        f"({launch_result['model_state']}), in the background",
    )
    table.add_row("launch, min-max (s)", f"{b['min']:.3f}-{b['max']:.3f}", f"{t['min']:.3f}-{t['max']:.3f}", "")
    table.add_row(
        f"burst of {stream_tui['tokens']} tokens, all on screen (s)",
        f"{stream_bare['seconds']:.2f}",
        f"{stream_tui['seconds']:.2f}",
        "tui-agent: agent loop in a thread, events, Markdown",
    )
    table.add_row(
        "rendered tokens/s (burst)",
        f"{stream_bare['tokens_per_s']:.0f}",
        f"{stream_tui['tokens_per_s']:.0f}",
        "models here: 30-50 tok/s",
    )
    table.add_row(
        "no dropped tokens (burst / paced)",
        f"{stream_bare['no_dropped_tokens']} / {paced_bare['no_dropped_tokens']}",
        f"{stream_tui['no_dropped_tokens']} / {paced_tui['no_dropped_tokens']}",
        "screen text == streamed text",
    )
    table.add_row(
        f"loop lag at {args.rate:g} tok/s, p95 / max (ms)",
        f"{paced_bare['lag_p95_ms']:.0f} / {paced_bare['lag_max_ms']:.0f}",
        f"{paced_tui['lag_p95_ms']:.0f} / {paced_tui['lag_max_ms']:.0f}",
        "lateness of a 20 ms timer: input stays responsive",
    )
    console.print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bench_tui.json"
    out.write_text(
        json.dumps(
            {
                "launch": launch_result,
                "stream_burst": {"tui_agent": stream_tui, "bare_textual": stream_bare},
                "stream_paced": {"rate": args.rate, "tui_agent": paced_tui, "bare_textual": paced_bare},
                "machine": {"cpus": os.cpu_count()},
            },
            indent=2,
        )
    )
    console.print(f"wrote {out.relative_to(REPO)}")


def run_speed(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from benchmarks.onscreen import measure_speed

    console = Console()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("CONFIG", "DATA", "CACHE"):  # a fresh home: sessions and the prompt cache stay out of yours
            (Path(tmp) / name.lower()).mkdir()
            os.environ[f"TUI_AGENT_{name}_DIR"] = str(Path(tmp) / name.lower())
        (Path(tmp) / "project").mkdir()
        result = measure_speed(args.speed_model, args.speed_tokens, args.speed_rounds, Path(tmp) / "project")
    table = Table(title=f"Tokens/s on screen: {result['model']}, {args.speed_tokens} tokens, "
                  f"{args.speed_rounds} rounds, medians", title_justify="left")  # fmt: skip
    for column in ("condition", "raw llama-cpp-python", "ask", "TUI", "TUI / raw", "threads chosen", "goal"):
        table.add_column(column)
    for name in ("quiet", "competing"):
        part = result[name]
        speeds = part["tokens_per_s"]
        table.add_row(
            "quiet" if name == "quiet" else "1 CPU-bound process",
            f"{speeds['raw']:.1f}",
            f"{speeds['ask']:.1f}",
            f"{speeds['tui']:.1f}",
            f"{part['tui_over_raw']:.3f}",
            ",".join(str(t) for t in part["threads_chosen"]),
            ">= 0.8",
        )
    console.print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bench_tui_speed.json"
    command = " ".join(["python", "benchmarks/bench_tui.py", *sys.argv[1:]])
    payload = {"command": command, "commit": commit, "cpus": os.cpu_count(), "note": args.note, **result}
    out.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()

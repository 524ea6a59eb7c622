"""Runtime overhead and KV-prefix reuse of tui-agent's llama.cpp runtime, against plain llama-cpp-python.

    python benchmarks/bench_runtime.py                       # embedded Gemma 3 270M
    python benchmarks/bench_runtime.py --model ~/.cache/tui-agent/offline-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf

1. Generation throughput: the same prompt, greedy, the same number of tokens, through LlamaChatModel.stream_prompt
   and through Llama.create_completion(stream=True) directly, on one loaded model, alternating runs; medians of
   paired ratios, by wall clock and by CPU time of this process (stable on a busy machine). Goal: >= 0.97 x raw.
2. Prefix reuse: an 8-turn agent-shaped conversation (CodeAct system prompt, thought + code replies, observations).
   Per turn: prompt tokens evaluated vs tokens new to the model (goal: ratio <= 1.05), and time to first token at
   turn 1 vs turn 8. Baseline side by side: the same prompts with the cache reset before each turn.

3. Prompt cache (``--only cache``): time to the first token of `ask`, cold vs with the persistent prompt cache,
   fresh processes, alternating (benchmarks/waits.py). Goal: cached <= 15% of cold.
4. SAG (``--only sag``): N=4 vs N=1 wall time and accuracy over the same GSM-Hard dev tasks, alternating per task
   (benchmarks/waits.py). Goal: <= 2.0 x, accuracy unchanged within noise.

5. Batched decoding (``--only batch``): tokens per second of N sequences decoded together in one llama.cpp batch
   (models/batched.py, what SAG and any batching of several tasks would run on) against one sequence, N = 2, 4, 8,
   alternating rounds: how much more a 2-core machine generates when it decodes several sequences at once.

    python benchmarks/bench_runtime.py --only cache --model PATH.gguf [--cache-rounds 2]
    python benchmarks/bench_runtime.py --only sag --model PATH.gguf --sag-tasks 20
    python benchmarks/bench_runtime.py --only batch --model PATH.gguf [--batch-rounds 2]

Prints a rich table and writes benchmarks/results/bench_runtime.json (parts 1-2), bench_runtime_cache.json and
bench_runtime_sag.json, bench_runtime_batch.json (each with the command, commit and settings).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RESULTS = REPO / "benchmarks" / "results"

SYSTEM = (
    "You are an expert assistant who solves any task by writing Python code. You work in steps.\n"
    'In each step you write a short "Thought:" saying what you will do, then one Python code block that ends with '
    '"<end_code>", like this:\nThought: I will compute the value with code.\n```py\nx = 12345 * 678\nprint(x)\n'
    "```<end_code>\n\nThe code runs in a Jupyter kernel: variables and imports stay defined between steps. After "
    'each code block you get an "Observation:" with what the code printed (or the error). Use print() to see '
    "values. When you know the answer, call final_answer(answer) inside a code block. That ends the task.\n\n"
    "Tools (Python functions already defined in the kernel):\n"
    "- web_search(query: str) -> str: search the web, returns titles, links and snippets.\n"
    "- search_code(query: str) -> str: search the current repository's symbols and text.\n"
    "- read_file(path: str, start: int = 1, end: int | None = None) -> str: read lines of a file.\n"
    "- final_answer(answer) -> None: give the final answer and stop.\n"
)
TASK = (
    "A warehouse ships 1,284 boxes on Monday and 37% more on Tuesday. Each truck carries 96 boxes. "
    "How many trucks are needed for both days together?"
)
THROUGHPUT_PROMPT = "Here is a long, detailed story about a lighthouse keeper who finds a message in a bottle:\n\n"


def _timed(stream) -> tuple[float, float]:
    """Wall and CPU seconds from the first streamed item to the end (generation only, the prompt excluded)."""
    wall = cpu = None
    for _item in stream:
        if wall is None:
            wall, cpu = time.perf_counter(), time.process_time()
    if wall is None:
        return 0.0, 0.0
    return time.perf_counter() - wall, time.process_time() - cpu


def measure_throughput(model, tokens: int, rounds: int) -> dict:
    """Generation speed of the runtime vs raw llama-cpp-python on one loaded model and one prompt.

    Runs alternate (raw, runtime, runtime, raw, ...) so both see the same load. Two measures: wall-clock tokens/s
    and tokens per CPU-second of this process; the second is what overhead costs, and stays stable when other
    programs compete for the cores (use 1 thread for it: no worker threads spinning).
    """
    llm = model.llama
    prompt_tokens = llm.tokenize(THROUGHPUT_PROMPT.encode(), add_bos=True, special=True)

    def raw():
        llm.reset()
        stream = llm.create_completion(prompt_tokens, max_tokens=tokens, temperature=0.0, stream=True)
        return (*_timed(stream), llm.n_tokens - len(prompt_tokens) + 1)

    def runtime():
        llm.reset()
        wall, cpu = _timed(model.stream_prompt(THROUGHPUT_PROMPT, max_tokens=tokens))
        return wall, cpu, model.last_usage.completion_tokens

    raw(), runtime()  # warm-up: page in weights, build the sampler paths
    wall: dict[str, list[float]] = {"raw": [], "runtime": []}
    cpu: dict[str, list[float]] = {"raw": [], "runtime": []}
    counts: dict[str, list[int]] = {"raw": [], "runtime": []}
    for i in range(rounds):
        order = (("raw", raw), ("runtime", runtime)) if i % 2 == 0 else (("runtime", runtime), ("raw", raw))
        for name, run in order:
            seconds, cpu_seconds, count = run()
            counts[name].append(count)
            wall[name].append((count - 1) / seconds if seconds > 0 else 0.0)
            cpu[name].append((count - 1) / cpu_seconds if cpu_seconds > 0 else 0.0)

    def paired(rates: dict[str, list[float]]) -> float:
        return round(statistics.median(r / w for r, w in zip(rates["runtime"], rates["raw"], strict=True) if w), 3)

    return {
        "tokens": tokens,
        "rounds": rounds,
        "threads": llm.n_threads,
        "raw_tokens_per_s": round(statistics.median(wall["raw"]), 2),
        "runtime_tokens_per_s": round(statistics.median(wall["runtime"]), 2),
        "ratio_wall": paired(wall),
        "raw_tokens_per_cpu_s": round(statistics.median(cpu["raw"]), 2),
        "runtime_tokens_per_cpu_s": round(statistics.median(cpu["runtime"]), 2),
        "ratio_cpu": paired(cpu),
        "generated_tokens": counts,
        "samples_wall": {k: [round(x, 2) for x in v] for k, v in wall.items()},
        "samples_cpu": {k: [round(x, 2) for x in v] for k, v in cpu.items()},
    }


def observation(turn: int) -> str:
    lines = [f"Observation: step {turn} output"]
    lines += [f"  row {turn}.{i}: value={turn * 97 + i * 13} status=ok" for i in range(4)]
    return "\n".join(lines)


def measure_prefix_reuse(model, turns: int, reply_tokens: int) -> dict:
    """Grow a conversation turn by turn with the model's own replies; measure evaluation and TTFT per turn."""
    llm = model.llama
    llm.reset()
    history = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": TASK}]
    rows, prompts = [], []
    seen = 0  # tokens the model has seen: previous prompt + what it generated
    for turn in range(1, turns + 1):
        if turn == 1:
            # the conversation opens with a forced "Thought:" (continued assistant turn), as the agent does
            history.append({"role": "assistant", "content": "Thought:"})
        reply = "".join(model.stream_chat(history, max_tokens=reply_tokens, stop=["<end_code>", "Observation:"]))
        usage = model.last_usage
        prompts.append(list(history))
        new = usage.prompt_tokens - seen if turn > 1 else usage.prompt_tokens
        rows.append(
            {
                "turn": turn,
                "prompt_tokens": usage.prompt_tokens,
                "new_tokens": new,
                "evaluated_tokens": usage.prompt_eval_tokens,
                "ratio": round(usage.prompt_eval_tokens / new, 3) if new else None,
                "ttft_s": round(usage.prompt_seconds, 4),
                "completion_tokens": usage.completion_tokens,
            }
        )
        seen = usage.prompt_tokens + usage.completion_tokens
        if history[-1]["role"] == "assistant":
            history[-1] = {"role": "assistant", "content": history[-1]["content"] + reply + "<end_code>"}
        else:
            history.append({"role": "assistant", "content": reply + "<end_code>"})
        history.append({"role": "user", "content": observation(turn)})

    baseline = []
    for turn, messages in enumerate(prompts, start=1):
        llm.reset()  # no reuse: every turn evaluates its whole prompt
        for _piece in model.stream_chat(messages, max_tokens=1):
            pass
        usage = model.last_usage
        baseline.append(
            {"turn": turn, "evaluated_tokens": usage.prompt_tokens, "ttft_s": round(usage.prompt_seconds, 4)}
        )

    later = rows[1:]
    total_eval = sum(r["evaluated_tokens"] for r in later)
    total_new = sum(r["new_tokens"] for r in later)
    return {
        "turns": rows,
        "baseline_no_reuse": baseline,
        "ratio_turns_2_on": round(total_eval / total_new, 3) if total_new else None,
        "ttft_turn1_s": rows[0]["ttft_s"],
        "ttft_last_s": rows[-1]["ttft_s"],
        "baseline_ttft_last_s": baseline[-1]["ttft_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma3-270m", help="registry name or GGUF path")
    parser.add_argument("--tokens", type=int, default=64, help="tokens generated per throughput run")
    parser.add_argument("--rounds", type=int, default=12, help="throughput runs per side")
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--reply-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=0, help="threads for the prefix-reuse part (0: cores)")
    parser.add_argument("--throughput-threads", type=int, default=1, help="threads for the throughput part")
    parser.add_argument(
        "--only",
        choices=("runtime", "cache", "sag", "batch"),
        default="runtime",
        help="runtime: parts 1-2 (default); cache: ask TTFT with the prompt cache; sag: N=4 vs N=1; "
        "batch: N sequences decoded together vs one",
    )
    parser.add_argument("--cache-rounds", type=int, default=2, help="cold/cached pairs of fresh processes")
    parser.add_argument("--sag-tasks", type=int, default=20)
    parser.add_argument("--sag", type=int, default=4)
    parser.add_argument("--sag-max-steps", type=int, default=4)
    parser.add_argument("--tasks", default="/work/shared/data/gsm_hard_dev_250.jsonl")
    parser.add_argument("--batch-rounds", type=int, default=2, help="rounds of N = 1, 2, 4, 8")
    parser.add_argument("--batch-tokens", type=int, default=96, help="tokens each sequence generates")
    parser.add_argument("--note", default="", help="free text stored in the JSON (load, what was stopped)")
    args = parser.parse_args()  # fmt: skip

    if args.only == "cache":
        return run_cache(args)
    if args.only == "sag":
        return run_sag(args)
    if args.only == "batch":
        return run_batch(args)

    from rich.console import Console
    from rich.table import Table

    from tui_agent.models.loader import load_chat_model

    single = load_chat_model(args.model, n_ctx=1024, n_threads=args.throughput_threads)
    throughput = measure_throughput(single, args.tokens, args.rounds)
    single.close()
    model = load_chat_model(args.model, n_ctx=4096, n_threads=args.threads or None)
    reuse = measure_prefix_reuse(model, args.turns, args.reply_tokens)
    result = {
        "model": model.name,
        "path": str(model.path),
        "threads": model.llama.n_threads,
        "throughput": throughput,
        "prefix_reuse": reuse,
    }

    console = Console()
    table = Table(
        title=f"Generation: {model.name}, {args.tokens} tokens x {args.rounds} paired rounds, "
        f"{throughput['threads']} thread(s), medians"
    )
    for column in ("", "tok/s (wall)", "vs raw", "tok per CPU-s", "vs raw", "goal"):
        table.add_column(column)
    table.add_row(
        "raw llama-cpp-python",
        f"{throughput['raw_tokens_per_s']:.1f}",
        "1.000",
        f"{throughput['raw_tokens_per_cpu_s']:.1f}",
        "1.000",
        "",
    )
    table.add_row(
        "tui-agent runtime",
        f"{throughput['runtime_tokens_per_s']:.1f}",
        f"{throughput['ratio_wall']:.3f}",
        f"{throughput['runtime_tokens_per_cpu_s']:.1f}",
        f"{throughput['ratio_cpu']:.3f}",
        ">= 0.97",
    )
    console.print(table)

    table = Table(title=f"Prefix reuse over {args.turns} agent turns (baseline: cache reset each turn)")
    for column in ("turn", "prompt", "new", "evaluated", "eval/new", "TTFT s", "no-reuse eval", "no-reuse TTFT s"):
        table.add_column(column, justify="right")
    for row, base in zip(reuse["turns"], reuse["baseline_no_reuse"], strict=True):
        table.add_row(
            str(row["turn"]),
            str(row["prompt_tokens"]),
            str(row["new_tokens"]),
            str(row["evaluated_tokens"]),
            f"{row['ratio']:.3f}",
            f"{row['ttft_s']:.3f}",
            str(base["evaluated_tokens"]),
            f"{base['ttft_s']:.3f}",
        )
    console.print(table)
    console.print(
        f"eval/new over turns 2-{args.turns}: {reuse['ratio_turns_2_on']} (goal <= 1.05); TTFT turn 1 "
        f"{reuse['ttft_turn1_s']:.3f} s, turn {args.turns} {reuse['ttft_last_s']:.3f} s "
        f"(without reuse: {reuse['baseline_ttft_last_s']:.3f} s)"
    )

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bench_runtime.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {out.relative_to(REPO)}")


def _provenance(args: argparse.Namespace) -> dict:
    import os
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout)
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "command": " ".join(["python", "benchmarks/bench_runtime.py", *sys.argv[1:]]),
        "commit": commit + ("+dirty" if dirty else ""),
        "cpus": os.cpu_count(),
        "load_average_at_start": load,
        "note": args.note,
    }


def _write(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / name
    out.write_text(json.dumps(result, indent=2) + "\n")
    return out


def _merge(name: str, model: str, result: dict) -> Path:
    """One results file per part, one entry per model (a run replaces its model's entry only)."""
    path = RESULTS / name
    try:
        existing = json.loads(path.read_text())
    except (OSError, ValueError):
        existing = {}
    runs = existing.get("runs", {}) if isinstance(existing, dict) else {}
    runs[model] = result
    return _write(name, {"runs": runs})


def run_cache(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from benchmarks.waits import measure_ask_ttft

    console = Console()
    result = {**_provenance(args), "ask_ttft": measure_ask_ttft(args.model, args.cache_rounds)}
    ttft = result["ask_ttft"]
    table = Table(title=f"ask: time to first token, {ttft['model']} ({ttft['system_prompt_tokens']}-token system "
                  f"prompt), {args.cache_rounds} fresh processes each, medians")  # fmt: skip
    for column in ("", "TTFT s", "vs cold", "goal"):
        table.add_column(column)
    table.add_row("cold (no prompt cache)", f"{ttft['cold_ttft_s']:.2f}", "1.000", "")
    table.add_row("cached", f"{ttft['cached_ttft_s']:.2f}", f"{ttft['cached_over_cold']:.3f}", "<= 0.15")
    console.print(table)
    console.print(f"wrote {_merge('bench_runtime_cache.json', Path(args.model).stem, result).relative_to(REPO)}")


def run_sag(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from benchmarks.waits import measure_sag

    console = Console()
    provenance = _provenance(args)  # the code as it was when the measurement started
    sag = measure_sag(args.model, Path(args.tasks), args.sag_tasks, args.sag, args.sag_max_steps)
    result = {**provenance, "sag": sag}
    n = args.sag
    table = Table(title=f"SAG: {sag['model']}, {sag['tasks']} GSM-Hard dev tasks, max {sag['max_steps']} steps")
    for column in ("", "wall s (all tasks)", "vs N=1", "accuracy", "goal"):
        table.add_column(column)
    table.add_row("N=1", f"{sag['n1_seconds']:.1f}", "1.000", f"{sag['n1_accuracy']:.2f}", "")
    table.add_row(f"N={n}", f"{sag[f'n{n}_seconds']:.1f}", f"{sag['ratio']:.3f}", f"{sag[f'n{n}_accuracy']:.2f}",
                  "<= 2.0")  # fmt: skip
    console.print(table)
    console.print(f"wrote {_merge('bench_runtime_sag.json', Path(args.model).stem, result).relative_to(REPO)}")


def measure_batch(model, sizes: tuple[int, ...], rounds: int, tokens: int) -> dict:
    """Aggregate decode tokens/s of N sampled sequences of one prompt, decoded together (prompt not timed)."""
    import statistics

    messages = [{"role": "user", "content": "Write a long Python module with many small utility functions."}]
    list(model.stream_many(messages, seeds=[0], max_tokens=4, temperature=0.8))  # the prompt, evaluated once
    rates: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(rounds):
        for n in sizes:
            list(model.stream_many(messages, seeds=list(range(n)), max_tokens=tokens, temperature=0.8))
            made = sum(u.completion_tokens for u in model.last_usages)
            rates[n].append(made / max(u.generation_seconds for u in model.last_usages))
    single = statistics.median(rates[1])
    return {
        str(n): {"tokens_per_s": round(statistics.median(r), 2), "vs_one": round(statistics.median(r) / single, 3)}
        for n, r in rates.items()
    }


def run_batch(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from tui_agent.models.loader import load_chat_model

    console = Console()
    provenance = _provenance(args)
    model = load_chat_model(args.model, n_ctx=4096, n_threads=args.threads or None)
    sizes = (1, 2, 4, 8)
    batch = measure_batch(model, sizes, args.batch_rounds, args.batch_tokens)
    name = model.name
    model.close()
    result = {**provenance, "model": name, "tokens_per_sequence": args.batch_tokens, "batch": batch}
    table = Table(title=f"Batched decoding: {name}, {args.batch_tokens} tokens per sequence, medians")
    for column in ("sequences", "tokens/s (all sequences)", "vs one sequence"):
        table.add_column(column, justify="right")
    for n in sizes:
        row = batch[str(n)]
        table.add_row(str(n), f"{row['tokens_per_s']:.1f}", f"{row['vs_one']:.3f}")
    console.print(table)
    console.print(f"wrote {_merge('bench_runtime_batch.json', Path(args.model).stem, result).relative_to(REPO)}")


if __name__ == "__main__":
    main()

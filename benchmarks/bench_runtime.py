"""Runtime overhead and KV-prefix reuse of tui-agent's llama.cpp runtime, against plain llama-cpp-python.

    python benchmarks/bench_runtime.py                       # embedded Gemma 3 270M
    python benchmarks/bench_runtime.py --model ~/.cache/tui-agent/offline-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf

1. Generation throughput: the same prompt, greedy, the same number of tokens, through LlamaChatModel.stream_prompt
   and through Llama.create_completion(stream=True) directly, on one loaded model, alternating runs (median).
   Goal: runtime >= 0.97 x raw.
2. Prefix reuse: an 8-turn agent-shaped conversation (CodeAct system prompt, thought + code replies, observations).
   Per turn: prompt tokens evaluated vs tokens new to the model (goal: ratio <= 1.05), and time to first token at
   turn 1 vs turn 8. Baseline side by side: the same prompts with the cache reset before each turn.

Prints a rich table and writes benchmarks/results/bench_runtime.json.
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


def measure_throughput(model, tokens: int, rounds: int) -> dict:
    """Median tokens/s of generation (after the first token) for runtime vs raw, alternating to share the noise."""
    llm = model.llama
    prompt_tokens = llm.tokenize(THROUGHPUT_PROMPT.encode(), add_bos=True, special=True)

    def raw() -> tuple[int, float]:
        llm.reset()
        start = first = None
        start = time.perf_counter()
        for _chunk in llm.create_completion(prompt_tokens, max_tokens=tokens, temperature=0.0, stream=True):
            first = first or time.perf_counter()
        end = time.perf_counter()
        return llm.n_tokens - len(prompt_tokens) + 1, end - (first or start)

    def runtime() -> tuple[int, float]:
        llm.reset()
        for _piece in model.stream_prompt(THROUGHPUT_PROMPT, max_tokens=tokens):
            pass
        usage = model.last_usage
        return usage.completion_tokens, usage.generation_seconds

    raw(), runtime()  # warm-up: page in weights, build the sampler paths
    rates: dict[str, list[float]] = {"raw": [], "runtime": []}
    counts: dict[str, list[int]] = {"raw": [], "runtime": []}
    for i in range(rounds):
        order = (("raw", raw), ("runtime", runtime)) if i % 2 == 0 else (("runtime", runtime), ("raw", raw))
        for name, run in order:
            count, seconds = run()
            counts[name].append(count)
            rates[name].append((count - 1) / seconds if seconds > 0 else 0.0)
    raw_tps, runtime_tps = statistics.median(rates["raw"]), statistics.median(rates["runtime"])
    # Each round runs both back to back, so a paired ratio cancels most of the load drift of a shared machine.
    paired = [r / w for r, w in zip(rates["runtime"], rates["raw"], strict=True) if w > 0]
    return {
        "tokens": tokens,
        "rounds": rounds,
        "raw_tokens_per_s": round(raw_tps, 2),
        "runtime_tokens_per_s": round(runtime_tps, 2),
        "raw_best_tokens_per_s": round(max(rates["raw"]), 2),
        "runtime_best_tokens_per_s": round(max(rates["runtime"]), 2),
        "ratio": round(statistics.median(paired), 3) if paired else None,
        "ratio_of_best": round(max(rates["runtime"]) / max(rates["raw"]), 3) if max(rates["raw"]) else None,
        "generated_tokens": {"raw": counts["raw"], "runtime": counts["runtime"]},
        "samples": {k: [round(x, 2) for x in v] for k, v in rates.items()},
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
    parser.add_argument("--tokens", type=int, default=96, help="tokens generated per throughput run")
    parser.add_argument("--rounds", type=int, default=9, help="throughput runs per side")
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--reply-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from tui_agent.models.loader import load_chat_model

    model = load_chat_model(args.model, n_ctx=4096, n_threads=args.threads or None)
    throughput = measure_throughput(model, args.tokens, args.rounds)
    reuse = measure_prefix_reuse(model, args.turns, args.reply_tokens)
    result = {
        "model": model.name,
        "path": str(model.path),
        "threads": model.llama.n_threads,
        "throughput": throughput,
        "prefix_reuse": reuse,
    }

    console = Console()
    table = Table(title=f"Generation throughput: {model.name} ({args.tokens} tokens x {args.rounds} paired rounds)")
    for column in ("", "median tok/s", "best tok/s", "vs raw (median paired)", "vs raw (best)", "goal"):
        table.add_column(column)
    table.add_row(
        "raw llama-cpp-python",
        f"{throughput['raw_tokens_per_s']:.1f}",
        f"{throughput['raw_best_tokens_per_s']:.1f}",
        "1.000",
        "1.000",
        "",
    )
    table.add_row(
        "tui-agent runtime",
        f"{throughput['runtime_tokens_per_s']:.1f}",
        f"{throughput['runtime_best_tokens_per_s']:.1f}",
        f"{throughput['ratio']:.3f}",
        f"{throughput['ratio_of_best']:.3f}",
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


if __name__ == "__main__":
    main()

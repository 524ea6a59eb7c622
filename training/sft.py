"""LoRA fine-tuning of a student on agent trajectories (TRL's SFTTrainer + PEFT), loss on assistant turns only.

The paper's recipe: LoRA on every linear layer, r=64, alpha=128, dropout 0.05, lr 2e-4, 2 epochs, an effective
batch of 8 sequences. Examples come from ``training.render`` (the runtime's own prompt text, labels only on what the
student must write), so TRL receives them pre-tokenized and adds no template of its own. Checkpoints land in
``out_dir/checkpoints`` and a killed run continues from the last one; the final adapter (PEFT format), the tokenizer
and ``training_summary.json`` land in ``out_dir``. Runs alone, or as ``accelerate launch`` / ``torchrun`` processes
(DDP; gloo on CPU):

    accelerate launch --config_file training/configs/cpu-2proc.yaml -m training.sft runs.jsonl student.gguf out/
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUMMARY = "training_summary.json"
CHECKPOINTS = "checkpoints"


class SFTError(ValueError):
    """Bad input to training, reported before any training step runs."""


@dataclass
class SFTSettings:
    """Every knob of a fine-tuning run; the defaults are the paper's."""

    lora_r: int = 64
    lora_alpha: int = 128
    lora_dropout: float = 0.05
    target_modules: str = "all-linear"
    learning_rate: float = 2e-4
    epochs: float = 2.0
    effective_batch: int = 8  # sequences per optimizer step: per-device batch x accumulation x processes
    per_device_batch: int = 1
    max_length: int = 4096  # longer examples are dropped whole, never cut inside an assistant turn
    max_steps: int = -1  # > 0 stops after that many optimizer steps (overrides epochs)
    warmup_ratio: float = 0.03
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    save_steps: int = 50
    save_total_limit: int = 2
    logging_steps: int = 1
    seed: int = 0
    system_prompt: str | None = None  # re-render every trajectory under this (shorter) student system prompt
    prompt_style: str = "full"  # "compact": without the few-shot examples; "student": the short student prompt
    bf16: bool | None = None  # None: on where the hardware multiplies bf16 matrices natively (see bf16_supported)
    gradient_checkpointing: bool = False

    def check(self) -> None:
        positive = ("lora_r", "lora_alpha", "effective_batch", "per_device_batch", "max_length", "save_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise SFTError(f"{name} must be at least 1, not {getattr(self, name)}.")
        for name in ("lora_dropout", "warmup_ratio"):
            if not 0 <= getattr(self, name) < 1:
                raise SFTError(f"{name} must be in [0, 1), not {getattr(self, name)}.")
        if self.learning_rate <= 0 or (self.epochs <= 0 and self.max_steps <= 0):
            raise SFTError("learning_rate and epochs (or max_steps) must be positive.")

    def accumulation(self, world_size: int) -> int:
        """Gradient accumulation steps that make up the effective batch over ``world_size`` processes."""
        per_step = self.per_device_batch * world_size
        if self.effective_batch % per_step:
            raise SFTError(
                f"effective_batch {self.effective_batch} is not a multiple of per_device_batch "
                f"{self.per_device_batch} x {world_size} processes."
            )
        return self.effective_batch // per_step


@dataclass(frozen=True)
class Student:
    """Where a student's weights come from: a hub id, a local HF directory, or a GGUF file (loaded dequantised)."""

    source: str
    location: str  # what from_pretrained gets: a hub id or a directory
    gguf_file: str | None = None

    @property
    def load_kwargs(self) -> dict[str, str]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}

    @property
    def gguf_path(self) -> Path | None:
        return Path(self.location) / self.gguf_file if self.gguf_file else None


def resolve_student(student: str | Path) -> Student:
    """Tell a local file or directory from a hub id; a path that does not exist is an error, not a hub lookup."""
    text = str(student)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise SFTError(f"Student file {path} is not a GGUF file (give a .gguf, an HF directory or a hub id).")
        return Student(text, str(path.resolve().parent), path.name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SFTError(f"Student directory {path} has no config.json (not a Hugging Face checkpoint).")
        return Student(text, str(path.resolve()))
    looks_local = isinstance(student, Path) or text.startswith(("/", ".", "~")) or text.endswith(".gguf")
    if looks_local or text.count("/") != 1:
        raise SFTError(f"Student {text} does not exist (expected a GGUF file, an HF directory or a hub id org/name).")
    return Student(text, text)


def load_conversations(trajectories: Path | str | Sequence[Any]) -> list[Any]:
    """Trajectories from a JSONL file (RunRecords) or as given; an empty set is an error."""
    if isinstance(trajectories, str | Path):
        from tui_agent.agent.trajectory import TrajectoryError, read_trajectories

        path = Path(trajectories)
        if not path.is_file():
            raise SFTError(f"Trajectory file {path} does not exist.")
        try:
            records = read_trajectories(path)
        except TrajectoryError as exc:
            raise SFTError(str(exc)) from exc
        if not records:
            raise SFTError(f"Trajectory file {path} holds no trajectories.")
        return list(records)
    records = list(trajectories)
    if not records:
        raise SFTError("No trajectories to train on.")
    return records


def check_architecture(model_type: str) -> None:
    """Refuse a student the GGUF exporter cannot convert, before hours of training are spent on it."""
    try:
        from training.export import check_exportable
    except ModuleNotFoundError as exc:
        if exc.name != "training.export":
            raise
        return  # a checkout without the export stage: nothing to check against
    try:
        check_exportable(model_type)
    except ValueError as exc:
        raise SFTError(str(exc)) from exc


def student_model_type(source: Student) -> str:
    """The architecture, without loading weights: llama.cpp reads a GGUF's header, HF configs are small JSON."""
    if source.gguf_path is not None:
        from training.render import gguf_architecture

        return gguf_architecture(source.gguf_path)
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(source.location).model_type


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def train_sft(
    trajectories: Path | str | Sequence[Any],
    student: str | Path,
    out_dir: Path,
    *,
    config: SFTSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    resume: bool = True,
) -> dict[str, Any]:
    """Fine-tune ``student`` with LoRA on ``trajectories``; returns the training summary (also written to disk).

    Every input problem (no trajectories, missing student, an architecture the runtime cannot render or export,
    nothing that fits ``max_length``) raises SFTError before the model is loaded.
    """
    config = config or SFTSettings()
    config.check()
    out_dir = Path(out_dir)
    conversations = load_conversations(trajectories)
    source = resolve_student(student)
    accumulation = config.accumulation(world_size())

    from transformers import AutoTokenizer

    from training.render import RenderError, make_renderer, render_conversations
    from tui_agent.models.base import ModelError

    model_type = student_model_type(source)
    check_architecture(model_type)
    tokenizer = AutoTokenizer.from_pretrained(source.location, **source.load_kwargs)
    try:
        renderer = make_renderer(tokenizer, model_type, gguf=source.gguf_path)
        rendered = render_conversations(
            conversations,
            renderer,
            max_length=config.max_length,
            system_prompt=config.system_prompt,
            prompt_style=config.prompt_style,
        )
    except (ModelError, RenderError) as exc:
        raise SFTError(str(exc)) from exc
    if not rendered.examples:
        raise SFTError(
            f"None of {len(conversations)} trajectories gives a training example "
            f"({rendered.too_long} longer than max_length {config.max_length}, {rendered.no_assistant} without "
            "an assistant turn)."
        )

    keep_freed_memory()
    trainer = build_trainer(source, tokenizer, rendered.examples, out_dir, config, accumulation, progress)
    checkpoint = last_checkpoint(out_dir) if resume else None
    started, cpu = time.perf_counter(), time.process_time()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    trainer.save_model(str(out_dir))  # adapter + tokenizer, written by the main process only
    summary = _summary(trainer, result, rendered, source, renderer, config, accumulation, checkpoint)
    summary.update(seconds=round(seconds, 2), cpu_seconds=round(cpu_seconds, 2))
    summary["tokens_per_second"] = round(summary["tokens"] / seconds, 2) if seconds else 0.0
    if trainer.is_world_process_zero():
        trainer.model.get_base_model().config.save_pretrained(out_dir)  # base config.json: the exporter reads it
        (out_dir / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def build_trainer(
    source: Student,
    tokenizer: Any,
    examples: list[dict[str, list[int]]],
    out_dir: Path,
    config: SFTSettings,
    accumulation: int,
    progress: Callable[[int, int], None] | None = None,
    callbacks: Sequence[Any] = (),
):
    """TRL's SFTTrainer over pre-tokenized examples with a LoRA on all linear layers (what train_sft runs)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    bf16 = config.bf16 if config.bf16 is not None else bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32  # the frozen base; PEFT keeps the LoRA weights in float32
    model = load_student(source, dtype)
    args = sft_config(SFTConfig, out_dir, config, accumulation, bf16=bf16, cpu=not cuda)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    all_callbacks = [*callbacks]
    if progress is not None:
        all_callbacks.append(_progress_callback(progress))
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=all_callbacks,
    )


def keep_freed_memory() -> None:
    """Have glibc keep freed memory for reuse instead of handing it back to the OS at once.

    A training step allocates and frees the same large activation buffers again and again; by default glibc
    returns them to the kernel each time and faults fresh zeroed pages in on the next step. On a 2-core CPU a
    third of the training time went to the kernel that way (benchmarks/bench_train.py). What the OS-level
    equivalent does (MALLOC_TRIM_THRESHOLD_ and friends, or a preloaded tcmalloc) has to be set before Python
    starts; mallopt changes it from inside. Elsewhere than glibc this does nothing.
    """
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    mallopt(m_mmap_threshold, 2**30)  # blocks up to 1 GB (the LM head's logit tiles are over 100 MB) from the heap
    mallopt(m_trim_threshold, 2**31 - 1)  # never give the heap's top back
    mallopt(m_top_pad, 2**30)  # and grow it in large steps


def bf16_supported() -> bool:
    """Whether bf16 training pays here: a GPU that supports it, or a CPU with AMX or AVX512-BF16 units, where bf16
    matrix products run several times faster than float32 ones (5.5x for a 1024x640x2048 product on a 2-core Xeon
    with AMX, benchmarks/bench_train.py). Elsewhere bf16 is emulated on a CPU and slower than float32."""
    import torch

    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def load_student(source: Student, dtype: Any):
    """The student's weights; a GGUF is unpacked into a plain dense model (trainable, unlike GGUF blocks)."""
    from transformers import AutoModelForCausalLM, GgufConfig

    if source.gguf_file is None:
        return AutoModelForCausalLM.from_pretrained(source.location, dtype=dtype)
    unpacked = GgufConfig(gguf_file=source.gguf_file, dequantize=True)
    return AutoModelForCausalLM.from_pretrained(
        source.location, gguf_file=source.gguf_file, dtype=dtype, quantization_config=unpacked
    )


def sft_config(config_class: Any, out_dir: Path, config: SFTSettings, accumulation: int, *, bf16: bool, cpu: bool):
    """The SFTConfig for a run (shared with the benchmark's plain-TRL baseline, so both train alike)."""
    return config_class(
        output_dir=str(Path(out_dir) / CHECKPOINTS),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_batch,
        gradient_accumulation_steps=accumulation,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a fraction of all steps
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        seed=config.seed,
        bf16=bf16,
        use_cpu=cpu,
        ddp_backend="gloo" if cpu and world_size() > 1 else None,
        ddp_find_unused_parameters=False,
        activation_checkpointing=config.gradient_checkpointing,
        max_length=None,  # rendering already dropped what does not fit; TRL must not cut an example
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def last_checkpoint(out_dir: Path) -> str | None:
    """The newest complete checkpoint of an earlier run into ``out_dir``, if any."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = Path(out_dir) / CHECKPOINTS
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def _progress_callback(progress: Callable[[int, int], None]):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            progress(state.global_step, state.max_steps)

    return Progress()


def _summary(trainer, result, rendered, source, renderer, config, accumulation, checkpoint) -> dict:
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    tokens = max((entry.get("num_tokens", 0) for entry in trainer.state.log_history), default=0)
    return {
        "student": source.source,
        "chat_format": renderer.chat_format.name,
        "add_bos": renderer.add_bos,
        "examples": len(rendered.examples),
        "dropped_too_long": rendered.too_long,
        "dropped_no_assistant": rendered.no_assistant,
        "example_tokens": rendered.tokens,
        "label_tokens": rendered.label_tokens,
        "steps": trainer.state.global_step,
        "resumed_from": checkpoint,
        "tokens": int(tokens),
        "train_loss": round(result.training_loss, 5),
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "processes": trainer.args.world_size,
        "gradient_accumulation": accumulation,
        "bf16": bool(trainer.args.bf16),
        "settings": dataclasses.asdict(config),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.sft", description=__doc__.split("\n\n")[0])
    parser.add_argument("trajectories", type=Path, help="trajectory JSONL file (filtered runs)")
    parser.add_argument("student", help="student: GGUF file, HF directory or hub id")
    parser.add_argument("out_dir", type=Path, help="where checkpoints, the adapter and the summary go")
    parser.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    for f in dataclasses.fields(SFTSettings):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", "bool | None"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            parser.add_argument(flag, type=kind, default=f.default)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = SFTSettings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SFTSettings)})
    summary = train_sft(args.trajectories, args.student, args.out_dir, config=settings, resume=not args.no_resume)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in summary.items() if k != "settings"}, indent=2))


if __name__ == "__main__":
    main()

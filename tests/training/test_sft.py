"""LoRA SFT: masks, bad input caught before training, resume after a kill, DDP on CPU, a real run on Gemma."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.render import IGNORE
from training.sft import (
    SUMMARY,
    SFTError,
    SFTSettings,
    bf16_supported,
    keep_freed_memory,
    resolve_student,
    train_sft,
)
from tui_agent.agent.parse import END_CODE
from tui_agent.agent.prompt import load_examples, observation_message, task_message
from tui_agent.agent.trajectory import RunRecord

REPO = Path(__file__).resolve().parents[2]
CHATML_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
SHORT_SYSTEM = "Solve the task with Python code, step by step."


def example_runs() -> list[RunRecord]:
    """The prompt's few-shot examples as recorded runs: real agent steps, observations and final answers."""
    runs = []
    for example in load_examples():
        messages = [{"role": "system", "content": "long teacher prompt"}]
        messages.append({"role": "user", "content": task_message(example["task"])})
        for s in example["steps"]:
            messages.append(
                {"role": "assistant", "content": f"Thought: {s['thought']}\n```py\n{s['code']}\n```{END_CODE}"}
            )
            if "observation" in s:
                messages.append({"role": "user", "content": observation_message(s["observation"])})
        runs.append(RunRecord(task=example["task"], model="teacher", messages=messages, stop_reason="answered"))
    return runs


def write_runs(path: Path, runs: list[RunRecord]) -> Path:
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in runs), encoding="utf-8")
    return path


def tiny_student(folder: Path, *, model_type: str = "qwen2", template: str | None = CHATML_TEMPLATE) -> Path:
    """A randomly initialised two-layer model with a BPE tokenizer trained on the examples (seconds to train)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, GPT2Config, PreTrainedTokenizerFast, Qwen2Config

    texts = [m["content"] for run in example_runs() for m in run.messages]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=512, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<|endoftext|>", eos_token="<|im_end|>")
    tokenizer.chat_template = template
    if model_type == "qwen2":
        config = Qwen2Config(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        )  # fmt: skip
    else:
        config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> Path:
    return tiny_student(tmp_path_factory.mktemp("student"))


def quick(**overrides) -> SFTSettings:
    settings = {
        "lora_r": 4, "lora_alpha": 8, "effective_batch": 2, "max_length": 1024, "save_steps": 1,
        "system_prompt": SHORT_SYSTEM, "warmup_ratio": 0.0, "learning_rate": 1e-3,
    }  # fmt: skip
    return SFTSettings(**{**settings, **overrides})


def test_loss_mask_covers_assistant_turns_only(student):
    from transformers import AutoTokenizer

    from training.render import make_renderer, render_conversations

    tokenizer = AutoTokenizer.from_pretrained(student)
    renderer = make_renderer(tokenizer, "qwen2")
    rendered = render_conversations(example_runs(), renderer, system_prompt=SHORT_SYSTEM)
    assert len(rendered.examples) == len(example_runs())
    for example, run in zip(rendered.examples, example_runs(), strict=True):
        labelled = tokenizer.decode([t for t in example["labels"] if t != IGNORE])
        assistant = [m["content"] for m in run.messages if m["role"] == "assistant"]
        assert labelled == "<|im_end|>".join(assistant) + "<|im_end|>"
        for hidden in ("Observation:", "Task:", SHORT_SYSTEM, "long teacher prompt"):
            assert hidden not in labelled


def test_defaults_are_the_papers():
    s = SFTSettings()
    assert (s.lora_r, s.lora_alpha, s.lora_dropout, s.learning_rate, s.epochs, s.effective_batch) == (
        64, 128, 0.05, 2e-4, 2.0, 8,
    )  # fmt: skip
    assert s.target_modules == "all-linear"
    assert (s.accumulation(1), s.accumulation(2), SFTSettings(per_device_batch=2).accumulation(2)) == (8, 4, 2)
    with pytest.raises(SFTError, match="not a multiple"):
        SFTSettings(effective_batch=8, per_device_batch=3).accumulation(1)
    with pytest.raises(SFTError, match="lora_r must be at least 1"):
        SFTSettings(lora_r=0).check()


def test_empty_trajectory_file_is_refused(tmp_path, student):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(SFTError, match="holds no trajectories"):
        train_sft(empty, str(student), tmp_path / "out", config=quick())
    with pytest.raises(SFTError, match="does not exist"):
        train_sft(tmp_path / "missing.jsonl", str(student), tmp_path / "out", config=quick())
    with pytest.raises(SFTError, match="No trajectories"):
        train_sft([], str(student), tmp_path / "out", config=quick())


def test_missing_student_is_refused(tmp_path):
    runs = write_runs(tmp_path / "runs.jsonl", example_runs())
    for missing in (tmp_path / "nope.gguf", "./nope", "no-such-model"):
        with pytest.raises(SFTError, match="does not exist"):
            train_sft(runs, missing, tmp_path / "out", config=quick())
    assert resolve_student("Qwen/Qwen2.5-Coder-0.5B-Instruct").location == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    not_gguf = tmp_path / "weights.bin"
    not_gguf.write_bytes(b"x")
    with pytest.raises(SFTError, match="not a GGUF"):
        resolve_student(not_gguf)
    with pytest.raises(SFTError, match="no config.json"):
        resolve_student(tmp_path)


def test_unknown_architecture_fails_before_training(tmp_path, monkeypatch):
    import transformers

    gpt2 = tiny_student(tmp_path / "gpt2", model_type="gpt2", template=None)
    loaded = []
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: loaded.append(a))
    with pytest.raises(SFTError, match="gpt2"):
        train_sft(example_runs(), gpt2, tmp_path / "out", config=quick())
    assert not loaded and not (tmp_path / "out").exists()


def test_nothing_fits_max_length(tmp_path, student):
    with pytest.raises(SFTError, match="longer than max_length 16"):
        train_sft(example_runs(), student, tmp_path / "out", config=quick(max_length=16))


def test_resume_after_a_kill_continues_the_step_count(tmp_path, student):
    out = tmp_path / "out"
    seen: list[int] = []

    def killed_at_3(done: int, total: int) -> None:
        seen.append(done)
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_sft(example_runs(), student, out, config=quick(max_steps=5), progress=killed_at_3)
    assert seen == [1, 2, 3] and not (out / SUMMARY).exists()
    seen.clear()
    summary = train_sft(example_runs(), student, out, config=quick(max_steps=5), progress=lambda d, t: seen.append(d))
    assert seen == [3, 4, 5]  # step 3's checkpoint was never written: it runs again, then 4 and 5
    assert summary["steps"] == 5 and summary["resumed_from"].endswith("checkpoint-2")
    assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()
    assert json.loads((out / SUMMARY).read_text())["steps"] == 5
    assert (out / "tokenizer.json").is_file() and json.loads((out / "config.json").read_text())["model_type"] == "qwen2"


def test_summary_and_no_resume(tmp_path, student):
    runs = write_runs(tmp_path / "runs.jsonl", example_runs())
    summary = train_sft(runs, student, tmp_path / "out", config=quick(max_steps=2, save_steps=10))
    assert summary["steps"] == 2 and summary["chat_format"] == "chatml" and summary["tokens"] > 0
    assert summary["examples"] == len(example_runs()) and summary["settings"]["lora_r"] == 4
    again = train_sft(runs, student, tmp_path / "out", config=quick(max_steps=2, save_steps=10), resume=False)
    assert again["resumed_from"] is None and again["steps"] == 2


def test_bf16_training_starts_from_the_float32_loss(tmp_path, student):
    """bf16 is the default where the hardware multiplies bf16 natively (AMX, AVX512-BF16, most GPUs); the frozen
    base in bf16 under autocast must see the same first loss as in float32."""
    runs = write_runs(tmp_path / "runs.jsonl", example_runs())
    full = train_sft(runs, student, tmp_path / "f32", config=quick(max_steps=1, save_steps=10, bf16=False))
    half = train_sft(runs, student, tmp_path / "bf16", config=quick(max_steps=1, save_steps=10, bf16=True))
    assert half["bf16"] and not full["bf16"]
    assert half["loss_first"] == pytest.approx(full["loss_first"], rel=0.05)
    default = train_sft(runs, student, tmp_path / "default", config=quick(max_steps=1, save_steps=10))
    assert default["bf16"] == bf16_supported()


def test_keeping_freed_memory_is_harmless_and_linux_only(monkeypatch):
    import ctypes

    keep_freed_memory()
    keep_freed_memory()  # twice: the same settings again
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: pytest.fail("no libc lookup off Linux"))
    keep_freed_memory()


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path, student):
    """accelerate launch with the shipped CPU config: two gloo processes share the effective batch."""
    runs = write_runs(tmp_path / "runs.jsonl", example_runs())
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file",
        str(REPO / "training" / "configs" / "cpu-2proc.yaml"), "--main_process_port", "0",
        "-m", "training.sft", str(runs), str(student), str(out), "--max-steps", "2", "--lora-r", "4",
        "--effective-batch", "4", "--system-prompt", SHORT_SYSTEM, "--max-length", "1024",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / SUMMARY).read_text())
    assert summary["processes"] == 2 and summary["gradient_accumulation"] == 2 and summary["steps"] == 2
    assert (out / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_real_sft_on_the_embedded_gemma_lowers_the_loss(tmp_path, gemma_gguf):
    """A few LoRA steps on the real base model: the loss falls and the adapter moves away from its zero init."""
    from safetensors.torch import load_file

    runs = example_runs()[:2]
    config = quick(lora_r=8, lora_alpha=16, effective_batch=1, max_steps=4, save_steps=100, max_length=512)
    summary = train_sft(runs, gemma_gguf, tmp_path / "out", config=config)
    assert summary["chat_format"] == "gemma" and summary["add_bos"] and summary["steps"] == 4
    assert summary["loss_last"] < summary["loss_first"]
    weights = load_file(tmp_path / "out" / "adapter_model.safetensors")
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and any(w.abs().sum() > 0 for w in lora_b)  # B starts at zero: training moved it

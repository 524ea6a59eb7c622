"""The whole distillation pipeline on real parts: a teacher behind llama-cpp-python's OpenAI-compatible server,
trajectories from the app's loop on real kernels, the filter, LoRA training of a student loaded from a GGUF file,
the GGUF adapter export, and the student agent running in llama.cpp with that adapter."""

from __future__ import annotations

import numpy as np
import pytest

from training.export import export_adapter, register_model, trained_prompt_style
from training.filter import filter_file
from training.generate import GenerateOptions, generate
from training.sft import SFTSettings, train_sft
from training.tasks import Task
from training.teacher import open_teacher
from tui_agent.agent.trajectory import read_trajectories
from tui_agent.config import Settings

from .server import llama_server

PROMPT = "Task: What is 12 + 30?\n\nThought:"


def sums() -> list[Task]:
    pairs = [(12, 30), (7, 8), (100, 23)]
    return [
        Task(id=f"sum{i}", question=f"What is {a} + {b}?", answer=str(a + b), kind="number", source="toy")
        for i, (a, b) in enumerate(pairs)
    ]


def llama_last_logits(model_path, text: str, lora_path=None) -> tuple[list[int], np.ndarray]:
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(model_path),
        lora_path=str(lora_path) if lora_path else None,
        n_ctx=512,
        logits_all=True,
        verbose=False,
        n_threads=2,
    )
    try:
        ids = llm.tokenize(text.encode(), add_bos=True, special=True)
        llm.eval(ids)
        return ids, np.array(llm.scores[len(ids) - 1], dtype=np.float32)
    finally:
        llm.close()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_distil_a_teacher_into_a_student_end_to_end(tmp_path, qwen05_gguf, gemma_gguf):
    runs, kept, sft_dir, adapter = (
        tmp_path / "runs.jsonl",
        tmp_path / "kept.jsonl",
        tmp_path / "sft",
        tmp_path / "a.gguf",
    )

    # 1. The teacher: Qwen2.5-Coder-0.5B behind llama-cpp-python's server, two tasks at a time, first-thought prefix.
    with llama_server(qwen05_gguf, alias="teacher", n_ctx=4096) as url:
        teacher = open_teacher("teacher", endpoint=url, chat_format="chatml")
        summary = generate(sums(), runs, teacher, GenerateOptions(max_steps=3, max_tokens=160, concurrency=2, ftp=True))
    records = read_trajectories(runs)
    assert summary.written == 3 and sorted(r.task_id for r in records) == ["sum0", "sum1", "sum2"]
    assert all(r.settings["endpoint"] == url and r.settings["first_thought"] for r in records)

    # 2. Keep the correct ones (a 0.5B teacher adds small numbers right).
    result = filter_file(runs, kept)
    assert result.total == 3 and len(result.kept) >= 1

    # 3. LoRA on the student, loaded from the embedded Gemma GGUF, under the compact prompt (no few-shot examples);
    #    two steps with a high rate so it moves.
    settings = SFTSettings(
        lora_r=4,
        lora_alpha=8,
        learning_rate=2e-3,
        max_steps=2,
        prompt_style="compact",
        effective_batch=1,
        max_length=4096,
        save_steps=2,
        warmup_ratio=0.0,
    )
    train_summary = train_sft(kept, str(gemma_gguf), sft_dir, config=settings)
    assert train_summary["steps"] == 2 and train_summary["label_tokens"] < train_summary["example_tokens"]

    # 4. Export, and check llama.cpp (base GGUF + adapter) against transformers (base + LoRA) on a fixed prompt.
    export_adapter(sft_dir, adapter, base_gguf=gemma_gguf)
    ids, cpp_base = llama_last_logits(gemma_gguf, PROMPT)
    _, cpp_lora = llama_last_logits(gemma_gguf, PROMPT, adapter)
    hf_base, hf_lora = transformers_last_logits(gemma_gguf, sft_dir, ids)
    cpp_delta, hf_delta = cpp_lora - cpp_base, hf_lora - hf_base
    assert np.abs(cpp_delta).max() > 0.05  # the adapter changed the student's output in llama.cpp
    assert cosine(cpp_delta, hf_delta) > 0.9  # and changed it the way the trained LoRA does
    assert cpp_lora.argmax() == hf_lora.argmax()

    from tui_agent.models.loader import load_chat_model

    adhoc = load_chat_model(str(gemma_gguf), lora_path=str(adapter), n_ctx=1024)
    assert adhoc.prompt_style == "compact"  # the adapter file itself says how the student must be prompted
    adhoc.close()

    # 5. Register base + adapter and run the student as an agent for one step.
    register_model("toy-student", "gemma3-270m", adapter, prompt=trained_prompt_style(sft_dir))
    from tui_agent.session import open_session

    with open_session(
        Settings(model="toy-student", web=False, approval="auto", max_steps=1, n_ctx=4096),
        workspace=tmp_path,
        repo_map="",
        max_tokens=48,
    ) as session:
        record = session.run("What is 12 + 30?")
    assert record.settings["lora_file"] == str(adapter.resolve()) and len(record.steps) >= 1
    assert record.settings["prompt_style"] == "compact" and "Examples:" not in record.messages[0]["content"]


def transformers_last_logits(gemma_gguf, adapter_dir, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(gemma_gguf.parent), gguf_file=gemma_gguf.name, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(adapter_dir))
    model.eval()
    with torch.no_grad():
        tokens = torch.tensor([ids])
        lora = model(tokens).logits[0, -1].numpy()
        with model.disable_adapter():
            plain = model(tokens).logits[0, -1].numpy()
    return plain, lora

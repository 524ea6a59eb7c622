"""One entry point for "give me a model": a registry name or a path to a local GGUF file.

It never downloads: a hub model that is not on this machine yet is an error telling the user which command fetches
it, so starting a session never turns into an unannounced multi-gigabyte download. The embedded default is
assembled from its PyPI package on first use (a local copy, no network).
"""

from __future__ import annotations

import os
from pathlib import Path

from tui_agent.config import ConfigError
from tui_agent.models.base import ModelError
from tui_agent.models.chat_formats import get_format
from tui_agent.models.llm import DEFAULT_MAX_CTX, LlamaChatModel
from tui_agent.models.registry import ModelSpec, load_registry
from tui_agent.models.verify import check_gguf_header

ADAPTER_PROMPT_KEY = "tui_agent.prompt_style"


def adapter_prompt_style(path: str | Path) -> str | None:
    """The system prompt style a GGUF LoRA adapter says it was trained under (written by ``train export``)."""
    try:
        from gguf import GGUFReader

        field = GGUFReader(str(path)).get_field(ADAPTER_PROMPT_KEY)
        return field.contents() if field is not None else None
    except Exception:  # an adapter from elsewhere, or one gguf cannot read: llama.cpp will say what is wrong
        return None


def split_adapter(name: str) -> tuple[str, str | None, bool]:
    """``NAME+ADAPTER.gguf`` -> (NAME, ADAPTER.gguf, False); ``NAME+none`` -> (NAME, None, True): the registry
    model without the adapter its entry names; anything else (a path with a ``+`` in it too) is left whole."""
    base, plus, adapter = name.rpartition("+")
    if not plus or not base or Path(name).expanduser().exists():
        return name, None, False
    if adapter.lower() == "none":
        return base, None, True
    return (base, adapter, False) if looks_like_path(adapter) else (name, None, False)


def looks_like_path(name_or_path: str) -> bool:
    return name_or_path.endswith(".gguf") or os.sep in name_or_path or name_or_path.startswith(("~", "."))


def resolve_model_file(spec: ModelSpec) -> Path:
    """The local file of a registry entry, checked cheaply (header, size); ModelError says how to get it."""
    from tui_agent.models import hub

    if spec.package:
        path = hub.ensure_embedded(spec)
    else:
        path = hub.local_path(spec)
        if path is None:
            raise ModelError(f"Model {spec.name} is not downloaded yet: run `tui-agent models pull {spec.name}`.")
    fix = f"Run `tui-agent models pull {spec.name} --force` to get it again."
    try:
        check_gguf_header(path)
    except ModelError as exc:
        raise ModelError(f"{exc} {fix}") from None
    if spec.size is not None and path.stat().st_size != spec.size:
        raise ModelError(f"{path} is corrupt: {path.stat().st_size} bytes instead of {spec.size}. {fix}")
    return path


def load_chat_model(
    name_or_path: str,
    *,
    n_ctx: int | None = None,
    n_threads: int | None = None,
    lora_path: str | None = None,
    no_lora: bool = False,
) -> LlamaChatModel:
    """Load a registry model or a local .gguf file, ready to chat. All failures are ModelError (one line).

    ``no_lora`` loads a registry model without the adapter its entry names (to compare base and adapted); so does
    the name ``NAME+none``, and ``NAME+ADAPTER.gguf`` loads it with that adapter instead."""
    name_or_path, named_lora, named_off = split_adapter(name_or_path)
    lora_path, no_lora = lora_path or named_lora, no_lora or named_off
    if lora_path:
        lora = Path(lora_path).expanduser()
        if not lora.is_file():
            raise ModelError(f"No such LoRA adapter file: {lora}")
        check_gguf_header(lora)
        lora_path = str(lora)
    if looks_like_path(name_or_path) and Path(name_or_path).expanduser().exists():
        path = Path(name_or_path).expanduser()
        check_gguf_header(path)
        return LlamaChatModel(
            path,
            None,
            n_ctx=n_ctx or None,
            n_threads=n_threads or None,
            lora_path=lora_path,
            prompt_style=(adapter_prompt_style(lora_path) if lora_path else None) or "full",
        )
    try:
        registry = load_registry()
    except ConfigError as exc:  # a broken user models.toml: same one line, under the error callers handle
        raise ModelError(str(exc)) from None
    if name_or_path not in registry and looks_like_path(name_or_path):
        raise ModelError(f"No such model file: {Path(name_or_path).expanduser()}")
    spec = registry.get(name_or_path)
    path = resolve_model_file(spec)
    if lora_path is None and spec.lora and not no_lora:
        lora_path = spec.lora
        if not Path(lora_path).is_file():
            raise ModelError(f"Model {spec.name}: its LoRA adapter {lora_path} does not exist.")
    return LlamaChatModel(
        path,
        get_format(spec.chat_format),
        name=spec.name,
        n_ctx=n_ctx or min(spec.context_length, DEFAULT_MAX_CTX),
        n_threads=n_threads or None,
        lora_path=lora_path,
        sha256=spec.sha256,
        prompt_style=((adapter_prompt_style(lora_path) or spec.prompt) if lora_path else "full"),
    )

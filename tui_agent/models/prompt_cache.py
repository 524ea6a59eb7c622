"""A persistent cache of the system prompt's llama.cpp state, so a new `ask` or TUI session does not read the same
1,500 tokens of instructions, tool docs and examples again before its first token.

One entry is one file ``<key>.kv`` written by llama.cpp's ``llama_state_save_file``: the prefix tokens and the
context's state (its KV cache) after evaluating them. The key hashes everything a saved state depends on:

- the model file and the LoRA file (resolved path, size and modification time: a replaced file is a new key),
- llama-cpp-python's version (the state format belongs to the llama.cpp it bundles),
- the context's size and number of sequences, and the exact prefix tokens (any change to the prompt, its tools
  or its version is a new key).

An entry that llama.cpp cannot read (truncated, another format) or whose tokens differ is deleted and rebuilt; it
never fails a run. The directory is kept under ``max_bytes`` by removing the least recently used entries.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_MAX_BYTES = 512 * 1024 * 1024  # a few models x prompt styles; one entry is 10-40 MB
SUFFIX = ".kv"


def file_identity(path: str | Path | None) -> list[Any] | None:
    """What identifies a file's contents cheaply: hashing a 400 MB model would cost more than the prompt."""
    if not path:
        return None
    resolved = Path(path).expanduser().resolve()
    try:
        stat = resolved.stat()
    except OSError:
        return [str(resolved)]
    return [str(resolved), stat.st_size, stat.st_mtime_ns]


def library_version() -> str:
    import llama_cpp

    return str(getattr(llama_cpp, "__version__", "unknown"))


def cache_key(
    *, model: str | Path, lora: str | Path | None, n_ctx: int, tokens: Sequence[int], n_seq_max: int = 1
) -> str:
    """The entry's name: a hash of model, adapter, library, context shape and the prefix tokens."""
    identity = {
        "model": file_identity(model),
        "lora": file_identity(lora),
        "llama_cpp": library_version(),
        "n_ctx": n_ctx,
        "n_seq_max": n_seq_max,
        "tokens": hashlib.sha256(json.dumps(list(tokens)).encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


class PromptCache:
    """Saved llama.cpp states under ``directory``, at most ``max_bytes`` in all."""

    def __init__(self, directory: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES):
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def path(self, key: str) -> Path:
        return self.directory / f"{key}{SUFFIX}"

    def load(self, ctx: Any, key: str, tokens: Sequence[int]) -> bool:
        """Restore the state saved under ``key`` into the llama context ``ctx``; False (entry removed) if it is
        missing, unreadable or not for these tokens. The caller must reset the context after a False."""
        import llama_cpp

        path = self.path(key)
        if not path.is_file():
            return False
        capacity = len(tokens) + 1
        out = (llama_cpp.llama_token * capacity)()
        count = ctypes.c_size_t(0)
        try:
            ok = llama_cpp.llama_state_load_file(ctx, str(path).encode(), out, capacity, ctypes.byref(count))
        except Exception:  # noqa: BLE001 - a bad entry must never stop a run
            ok = False
        if not ok or list(out[: count.value]) != list(tokens):
            self.discard(key)
            return False
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept longest when the cache is pruned
        return True

    def save(self, ctx: Any, key: str, tokens: Sequence[int]) -> bool:
        """Write the context's state for ``tokens`` atomically (a reader never sees half a file); False on failure."""
        import llama_cpp

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=SUFFIX)
            os.close(fd)
        except OSError:
            return False
        try:
            array = (llama_cpp.llama_token * len(tokens))(*tokens)
            if not llama_cpp.llama_state_save_file(ctx, tmp.encode(), array, len(tokens)):
                return False
            os.replace(tmp, self.path(key))
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self.prune()
        return True

    def discard(self, key: str) -> None:
        with contextlib.suppress(OSError):
            self.path(key).unlink()

    def entries(self) -> list[Path]:
        try:
            return [p for p in self.directory.iterdir() if p.suffix == SUFFIX and not p.name.startswith(".")]
        except OSError:
            return []

    def prune(self) -> None:
        """Remove least recently used entries until the directory holds at most ``max_bytes``."""
        sized = []
        for entry in self.entries():
            with contextlib.suppress(OSError):
                stat = entry.stat()
                sized.append((stat.st_mtime, stat.st_size, entry))
        total = sum(size for _, size, _ in sized)
        for _, size, entry in sorted(sized, key=lambda item: item[0]):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                entry.unlink()
                total -= size


def default_cache() -> PromptCache | None:
    """The cache under the app's cache directory; None when ``TUI_AGENT_PROMPT_CACHE=0`` turns it off."""
    if os.environ.get("TUI_AGENT_PROMPT_CACHE", "1").lower() in ("0", "false", "no", "off"):
        return None
    from tui_agent.config import cache_dir

    return PromptCache(cache_dir() / "prompt-cache")

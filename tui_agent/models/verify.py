"""Checks that a file really is the GGUF model we expect, before llama.cpp ever sees it.

llama.cpp handles most bad files gracefully, but a clear message ("not a GGUF file", "truncated", "sha256 differs")
is worth far more to a user than "failed to load model"; these checks are cheap (a header read, a stat) except
the sha256, which runs once after a download.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from tui_agent.models.base import ModelError

GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = (2, 3)
_MAX_COUNT = 1 << 24  # far above any real tensor or metadata count; larger means garbage


def check_gguf_header(path: Path) -> None:
    """Raise ModelError unless ``path`` starts like a GGUF file (magic, version, plausible counts)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(24)
    except IsADirectoryError:
        raise ModelError(f"{path} is a directory, not a GGUF model file.") from None
    except OSError as exc:
        raise ModelError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    if header[:4] != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF model file (it does not start with 'GGUF').")
    if len(header) < 24:
        raise ModelError(f"{path} is truncated: its GGUF header is incomplete.")
    version, n_tensors, n_kv = struct.unpack("<IQQ", header[4:24])
    if version not in GGUF_VERSIONS:
        raise ModelError(f"{path}: unsupported GGUF version {version} (supported: 2, 3).")
    if n_tensors > _MAX_COUNT or n_kv > _MAX_COUNT:
        raise ModelError(f"{path} is corrupt: its GGUF header is not valid.")


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, *, size: int | None = None, sha256: str | None = None, hint: str = "") -> None:
    """Header, then size, then sha256 (each only where known). ``hint`` is appended to the error (how to fix)."""
    suffix = f" {hint}" if hint else ""
    try:
        check_gguf_header(path)
    except ModelError as exc:
        raise ModelError(f"{exc}{suffix}") from None
    if size is not None:
        actual = path.stat().st_size
        if actual != size:
            raise ModelError(f"{path} is corrupt: {actual} bytes instead of {size}.{suffix}")
    if sha256 is not None:
        actual_sha = sha256_file(path)
        if actual_sha != sha256.lower():
            raise ModelError(f"{path} is corrupt: sha256 {actual_sha[:12]}... instead of {sha256[:12]}....{suffix}")

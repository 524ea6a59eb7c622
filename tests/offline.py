"""Models and data the suite takes from ``../shared`` (beside the repository): a test that needs one skips in a
bare clone, and fails where ``TUI_AGENT_REQUIRE_MODELS`` is set (``.ci/run`` sets it when ``../shared`` is there),
so CI can never pass by quietly skipping the tests that run on real models."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MODEL_CACHE = Path(os.environ.get("TUI_AGENT_TEST_MODELS", Path.home() / ".cache" / "tui-agent-test-models"))


def required() -> bool:
    """Whether missing models and data are failures here (read at call time)."""
    return os.environ.get("TUI_AGENT_REQUIRE_MODELS", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str) -> None:
    """Skip the current test for want of ``reason``, or fail it where models and data are required."""
    if required():
        pytest.fail(f"{reason} (TUI_AGENT_REQUIRE_MODELS is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def offline_model(name: str, shared: Path = SHARED) -> Path:
    """The GGUF that ``shared/models/offline-models.sh NAME`` assembles into the test-model cache."""
    script = shared / "models" / "offline-models.sh"
    if not script.exists():
        missing(f"{script} not found: cannot assemble {name}")
    env = {**os.environ, "OFFLINE_MODELS_DIR": os.environ.get("OFFLINE_MODELS_DIR", str(MODEL_CACHE))}
    done = subprocess.run(["bash", str(script), name], capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0 or not done.stdout.split():
        missing(f"offline-models.sh {name} failed: {done.stderr.strip().splitlines()[-1:]}")
    return Path(done.stdout.split()[-1])

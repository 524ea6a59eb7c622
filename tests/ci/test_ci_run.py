"""`.ci/run` itself, run by bash in a copy of the repository with its tools replaced by recording stand-ins
(python3, pip, pytest, apt-get, the offline-models script): how it turns pytest's status and the presence of
``../shared`` into its own status."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

STAND_INS = {
    # `python3 -m venv DIR` makes a DIR/bin/activate that changes nothing; every other call succeeds.
    "python3": 'if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && : > "$3/bin/activate"; fi\n',
    "python": "",
    "pip": "",
    "apt-get": "",
    "tmux": "",
    "pytest": 'env > "$LOG/pytest.env"\nexit "${PYTEST_STATUS:-0}"\n',
}


def _executable(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/bash\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture()
def ci(tmp_path):
    """Run a copy of .ci/run from ``tmp/repo``; ``shared`` (beside it) exists only when a test creates it."""
    repo, bin_dir, log = tmp_path / "repo", tmp_path / "bin", tmp_path / "log"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(REPO / ".ci" / "run", repo / ".ci" / "run")
    bin_dir.mkdir()
    log.mkdir()
    for name, body in STAND_INS.items():
        _executable(bin_dir / name, body)

    def run(pytest_status: int = 0) -> subprocess.CompletedProcess:
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(tmp_path / "home"),
            "LOG": str(log),
            "PYTEST_STATUS": str(pytest_status),
        }
        return subprocess.run(["bash", str(repo / ".ci" / "run")], capture_output=True, text=True, env=env)

    run.log = log
    run.shared = tmp_path / "shared"
    return run


def _pytest_env(log: Path) -> dict[str, str]:
    lines = (log / "pytest.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _offline_script(shared: Path, body: str) -> None:
    (shared / "models").mkdir(parents=True)
    _executable(shared / "models" / "offline-models.sh", body)


def test_no_tests_collected_is_a_failure(ci):
    done = ci(pytest_status=5)
    assert done.returncode == 5
    assert "collected no tests" in done.stdout


@pytest.mark.parametrize("status", [0, 1])
def test_pytest_status_is_passed_on(ci, status):
    assert ci(pytest_status=status).returncode == status


def test_a_bare_clone_lets_model_tests_skip(ci):
    assert ci().returncode == 0
    assert "TUI_AGENT_REQUIRE_MODELS" not in _pytest_env(ci.log)


def test_with_shared_the_models_are_assembled_first_and_required(ci):
    _offline_script(ci.shared, 'echo "$@ $OFFLINE_MODELS_DIR" > "$LOG/offline.args"\n')
    assert ci().returncode == 0
    env = _pytest_env(ci.log)
    assert env["TUI_AGENT_REQUIRE_MODELS"] == "1"
    assert (ci.log / "offline.args").read_text().split() == ["coder-0.5b", "coder-1.5b", env["OFFLINE_MODELS_DIR"]]
    assert env["OFFLINE_MODELS_DIR"] == os.path.join(env["HOME"], ".cache", "tui-agent-test-models")


def test_models_that_cannot_be_assembled_fail_ci_before_the_tests(ci):
    _offline_script(ci.shared, "echo 'no network' >&2\nexit 1\n")
    done = ci()
    assert done.returncode == 1 and "tests' models are missing" in done.stdout
    assert not (ci.log / "pytest.env").exists()

"""`tui-agent models list | pull | path | rm` end to end, downloads going through the local hub server."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.models.hub_server import HubServer
from tui_agent.cli import app
from tui_agent.config import config_dir
from tui_agent.models.registry import load_registry

NAME = "qwen2.5-coder-0.5b"


def run(*args: str):
    return CliRunner().invoke(app, ["models", *args])


def _row(output: str, name: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.split()[:1] == [name])


@pytest.fixture()
def hub_env(qwen05_gguf, tmp_path, monkeypatch):
    spec = load_registry().get(NAME)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with HubServer({spec.repo: {spec.file: qwen05_gguf}}, etags={spec.file: spec.sha256}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def test_list_shows_every_model_and_what_is_local(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = run("list")
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert names == load_registry().names()
    assert _row(result.stdout, NAME)[1] == "no"
    assert _row(result.stdout, "gemma3-270m")[1] == "embedded"


def test_list_shows_each_models_adapter(tmp_path):
    adapter = tmp_path / "agent.gguf"
    adapter.write_bytes(b"GGUF")
    path = config_dir() / "models.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[models."{NAME}"]\nlora = "{adapter}"\n[models."qwen2.5-coder-1.5b"]\nlora = "/nowhere/b.gguf"\n')
    result = run("list")
    assert result.stdout.splitlines()[0].split()[3] == "ADAPTER"
    assert _row(result.stdout, NAME)[4] == "agent.gguf"
    assert _row(result.stdout, "qwen2.5-coder-1.5b")[4:6] == ["b.gguf", "(missing)"]


def test_pull_path_list_rm_round_trip(hub_env):
    pulled = run("pull", NAME)
    assert pulled.exit_code == 0, pulled.output
    path = Path(pulled.stdout.strip().splitlines()[-1])
    assert path.is_file() and "Verifying" in pulled.stderr
    listed = run("list")
    assert _row(listed.stdout, NAME)[1:4] == ["yes", "491.4", "MB"]
    shown = run("path", NAME)
    assert shown.exit_code == 0 and shown.stdout.strip() == str(path)
    removed = run("rm", NAME)
    assert removed.exit_code == 0 and str(path) in removed.stdout and not path.exists()
    gone = run("path", NAME)
    assert gone.exit_code == 1
    assert gone.stderr.strip() == f"error: Model {NAME} is not downloaded yet: run `tui-agent models pull {NAME}`."
    again = run("rm", NAME)
    assert again.exit_code == 0 and "nothing to remove" in again.stderr


def test_unknown_model_is_a_one_line_error_with_suggestions():
    for command in ("pull", "path", "rm"):
        result = run(command, "qwen-coder-0.5b")
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Did you mean: qwen2.5-coder-0.5b" in lines[0]


def test_pull_without_network_says_so(monkeypatch, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = run("pull", NAME)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: Cannot reach") and "--model /path/to/model.gguf" in lines[-1]


def test_pull_of_a_corrupt_download_fails_and_offers_force(hub_env):
    spec = load_registry().get(NAME)
    hub_env.corrupt_at[spec.file] = 4096
    result = run("pull", NAME)
    assert result.exit_code == 1
    assert "corrupt" in result.stderr and f"tui-agent models pull {NAME} --force" in result.stderr


def test_malformed_user_registry_is_reported_with_file_and_line():
    path = config_dir() / "models.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[models.x]\nrepo = 'a/b'\nfile = 'x.gguf'\ncolour = 'red'\n")
    result = run("list")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {path}:1: models.x: unknown field 'colour'"


def test_models_help_imports_no_heavy_library():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from tui_agent.cli import app\n"
        "assert CliRunner().invoke(app, ['models', '--help']).exit_code == 0\n"
        "print(sorted(m for m in ('llama_cpp', 'huggingface_hub', 'gguf', 'numpy') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_interrupted_pull_leaves_no_partial_file(hub_env, tmp_path):
    """Ctrl-C in the middle of a download: a clear message, exit 130, and nothing half-written in the cache."""
    import os
    import signal
    import time

    hub_env.throttle = 0.05
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "tui_agent.cli", "models", "pull", NAME],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal, even when these tests run in the background (which makes SIGINT ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not any(r[0] == "GET" and r[1].endswith(".gguf") for r in hub_env.requests):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.1)
    time.sleep(1.0)  # some MiB arrive
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in err.strip().splitlines()[-1]
    hub_cache = tmp_path / "hf" / "hub"
    assert [p for p in hub_cache.rglob("*") if p.is_file() and ("blobs" in p.parts or "snapshots" in p.parts)] == []

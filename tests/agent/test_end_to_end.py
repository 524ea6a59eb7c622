"""End to end with the real Qwen2.5-Coder-0.5B-Instruct GGUF and a real Jupyter kernel.

The questions need code: nobody, and certainly not a 0.5B model, knows these numbers by heart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tui_agent.agent import events as ev
from tui_agent.agent.loop import Agent
from tui_agent.agent.trajectory import TrajectoryRecorder, read_trajectories

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # a loaded 2-core machine is slow


@pytest.fixture(scope="module")
def qwen(qwen05_gguf):
    from tui_agent.models.loader import load_chat_model

    return load_chat_model(str(qwen05_gguf), n_ctx=4096)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    from tui_agent.tools.kernel import Kernel

    k = Kernel(tmp_path_factory.mktemp("ws"), web=False, timeout=30)
    k.start()
    yield k
    k.shutdown()


@pytest.mark.parametrize(
    "question, expected",
    [
        ("What is the sum of all prime numbers below 10000?", "5736396"),
        ("What is 3 to the power 2024, modulo 1000000007?", "856720100"),
    ],
)
def test_qwen_answers_by_running_code(qwen, kernel, tmp_path, question, expected):
    path = tmp_path / "runs.jsonl"
    agent = Agent(
        qwen, kernel, workspace=tmp_path, web=False, repo_map="", max_steps=5, recorder=TrajectoryRecorder(path)
    )
    events = list(agent.run(question))
    finished = events[-1]
    assert isinstance(finished, ev.RunFinished)
    assert finished.stop_reason == "answered", [e for e in events if not isinstance(e, ev.Token)]
    assert finished.answer.strip().rstrip(".").replace(",", "") == expected
    assert any(isinstance(e, ev.CodeReady) for e in events)
    (run,) = read_trajectories(path)
    assert run.final_answer == finished.answer and run.steps[0].code
    assert run.prompt_tokens > 0 and run.completion_tokens > 0


def test_ask_cli_json_with_real_model(qwen05_gguf, tmp_path):
    env = {**os.environ, "TUI_AGENT_N_CTX": "4096"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui_agent.cli",
            "ask",
            "What is the sum of the squares of the integers from 1 to 1000?",
            "--yes",
            "--json",
            "--no-web",
            "--model",
            str(qwen05_gguf),
            "--max-steps",
            "4",
            "--workspace",
            str(tmp_path),
            "--save",
            str(tmp_path / "t.jsonl"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    result = lines[-1]
    assert result["event"] == "result" and result["stop_reason"] == "answered"
    assert result["answer"].replace(",", "") == "333833500"
    assert result["tokens"]["completion"] > 0
    assert read_trajectories(tmp_path / "t.jsonl")[0].final_answer == result["answer"]

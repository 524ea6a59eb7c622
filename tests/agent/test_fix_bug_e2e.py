"""End to end: the real Qwen2.5-Coder-1.5B GGUF, through `tui-agent ask --yes`, fixes a one-line bug in a small git
repository so that its tests pass; the change comes out as a JSON event with its diff, and `tui-agent undo` puts
the bug back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
]
# Greedy decoding makes the run deterministic. The 1.5B model first redefines the function in the kernel; the
# observation says the file was not changed and spells out the edit_file call (tools/shadowing.py), which it then runs.

BUGGY = "def total_price(prices, tax):\n    return sum(prices) * (1 - tax)\n"
TEST = (
    "from shop import total_price\n\n\ndef test_total_price():\n    assert total_price([10, 20], 0.5) == 45\n"
    "    assert total_price([100], 0) == 100\n"
)  # not the bug of the prompt's example


def test_qwen_fixes_a_bug_with_ask_yes(qwen15_gguf, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "shop.py").write_text(BUGGY)
    (repo / "test_shop.py").write_text(TEST)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    env = {**os.environ, "TUI_AGENT_N_CTX": "8192"}
    task = "The tests fail (run them with python -m pytest -q). Fix the bug in shop.py so that they pass."
    done = subprocess.run(
        [sys.executable, "-m", "tui_agent.cli", "ask", task, "--yes", "--json", "--no-web",
         "--model", str(qwen15_gguf), "--max-steps", "8", "--workspace", str(repo)],
        capture_output=True, text=True, env=env, timeout=800,
    )  # fmt: skip
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    changes = [e for e in events if e["event"] == "file_changed"]
    assert changes and changes[0]["path"] == "shop.py" and changes[0]["status"] == "applied", done.stdout[-3000:]
    assert "-    return sum(prices) * (1 - tax)" in changes[0]["diff"]
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=repo)
    assert tests.returncode == 0, (repo / "shop.py").read_text()
    undo = subprocess.run(
        [sys.executable, "-m", "tui_agent.cli", "undo", str(len(changes)), "--workspace", str(repo)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert undo.returncode == 0, undo.stderr
    assert (repo / "shop.py").read_text() == BUGGY

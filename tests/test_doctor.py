"""`tui-agent doctor` says which isolation is in force, and agrees with what a private kernel really gets."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tui_agent.cli import app
from tui_agent.tools.kernel import Kernel


def doctor(monkeypatch, **env: str) -> dict:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_doctor_reports_the_fallback_when_namespaces_are_off(monkeypatch):
    report = doctor(monkeypatch, TUI_AGENT_NO_NAMESPACES="1", GITHUB_TOKEN="t", ANTHROPIC_API_KEY="k")
    assert report["private mode"].startswith("audit hook") and report["trial runs"].startswith("journal")
    assert "ANTHROPIC_API_KEY" in report["kernel secrets"] and "GITHUB_TOKEN" in report["kernel secrets"]


def test_doctor_agrees_with_a_real_private_kernel(monkeypatch, tmp_path):
    report = doctor(monkeypatch)
    with Kernel(tmp_path, web=False, memory_limit_mb=None) as kernel:
        assert report["private mode"].startswith(kernel.isolation)
    text = CliRunner().invoke(app, ["doctor"]).output
    assert "private mode:" in text and "trial runs:" in text

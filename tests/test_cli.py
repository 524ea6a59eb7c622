"""The command itself: help and version answer without loading heavy libraries."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from tui_agent import __version__
from tui_agent.cli import app

HEAVY = (
    "llama_cpp",
    "textual",
    "jupyter_client",
    "tree_sitter",
    "huggingface_hub",
    "torch",
    "transformers",
    "ddgs",
)


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_the_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("ask", "models", "index"):
        assert command in result.output


def test_help_imports_no_heavy_library():
    code = (
        "import sys\n"
        "from tui_agent.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"

"""Workspace file tools: confined reads, plain text search, symbol lookup and the repo map."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tui_agent.tools import files


@pytest.fixture
def workspace(tmp_path) -> Path:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "config.py").write_text(
        "import os\n\n\nclass Settings:\n    debug = False\n\n\ndef load_settings(path):\n    return Settings()\n"
    )
    cli = "from pkg.config import load_settings\n\n\ndef main():\n    load_settings('x')\n"
    (root / "pkg" / "cli.py").write_text(cli)
    (root / "README.md").write_text("# Project\nRun main to load settings.\n")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("load_settings in git internals\n")
    (tmp_path / "secret.txt").write_text("password\n")
    return root


def test_read_file_numbers_lines_and_ranges(workspace):
    text = files.read_file(workspace, "pkg/config.py", 4, 5)
    assert text == "pkg/config.py (lines 4-5 of 9)\n4  class Settings:\n5      debug = False"
    whole = files.read_file(workspace, "pkg/cli.py")
    assert whole.splitlines()[1] == "1  from pkg.config import load_settings" and "(lines 1-5 of 5)" in whole


def test_read_file_long_files_are_paged(workspace):
    (workspace / "big.txt").write_text("".join(f"row {i}\n" for i in range(1, 1001)))
    text = files.read_file(workspace, "big.txt")
    assert "(lines 1-400 of 1000)" in text and "read_file('big.txt', 401, 1000)" in text


@pytest.mark.parametrize("path", ["../secret.txt", "pkg/../../secret.txt", "/etc/passwd"])
def test_read_file_refuses_paths_outside_the_workspace(workspace, path):
    text = files.read_file(workspace, path)
    assert text.startswith("read_file refused:") and "outside the workspace" in text
    assert "password" not in text


def test_read_file_refuses_symlinks_escaping_the_workspace(workspace):
    os.symlink(workspace.parent / "secret.txt", workspace / "innocent.txt")
    text = files.read_file(workspace, "innocent.txt")
    assert text.startswith("read_file refused:") and "password" not in text


def test_read_file_follows_symlinks_inside_the_workspace(workspace):
    os.symlink(workspace / "README.md", workspace / "link.md")
    assert "1  # Project" in files.read_file(workspace, "link.md")


def test_read_file_bad_inputs(workspace):
    assert "binary file" in files.read_file(workspace, "logo.png")
    assert "does not exist" in files.read_file(workspace, "nope.py")
    assert "is a directory" in files.read_file(workspace, "pkg") and "config.py" in files.read_file(workspace, "pkg")
    assert "past the end" in files.read_file(workspace, "README.md", 50)
    assert "before start" in files.read_file(workspace, "README.md", 2, 1)
    assert "must be line numbers" in files.read_file(workspace, "README.md", "one")


def test_search_text_ranks_files_and_skips_vcs(workspace):
    text = files.search_text(workspace, "load_settings", k=5)
    assert text.splitlines()[0] in ("pkg/cli.py", "pkg/config.py")
    assert "pkg/config.py" in text and "8: def load_settings(path):" in text
    assert ".git" not in text and "logo.png" not in text
    assert files.search_text(workspace, "zebra").startswith("No matches for 'zebra'")
    assert files.search_text(workspace, "  ").startswith("search_code needs a query")


def test_find_symbol_text(workspace):
    assert files.find_symbol_text(workspace, "Settings") == "pkg/config.py:4: class Settings:"
    assert files.find_symbol_text(workspace, "config.load_settings") == "pkg/config.py:8: def load_settings(path):"
    assert files.find_symbol_text(workspace, "missing").startswith("No definition of 'missing'")
    assert files.find_symbol_text(workspace, "a b").startswith("find_symbol needs an identifier")
    (workspace / "other.py").write_text("class Settings:\n    pass\n")
    assert files.find_symbol_text(workspace, "Settings", "pkg/config.py") == "pkg/config.py:4: class Settings:"
    assert files.find_symbol_text(workspace, "Settings", "other.py") == "other.py:1: class Settings:"
    assert files.find_symbol_text(workspace, "Settings", "nowhere.py").count("class Settings") == 2


def test_repo_map_text_lists_files_and_definitions_within_budget(workspace):
    text = files.repo_map_text(workspace)
    assert "pkg/config.py: Settings, load_settings" in text and "README.md" in text
    for i in range(200):
        (workspace / f"mod{i:03d}.py").write_text(f"def function_number_{i}():\n    pass\n")
    small = files.repo_map_text(workspace, budget=100)
    assert len(small) < 100 * 4 + 40 and small.splitlines()[-1].endswith("more files ...]")

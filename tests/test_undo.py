"""Undo on real files: several steps back, in a git repository (branch and index untouched) and without one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_agent.cli import app
from tui_agent.undo import UndoError, UndoStore


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True,
        env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
             "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(root)},
    ).stdout  # fmt: skip


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "app.py").write_text("v = 1\n")
    (root / "other.py").write_text("o = 1\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "init")
    return root


def change(store: UndoStore, path: Path, text: str | None) -> None:
    before = path.read_bytes() if path.exists() else None
    if text is None:
        path.unlink()
    else:
        path.write_text(text)
    store.record(path, before, None if text is None else text.encode())


def test_undo_several_steps_restores_exactly_and_keeps_git_state(repo):
    (repo / "app.py").write_text("v = 1\nuser_work = True\n")  # uncommitted work of the user
    (repo / "other.py").write_text("o = 2  # user, uncommitted\n")
    git(repo, "add", "other.py")  # and something staged
    head, index, status = git(repo, "rev-parse", "HEAD"), git(repo, "ls-files", "-s"), git(repo, "status", "--short")
    store = UndoStore(repo)
    assert store.dir == repo / ".git" / "tui-agent" / "undo"
    change(store, repo / "app.py", "v = 2\n")
    change(store, repo / "app.py", "v = 3\n")
    change(store, repo / "new.py", "n = 1\n")
    assert UndoStore(repo).undo(2) == ["removed new.py (created by change #3)", "restored app.py (change #2)"]
    assert (repo / "app.py").read_text() == "v = 2\n" and not (repo / "new.py").exists()
    assert UndoStore(repo).undo(1) == ["restored app.py (change #1)"]  # a later process, same journal
    assert (repo / "app.py").read_text() == "v = 1\nuser_work = True\n"
    assert (repo / "other.py").read_text() == "o = 2  # user, uncommitted\n"
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "ls-files", "-s") == index
    assert git(repo, "status", "--short") == status
    assert git(repo, "branch", "--list") == "* main\n"
    with pytest.raises(UndoError, match="nothing to undo"):
        store.undo()


def test_external_edit_after_the_change_is_never_clobbered(repo):
    store = UndoStore(repo)
    change(store, repo / "other.py", "o = 5\n")
    change(store, repo / "app.py", "v = 2\n")
    (repo / "other.py").write_text("o = 5\n# edited by the user afterwards\n")
    with pytest.raises(UndoError) as err:
        store.undo(2)
    assert "restored app.py" in str(err.value) and "other.py was changed after" in str(err.value)
    assert (repo / "app.py").read_text() == "v = 1\n"
    assert (repo / "other.py").read_text() == "o = 5\n# edited by the user afterwards\n"
    assert [c.path for c in store.changes()] == [str(repo / "other.py")]


def test_undo_outside_git_uses_the_data_dir(tmp_path):
    root = tmp_path / "plain"
    root.mkdir()
    (root / "a.txt").write_bytes(b"one\r\n")
    store = UndoStore(root)
    assert not str(store.dir).startswith(str(root))
    change(store, root / "a.txt", "two\n")
    result = CliRunner().invoke(app, ["undo", "--list", "--workspace", str(root)])
    assert result.exit_code == 0 and "changed  a.txt" in result.output
    result = CliRunner().invoke(app, ["undo", "--workspace", str(root)])
    assert result.exit_code == 0 and "Restored a.txt (change #1)." in result.output
    assert (root / "a.txt").read_bytes() == b"one\r\n"
    result = CliRunner().invoke(app, ["undo", "--workspace", str(root)])
    assert result.exit_code == 1 and "nothing to undo" in result.output

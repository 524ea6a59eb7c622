"""Trial runs leave the disk as they found it: real forks, real files, every way a fork can end."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from tui_agent.tools import fsjournal
from tui_agent.tools.forkrun import run_forked


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything a user could notice about a tree: kinds, contents, link targets and modes."""
    seen: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                seen[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                seen[rel] = ("dir",)
            else:
                seen[rel] = ("file", path.read_bytes(), stat.S_IMODE(info.st_mode))
    return seen


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "ws"
    (root / "pkg" / "deep").mkdir(parents=True)
    (root / "notes.txt").write_text("original notes\n")
    (root / "data.csv").write_text("a,b\n1,2\n")
    (root / "pkg" / "mod.py").write_text("X = 1\n")
    (root / "pkg" / "deep" / "leaf.txt").write_text("leaf\n")
    (root / "link").symlink_to("notes.txt")
    with sqlite3.connect(root / "app.db") as db:
        db.execute("create table t (x)")
        db.execute("insert into t values (1)")
    db.close()
    monkeypatch.chdir(root)
    return root


def test_every_kind_of_change_is_undone(workspace):
    before = snapshot(workspace)
    code = """
import os, shutil, sqlite3, pathlib
open('notes.txt', 'a').write('appended\\n')
pathlib.Path('new.txt').write_text('made by the trial')
os.makedirs('made/inner', exist_ok=True)
open('made/inner/f.txt', 'w').write('x')
os.remove('data.csv')
os.rename('pkg/mod.py', 'moved.py')
shutil.rmtree('pkg')
os.truncate('notes.txt', 3)
os.unlink('link'); os.symlink('moved.py', 'link')
os.chmod('moved.py', 0o400)
db = sqlite3.connect('app.db'); db.execute('insert into t values (2)'); db.commit(); db.close()
print(sorted(os.listdir('.')), open('notes.txt').read())
"""
    out = run_forked(None, code, timeout=30)
    assert out["error"] is None, out["error"]
    assert "moved.py" in out["stdout"] and "new.txt" in out["stdout"] and "ori" in out["stdout"]
    assert snapshot(workspace) == before


def test_changes_are_undone_when_the_fork_is_killed_or_crashes(workspace):
    before = snapshot(workspace)
    slow = "open('notes.txt', 'w').write('gone')\nopen('extra', 'w')\nimport time\ntime.sleep(60)"
    timed_out = run_forked(None, slow, 1)
    assert timed_out["timed_out"]
    assert snapshot(workspace) == before
    crashed = run_forked(None, "import os, signal\nos.remove('data.csv')\nos.kill(os.getpid(), signal.SIGSEGV)", 30)
    assert "SIGSEGV" in crashed["error"]
    exited = run_forked(None, "import os\nopen('pkg/mod.py', 'w').write('broken')\nos._exit(3)", 30)
    assert "exit code 3" in exited["error"]
    assert snapshot(workspace) == before


def test_what_cannot_be_undone_is_refused(workspace, monkeypatch):
    before = snapshot(workspace)
    spawned = run_forked(None, "import subprocess\nsubprocess.run(['touch', 'by-a-program'])", 30)
    assert spawned["error"].startswith("TrialRefused") and "other programs" in spawned["error"]
    shell = run_forked(None, "import os\nos.system('touch by-a-shell')", 30)
    assert "TrialRefused" in shell["error"]
    unknown = run_forked(None, "import os\nos.mkdir('sub', dir_fd=987)", 30)
    assert "directory descriptor" in unknown["error"]
    monkeypatch.setattr(fsjournal, "MAX_BACKUP_BYTES", 4)
    large = run_forked(None, "open('notes.txt', 'a').write('more')", 30)
    assert "too large" not in large["error"] and "file this large" in large["error"]
    assert snapshot(workspace) == before


def test_paths_relative_to_a_directory_descriptor_are_undone(workspace):
    before = snapshot(workspace)
    code = "import os\nfd = os.open('pkg', os.O_RDONLY)\nos.mkdir('sub', dir_fd=fd)\nos.remove('mod.py', dir_fd=fd)"
    out = run_forked(None, code + "\nprint(sorted(os.listdir('pkg')))", 30)
    assert out["error"] is None and "'sub'" in out["stdout"] and "mod.py" not in out["stdout"]
    assert snapshot(workspace) == before


def test_caught_refusal_lets_the_candidate_go_on_without_the_change(workspace):
    code = "import subprocess\ntry:\n    subprocess.run(['true'])\nexcept OSError as exc:\n    print('refused:', exc)"
    out = run_forked(None, code, 30)
    assert out["error"] is None and "refused: a trial run cannot take back" in out["stdout"]


def test_reads_and_special_files_are_not_journaled(workspace, tmp_path):
    journal = fsjournal.Journal(tmp_path / "journal")
    os.makedirs(journal.directory)
    assert journal._path("/dev/null") is None and journal._path(3) is None
    assert journal._path(os.path.join(journal.directory, "x")) is None
    assert journal._path("notes.txt") == str(workspace / "notes.txt")
    out = run_forked(None, "print(open('notes.txt').read().strip())\nopen('/dev/null', 'w').write('x')", 30)
    assert out["stdout"].strip() == "original notes"


def test_rollback_skips_a_line_cut_short_and_reports_what_it_could_not_restore(tmp_path):
    journal = fsjournal.Journal(tmp_path / "journal")
    os.makedirs(journal.directory)
    created = tmp_path / "created.txt"
    created.write_text("made during the trial")
    blocked = tmp_path / "ro" / "child.txt"
    lines = [
        json.dumps({"op": "absent", "path": str(created)}),
        json.dumps({"op": "file", "path": str(blocked), "copy": str(tmp_path / "missing-copy")}),
        '{"op": "file", "path": "/cut',
    ]
    Path(journal.manifest).write_text("\n".join(lines))
    problems = journal.rollback()
    assert not created.exists()
    assert len(problems) == 1 and str(blocked) in problems[0]
    assert not Path(journal.directory).exists()

"""Trial runs leave no trace, or refuse: each leak found in the journal, in both isolation modes, with real forks."""

from __future__ import annotations

import http.server
import os
import threading
from pathlib import Path

import pytest

from tui_agent.tools import sandbox
from tui_agent.tools.forkrun import run_forked
from tui_agent.tools.kernel import Kernel

from .test_fsjournal import snapshot


def times(path: Path) -> int:
    """Modification time (access times change whenever anyone, this test included, reads)."""
    return path.stat().st_mtime_ns


def user_files(root: Path) -> dict[str, tuple]:
    return {path: seen for path, seen in snapshot(root).items() if not path.startswith(".tui-agent")}


@pytest.fixture(params=["overlay", "journal"])
def mode(request, monkeypatch) -> str:
    """Both ways a trial is isolated: an overlay in its own namespaces where allowed, the journal everywhere."""
    if request.param == "overlay" and not sandbox.namespaces_available(overlay=True):
        pytest.skip("this system does not allow unprivileged user namespaces")
    if request.param == "journal":
        monkeypatch.setenv("TUI_AGENT_NO_NAMESPACES", "1")
    return request.param


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "notes.txt").write_text("original notes\n")
    (root / "pkg" / "mod.py").write_text("X = 1\n")
    os.utime(root / "notes.txt", ns=(1_000_000_000, 2_000_000_000))
    monkeypatch.chdir(root)
    return root


def trial(code: str, workspace: Path, mode: str) -> dict:
    out = run_forked(None, code, 30, workspace=str(workspace))
    assert out["isolation"].startswith("overlay" if mode == "overlay" else "journal"), out
    return out


def test_a_write_through_a_symlink_leaves_its_target_as_it_was(workspace, tmp_path, mode):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_text("outside the workspace\n")
    (workspace / "link.txt").symlink_to(outside / "target.txt")
    (workspace / "linkdir").symlink_to(outside)
    before, before_outside = snapshot(workspace), snapshot(outside)
    outside_times = times(outside)
    code = (
        "open('link.txt', 'w').write('changed through the link')\n"
        "open('linkdir/new.txt', 'w').write('new, through a directory link')\n"
        "print(open('link.txt').read())"
    )
    out = trial(code, workspace, mode)
    assert out["error"] is None and out["stdout"] == "changed through the link\n"
    assert snapshot(outside) == before_outside and times(outside) == outside_times
    assert snapshot(workspace) == before


def test_writes_through_a_file_opened_before_the_fork_are_undone(workspace, mode):
    from tui_agent.index.workspace import WorkspaceIndex

    index = WorkspaceIndex(workspace)  # its database stays open across the fork, and is not copied for the trial
    index.refresh()
    before = user_files(workspace)
    log = open(workspace / "notes.txt", "a")  # noqa: SIM115 - open across the fork on purpose
    db = os.open(workspace / "pkg" / "mod.py", os.O_RDWR)
    trials = Path(os.environ["TUI_AGENT_DATA_DIR"]) / "trials"
    try:
        code = (
            f"import os, glob\nos.write({log.fileno()}, b'leaked line\\n')\nos.write({db}, b'Y = 2')\n"
            f"os.ftruncate({db}, 5)\nprint(open(glob.glob('{trials}/*/journal.jsonl')[0]).read())"
        )
        out = trial(code, workspace, mode)
        assert out["error"] is None, out["error"]
    finally:
        log.close()
        os.close(db)
        index.close()
    assert "notes.txt" in out["stdout"] and "mod.py" in out["stdout"] and "index.sqlite" not in out["stdout"]
    assert user_files(workspace) == before  # the index itself changes as the parent closes it


def test_file_and_directory_times_are_put_back(workspace, mode):
    notes_times, pkg_times, root_times = times(workspace / "notes.txt"), times(workspace / "pkg"), times(workspace)
    code = (
        "import os\nos.utime('notes.txt', (5, 5))\nos.utime('pkg', (7, 7))\nos.chmod('pkg', 0o500)\n"
        "open('pkg/new.py', 'w').close()\nos.remove('pkg/new.py')\nopen('made.txt', 'w').close()"
    )
    out = trial(code, workspace, mode)
    assert out["error"] is None, out["error"]
    assert times(workspace / "notes.txt") == notes_times
    assert times(workspace / "pkg") == pkg_times and (workspace / "pkg").stat().st_mode & 0o777 == 0o755
    assert times(workspace) == root_times and not (workspace / "made.txt").exists()


@pytest.fixture
def server():
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"side effect")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", hits
    httpd.shutdown()
    httpd.server_close()


def test_network_calls_are_refused(workspace, mode, server):
    url, hits = server
    out = trial(f"import urllib.request\nurllib.request.urlopen({url!r}, timeout=5).read()", workspace, mode)
    assert "a trial run cannot take back network access" in out["error"]
    raw = f"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {url.rsplit(':', 1)[1].strip('/')}))"
    assert "network access" in trial(raw, workspace, mode)["error"]
    assert hits == []


def test_programs_started_without_an_audit_event_are_refused(workspace, mode):
    before = snapshot(workspace)
    code = (
        "import multiprocessing, pathlib\n"
        "p = multiprocessing.get_context('spawn').Process(target=pathlib.Path('spawned.txt').touch)\np.start()"
    )
    out = trial(code, workspace, mode)
    assert "a trial run cannot take back starting other programs" in out["error"]
    assert snapshot(workspace) == before


@pytest.mark.skipif(not sandbox.namespaces_available(overlay=True), reason="no user namespaces with overlayfs here")
def test_c_level_writes_in_the_workspace_vanish_with_the_overlay(workspace):
    mode = "overlay"
    before = snapshot(workspace)
    code = (
        "import ctypes\nlibc = ctypes.CDLL(None)\nfd = libc.open(b'notes.txt', 0o1001)\n"  # O_WRONLY | O_TRUNC
        "libc.write(fd, b'written by C', 12)\nlibc.close(fd)\nprint(open('notes.txt').read())"
    )
    out = trial(code, workspace, mode)
    assert out["stdout"] == "written by C\n" and snapshot(workspace) == before


def test_a_trial_uses_its_own_sqlite_connection_to_the_index(tmp_path):
    (tmp_path / "mod.py").write_text("def helper():\n    return 1\n")
    with Kernel(tmp_path, memory_limit_mb=None) as kernel:
        setup = kernel.execute(
            "from tui_agent.index.workspace import WorkspaceIndex\nidx = WorkspaceIndex('.')\nidx.refresh()\n"
            "parent_conn = idx.conn\ncount = lambda: idx.conn.execute('select count(*) from files').fetchone()[0]\n"
            "count()"
        )
        assert setup.ok and setup.result == "1"
        child = kernel.try_execute("print(idx.conn is not parent_conn, count())")
        assert child.ok and child.stdout == "True 1\n"
        assert kernel.execute("idx.conn is parent_conn, count()").result == "(True, 1)"


@pytest.mark.parametrize("namespaces", [True, False])
def test_a_kernel_killed_mid_trial_has_its_journal_replayed_at_the_next_start(tmp_path, monkeypatch, namespaces):
    if namespaces and not sandbox.namespaces_available(overlay=True):
        pytest.skip("this system does not allow unprivileged user namespaces")
    if not namespaces:
        monkeypatch.setenv("TUI_AGENT_NO_NAMESPACES", "1")
    workspace, outside = tmp_path / "ws", tmp_path / "outside.txt"
    workspace.mkdir()
    outside.write_text("before the trial\n")
    (workspace / "kept.txt").write_text("kept\n")
    code = (
        f"import os, signal\nopen({str(outside)!r}, 'w').write('changed')\nopen('kept.txt', 'w').write('changed')\n"
        "os.kill(os.getppid(), signal.SIGKILL)"  # the kernel dies while its trial is running
    )
    with Kernel(workspace, memory_limit_mb=None) as kernel:
        died = kernel.try_execute(code)
        assert died.restarted and not died.ok
        assert outside.read_text() == "before the trial\n" and (workspace / "kept.txt").read_text() == "kept\n"
        assert "interrupted trial run was undone" in kernel.execute("1").notice
    trials = Path(os.environ["TUI_AGENT_DATA_DIR"]) / "trials"
    assert list(trials.iterdir()) == []


def test_recovery_replays_only_journals_nobody_holds(tmp_path):
    from tui_agent.tools import fsjournal

    created = tmp_path / "created-by-a-trial.txt"
    journal = fsjournal.Journal()  # holds its lock, as a running trial's parent does
    journal._append({"op": "absent", "path": str(created)})
    journal._manifest.close()
    created.write_text("x")
    assert fsjournal.recover() == [] and created.exists()  # still running: left alone
    os.close(journal._lock_fd)  # its process is gone
    journal._lock_fd = None
    messages = fsjournal.recover()
    assert len(messages) == 1 and "interrupted trial run was undone" in messages[0]
    assert not created.exists() and not Path(journal.directory).exists()

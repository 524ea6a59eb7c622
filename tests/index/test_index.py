"""The index on real code: truth from ``ast``, incremental refresh, ignores, damage recovery, concurrent writers."""

from __future__ import annotations

import ast
import functools
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tui_agent.index.query import find_symbol, search
from tui_agent.index.store import SCHEMA_VERSION, IndexUnavailable
from tui_agent.index.workspace import WorkspaceIndex

REPO = Path(__file__).resolve().parents[2]


def _ast_definitions(root: Path) -> set[tuple[str, str, int]]:
    """(path, name, line) of every function and class, as Python itself sees them."""
    truth = set()
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                truth.add((rel, node.name, node.lineno))
    return truth


def _indexed(index: WorkspaceIndex) -> set[tuple[str, str, int]]:
    return set(
        index.conn.execute("SELECT f.path, s.name, s.line FROM symbols s JOIN files f ON f.id = s.file_id").fetchall()
    )


def test_typer_package_symbols_at_their_true_lines(typer_pkg):
    index = WorkspaceIndex(typer_pkg)
    stats = index.refresh(workers=2)
    truth = _ast_definitions(typer_pkg)
    assert len(truth) > 200
    assert truth <= _indexed(index)
    assert stats.added == index.status().files + index.status().skipped
    import typer.main

    result = find_symbol(index.conn, index.root, "get_command")
    definition = result.definitions[0]
    assert definition.path == "typer/main.py"
    import inspect

    _, line = inspect.getsourcelines(typer.main.get_command)
    assert definition.line == line
    assert definition.signature.startswith("def get_command(")
    assert result.references, "get_command is called inside typer"
    index.close()


def test_index_lives_in_workspace_and_is_ignored_by_git(json_pkg):
    index = WorkspaceIndex(json_pkg)
    index.refresh()
    assert index.db_path == json_pkg / ".tui-agent" / "index.sqlite"
    assert (json_pkg / ".tui-agent" / ".gitignore").read_text().strip() == "*"
    assert index.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert index.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    index.close()


def test_incremental_refresh_edit_delete_add(json_pkg):
    index = WorkspaceIndex(json_pkg)
    first = index.refresh()
    assert first.added > 0
    assert index.refresh().modified is False

    decoder = json_pkg / "json" / "decoder.py"
    text = decoder.read_text()
    decoder.write_text(text + "\n\ndef brand_new_helper(x):\n    return x\n")
    stats = index.refresh()
    assert (stats.changed, stats.added, stats.removed) == (1, 0, 0)
    defs = find_symbol(index.conn, index.root, "brand_new_helper").definitions
    assert [(d.path, d.line) for d in defs] == [("json/decoder.py", len(text.split("\n")) + 2)]

    st = decoder.stat()
    os.utime(decoder, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    touched = index.refresh()
    assert (touched.touched, touched.changed) == (1, 0)

    (json_pkg / "json" / "tool.py").unlink()
    stats = index.refresh()
    assert stats.removed == 1
    assert not find_symbol(index.conn, index.root, "main").definitions or all(
        d.path != "json/tool.py" for d in find_symbol(index.conn, index.root, "main").definitions
    )
    assert not [h for h in search(index.conn, index.root, "argparse", 10) if h.path == "json/tool.py"]

    (json_pkg / "extra.py").write_text("class AddedLater:\n    '''quokka marsupial'''\n")
    stats = index.refresh()
    assert stats.added == 1
    assert find_symbol(index.conn, index.root, "AddedLater").definitions[0].line == 1
    assert search(index.conn, index.root, "quokka")[0].path == "extra.py"
    index.close()


def test_gitignore_and_usual_ignores_respected(json_pkg):
    (json_pkg / ".gitignore").write_text("secret_*.py\nbuild-out/\n")
    (json_pkg / "secret_keys.py").write_text("def leaked():\n    pass\n")
    (json_pkg / "build-out").mkdir()
    (json_pkg / "build-out" / "gen.py").write_text("def generated_thing():\n    pass\n")
    (json_pkg / "node_modules" / "lib").mkdir(parents=True)
    (json_pkg / "node_modules" / "lib" / "index.js").write_text("function vendored() {}\n")
    sub = json_pkg / "json"
    (sub / ".gitignore").write_text("scanner.py\n")
    index = WorkspaceIndex(json_pkg)
    index.refresh()
    paths = {row[0] for row in index.conn.execute("SELECT path FROM files")}
    assert "secret_keys.py" not in paths and "json/scanner.py" not in paths
    assert not any(p.startswith(("build-out/", "node_modules/", ".tui-agent/")) for p in paths)
    assert "json/decoder.py" in paths
    for name in ("leaked", "generated_thing", "vendored"):
        assert not find_symbol(index.conn, index.root, name).definitions
    index.close()


def test_binary_and_unsupported_files(json_pkg):
    (json_pkg / "blob.dat").write_bytes(b"\x00\x01\x02binary\x00" * 100)
    (json_pkg / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    (json_pkg / "notes.rst").write_text("Release notes\n=============\n\nThe wombat parser got faster.\n")
    (json_pkg / "latin1.py").write_bytes("NAME = 'caf\xe9'\n".encode("latin-1"))
    index = WorkspaceIndex(json_pkg)
    index.refresh()
    rows = dict(index.conn.execute("SELECT path, skip FROM files").fetchall())
    assert rows["blob.dat"] == "binary"
    assert "image.png" not in rows
    assert rows["notes.rst"] == "" and search(index.conn, index.root, "wombat parser")[0].path == "notes.rst"
    assert find_symbol(index.conn, index.root, "NAME").definitions[0].path == "latin1.py"
    index.close()


def test_corrupt_index_is_rebuilt_with_a_notice(json_pkg):
    index = WorkspaceIndex(json_pkg)
    index.refresh()
    db = index.db_path
    index.close()
    db.write_bytes(b"this is not a database" * 200)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    index = WorkspaceIndex(json_pkg)
    assert any("rebuilding" in n for n in index.notices)
    stats = index.refresh()
    assert stats.added > 0
    assert find_symbol(index.conn, index.root, "JSONDecoder").definitions
    index.close()


def test_old_schema_is_rebuilt_with_a_notice(json_pkg):
    db = json_pkg / ".tui-agent" / "index.sqlite"
    db.parent.mkdir()
    old = sqlite3.connect(db)
    old.executescript("CREATE TABLE files(path TEXT); PRAGMA user_version = 1;")
    old.close()
    index = WorkspaceIndex(json_pkg)
    assert any("schema v1" in n for n in index.notices)
    assert index.refresh().added > 0
    index.close()


def test_missing_or_bad_workspace_is_a_clear_error(tmp_path):
    with pytest.raises(IndexUnavailable, match="no such directory"):
        WorkspaceIndex(tmp_path / "absent")
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(IndexUnavailable, match="not a directory"):
        WorkspaceIndex(file)


def test_unwritable_workspace_keeps_its_index_in_the_cache(tmp_path, monkeypatch):
    root = tmp_path / "ro"
    root.mkdir()
    (root / "a.py").write_text("def f():\n    pass\n")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if ".tui-agent" in str(p) else real_access(p, mode))
    index = WorkspaceIndex(root)
    assert ".tui-agent" not in str(index.db_path)
    assert str(index.db_path).startswith(os.environ["TUI_AGENT_CACHE_DIR"])
    assert index.refresh().added == 1
    index.close()


CONCURRENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from tui_agent.index.workspace import WorkspaceIndex
    root, barrier, me = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    (barrier / me).touch()
    deadline = time.time() + 120
    while len(list(barrier.iterdir())) < 2 and time.time() < deadline:  # start both refreshes together
        time.sleep(0.005)
    index = WorkspaceIndex(root)
    stats = index.refresh(workers=1)
    print(stats.added, index.status().files)
    """
)


def test_two_processes_refreshing_at_once_do_not_corrupt(typer_pkg, json_pkg, tmp_path):
    root = tmp_path / "both"
    shutil.copytree(typer_pkg, root, ignore=shutil.ignore_patterns(".tui-agent"))
    shutil.copytree(json_pkg / "json", root / "json")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT, str(root), str(barrier), name],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("a", "b")
    ]
    outputs = [p.communicate(timeout=240)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    added = sorted(int(o[0]) for o in outputs)
    files = {int(o[1]) for o in outputs}
    assert added[0] == 0 and added[1] > 0, "one process builds, the other finds it done"
    assert len(files) == 1
    conn = sqlite3.connect(root / ".tui-agent" / "index.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    dupes = conn.execute("SELECT count(*) FROM (SELECT path FROM files GROUP BY path HAVING count(*) > 1)")
    assert dupes.fetchone()[0] == 0
    conn.close()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_process_pool_build_matches_inline_build(typer_pkg, tmp_path, monkeypatch, method):
    import tui_agent.index.refresh as refresh_module

    inline_root = tmp_path / "inline"
    pooled_root = tmp_path / "pooled"
    for root in (inline_root, pooled_root):
        shutil.copytree(typer_pkg, root, ignore=shutil.ignore_patterns(".tui-agent"))
    inline = WorkspaceIndex(inline_root)
    inline.refresh(workers=1)
    monkeypatch.setattr(refresh_module, "POOL_MIN_FILES", 2)
    monkeypatch.setattr(refresh_module, "_start_method", lambda: method)
    pooled = WorkspaceIndex(pooled_root)
    stats = pooled.refresh(workers=2)
    assert stats.added > 2
    assert _indexed(pooled) == _indexed(inline)
    count = "SELECT count(*), sum(count) FROM refs"
    assert pooled.conn.execute(count).fetchone() == inline.conn.execute(count).fetchone()
    inline.close()
    pooled.close()


def test_git_info_exclude_and_file_cap(json_pkg, monkeypatch):
    (json_pkg / ".git" / "info").mkdir(parents=True)
    (json_pkg / ".git" / "info" / "exclude").write_text("json/tool.py\n")
    import tui_agent.index.refresh as refresh_module
    from tui_agent.index import walk as walk_module

    monkeypatch.setattr(refresh_module, "MAX_FILES", 3)
    monkeypatch.setattr(refresh_module, "walk", functools.partial(walk_module.walk, max_files=3))
    index = WorkspaceIndex(json_pkg)
    index.refresh()
    paths = [row[0] for row in index.conn.execute("SELECT path FROM files ORDER BY path")]
    assert len(paths) == 3 and "json/tool.py" not in paths
    assert any("only the first 3" in n for n in index.notices)
    index.close()


HOLDER = textwrap.dedent(
    """
    import sys
    from tui_agent.index.workspace import WorkspaceIndex
    index = WorkspaceIndex(sys.argv[1])
    print(index.conn.execute("SELECT count(*) FROM files").fetchone()[0], flush=True)
    sys.stdin.readline()  # keep the index open until told to close
    index.close()
    """
)


def test_recovery_never_deletes_a_database_another_process_has_open(json_pkg):
    index = WorkspaceIndex(json_pkg)
    index.refresh()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(json_pkg)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert int(holder.stdout.readline()) > 0  # the other process has the index open
        inode = index.db_path.stat().st_ino
        with pytest.raises(IndexUnavailable, match="another process has it open"):
            index.recover(sqlite3.DatabaseError("database disk image is malformed"))
        assert index.db_path.stat().st_ino == inode  # not deleted under the other process
        assert index.conn.execute("SELECT count(*) FROM files").fetchone()[0] > 0  # its contents still there
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    index.recover(sqlite3.DatabaseError("database disk image is malformed"))  # alone now: rebuilt
    assert index.conn.execute("SELECT count(*) FROM files").fetchone()[0] == 0  # a fresh, empty database
    assert any("damaged" in n for n in index.notices)
    assert index.refresh().added > 0
    index.close()

"""`tui-agent sessions`, `--resume` errors, and a help that does not load Textual."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from tui_agent.agent import events as ev
from tui_agent.cli import app
from tui_agent.sessions import SessionStore

runner = CliRunner()


def test_sessions_lists_saved_sessions_as_table_and_json():
    empty = runner.invoke(app, ["sessions"])
    assert empty.exit_code == 0 and "No saved sessions yet" in empty.output
    store = SessionStore()
    sid = store.create(model="qwen", workspace="/home/me/proj")
    store.append(sid, {"event": "user", "text": "fix the failing test"})
    store.append(sid, ev.RunStarted(task="fix the failing test", model="qwen"))
    store.append(sid, ev.StepStarted(step=1))
    table = runner.invoke(app, ["sessions"], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    assert sid in table.output and "fix the failing test" in table.output and "qwen" in table.output
    data = json.loads(runner.invoke(app, ["sessions", "--json"]).output)
    assert data[0]["id"] == sid and data[0]["runs"] == 1 and data[0]["steps"] == 1
    assert data[0]["workspace"] == "/home/me/proj"


def test_resume_of_an_unknown_session_is_a_one_line_error():
    SessionStore().create()
    result = runner.invoke(app, ["--resume", "nosuchid"])
    assert result.exit_code == 1
    assert "no session 'nosuchid'" in result.output
    assert "Traceback" not in result.output


def test_a_broken_config_file_is_a_one_line_error(isolated_dirs):
    (isolated_dirs / "config" / "config.toml").write_text("approval = 'sometimes'\n")
    result = runner.invoke(app, [])
    assert result.exit_code == 2
    assert "approval" in result.output and "Traceback" not in result.output


def test_help_does_not_import_textual():
    code = "import sys; from tui_agent.cli import app; print('textual' in sys.modules, 'llama_cpp' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"]


def test_resume_alone_means_latest():
    from tui_agent.commands.tui import resume_default

    assert resume_default(["--resume"]) == ["--resume", "latest"]
    assert resume_default(["--resume", "-m", "x"]) == ["--resume", "latest", "-m", "x"]
    assert resume_default(["--resume", "ab12"]) == ["--resume", "ab12"]
    assert resume_default(["sessions", "--json"]) == ["sessions", "--json"]


def test_resume_flag_without_sessions_is_a_one_line_error(isolated_dirs):
    done = subprocess.run(
        [sys.executable, "-m", "tui_agent.cli", "--resume"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "error: no saved sessions yet"


def test_sessions_with_an_unusable_file_is_a_one_line_error(isolated_dirs):
    (isolated_dirs / "data" / "sessions.sqlite").write_bytes(b"garbage" * 100)
    result = runner.invoke(app, ["sessions"])
    assert result.exit_code == 1
    assert "not a usable sessions database" in result.output and "Traceback" not in result.output

"""`tui-agent index/search/symbol` through the real CLI app."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tui_agent.cli import app

runner = CliRunner()


def test_index_builds_then_reports_status(json_pkg):
    before = runner.invoke(app, ["index", str(json_pkg), "--status"])
    assert before.exit_code == 0 and "No index yet" in before.output
    result = runner.invoke(app, ["index", str(json_pkg)])
    assert result.exit_code == 0, result.output
    assert "Indexed" in result.output and "symbols" in result.output
    again = runner.invoke(app, ["index", str(json_pkg), "--json"])
    summary = json.loads(again.output)
    assert summary["added"] == 0 and summary["files"] > 0 and summary["symbols"] > 0
    status = runner.invoke(app, ["index", str(json_pkg), "--status", "--json"])
    info = json.loads(status.output)
    assert info["files"] == summary["files"] and info["bytes"] > 0
    text = runner.invoke(app, ["index", str(json_pkg), "--status"])
    assert "Symbols" in text.output


def test_search_and_symbol(json_pkg):
    result = runner.invoke(app, ["search", "Expecting value", "-C", str(json_pkg), "--json"])
    hits = json.loads(result.output)
    assert result.exit_code == 0 and hits and hits[0]["path"].startswith("json/")
    rich = runner.invoke(app, ["search", "Expecting value", "-C", str(json_pkg), "-k", "1"])
    assert rich.exit_code == 0 and "json/" in rich.output
    sym = runner.invoke(app, ["symbol", "JSONEncoder", "-C", str(json_pkg), "--json"])
    data = json.loads(sym.output)
    assert data["definitions"][0]["path"] == "json/encoder.py"
    table = runner.invoke(app, ["symbol", "JSONEncoder", "-C", str(json_pkg)])
    assert "json/encoder.py" in table.output and "References" in table.output


def test_clear_errors(tmp_path, json_pkg):
    missing = runner.invoke(app, ["index", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such directory" in missing.output
    assert runner.invoke(app, ["search", "  ", "-C", str(json_pkg)]).exit_code == 2
    unknown = runner.invoke(app, ["symbol", "NoSuchThingAnywhere", "-C", str(json_pkg)])
    assert unknown.exit_code == 1 and "No symbol named" in unknown.output


def test_corrupt_index_notice_reaches_the_user(json_pkg):
    runner.invoke(app, ["index", str(json_pkg)])
    db = json_pkg / ".tui-agent" / "index.sqlite"
    db.write_bytes(b"garbage" * 1000)
    result = runner.invoke(app, ["index", str(json_pkg)])
    assert result.exit_code == 0
    assert "Notice:" in result.output and "rebuilding" in result.output

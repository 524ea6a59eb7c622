"""The agent's code tools on a real package: what the model reads must be right, compact and stable."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tui_agent.index.tools import CodeTools

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tools(json_pkg):
    t = CodeTools(json_pkg)
    yield t
    t.close()


def test_search_code_points_at_the_matching_line(tools, json_pkg):
    out = tools.search_code("JSONDecodeError Expecting value")
    first = out.split("\n\n")[0]
    head = first.split("\n")[0]
    path, line = head.split(" ")[0].split(":")
    source = (json_pkg / path).read_text().split("\n")
    assert "Expecting value" in source[int(line) - 1]
    assert f"{line} | " in first, "the matching line is shown with its number"
    assert len(out.split("\n\n")) <= 5


def test_search_code_empty_and_no_match(tools):
    assert "empty" in tools.search_code("   ")
    assert tools.search_code("zzqxv_not_here") == "No matches for 'zzqxv_not_here'."
    assert tools.search_code('"unbalanced AND (') != ""  # FTS syntax in the query is not an error


def test_find_symbol_definitions_then_references(tools):
    import json.decoder

    out = tools.find_symbol("JSONDecoder")
    _, line = inspect.getsourcelines(json.decoder.JSONDecoder)
    assert out.startswith("Definitions of JSONDecoder (1):")
    assert f"json/decoder.py:{line}  class JSONDecoder" in out
    assert out.index("Definitions") < out.index("References")
    assert "json/__init__.py:" in out


def test_find_symbol_scoped_and_missing(tools):
    import json.decoder

    out = tools.find_symbol("JSONDecoder.decode")
    _, line = inspect.getsourcelines(json.decoder.JSONDecoder.decode)
    assert f"json/decoder.py:{line}  def decode(self, s, _w=WHITESPACE.match)  [method in JSONDecoder]" in out
    dotted = tools.find_symbol("json.decoder.JSONDecoder.decode")
    assert f"json/decoder.py:{line}" in dotted and "json/encoder.py" not in dotted.split("References")[0]
    module = tools.find_symbol("json.encoder.JSONEncoder")
    assert module.startswith("Definitions of json.encoder.JSONEncoder (1):")
    missing = tools.find_symbol("JSONDecod")
    assert missing.startswith("No symbol named 'JSONDecod'.") and "JSONDecoder" in missing
    assert "empty" in tools.find_symbol("")


def test_find_symbol_in_a_file(tools):
    """Models often name the file as well (find_symbol("decode", "json/decoder.py")): it narrows the definitions."""
    narrowed = tools.find_symbol("__init__", "json/decoder.py").split("References")[0]
    assert "json/decoder.py:" in narrowed and "json/encoder.py:" not in narrowed
    assert "json/encoder.py:" in tools.find_symbol("__init__").split("References")[0]
    assert tools.find_symbol("__init__", "./decoder.py").split("References")[0] == narrowed
    unknown_file = tools.find_symbol("__init__", "nowhere.py").split("References")[0]
    assert "json/encoder.py:" in unknown_file  # no definition there: all of them rather than nothing


def test_repo_map_fits_budget_and_ranks_core_definitions(tools):
    small = tools.repo_map(budget=100)
    big = tools.repo_map(budget=2000)
    assert 0 < len(small) <= 400 < len(big) <= 8000
    assert "json/decoder.py" in big and "json/encoder.py" in big
    assert tools.repo_map(budget=2000) == big


def test_repo_map_follows_focus(tools):
    plain = tools.repo_map(budget=60)
    focused = tools.repo_map(budget=60, focus_files=["json/tool.py"])
    named = tools.repo_map(budget=60, focus_names=["py_encode_basestring"])
    assert "py_encode_basestring" in named
    assert plain != focused or plain != named


def test_tools_see_edits_after_refresh(tools, json_pkg):
    (json_pkg / "json" / "extra.py").write_text("def platypus_helper():\n    return 1\n")
    tools.refresh()
    assert "json/extra.py:1" in tools.find_symbol("platypus_helper")


MAP_SCRIPT = textwrap.dedent(
    """
    import sys
    from tui_agent.index.tools import CodeTools
    print(CodeTools(sys.argv[1]).repo_map(budget=int(sys.argv[2])), end="")
    """
)


def test_repo_map_identical_across_processes_and_hash_seeds(typer_pkg):
    outputs = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", MAP_SCRIPT, str(typer_pkg), "512"],
            capture_output=True, text=True, env=env, timeout=240, check=True,
        )  # fmt: skip
        outputs.append(done.stdout)
    assert outputs[0] and outputs[0] == outputs[1] == outputs[2]
    assert "typer/main.py" in outputs[0]


def test_json_roundtrip_of_tools_output_is_plain_text(tools):
    # observations travel as text; make sure nothing non-serialisable leaks out
    json.dumps([tools.search_code("encode"), tools.find_symbol("dumps"), tools.repo_map(200)])


def test_damaged_pages_are_rebuilt_by_the_tools(json_pkg):
    first = CodeTools(json_pkg)
    db = first.index.db_path
    first.close()
    size = db.stat().st_size
    with open(db, "r+b") as handle:  # keep the header, wreck the pages after it
        handle.seek(4096)
        handle.write(b"\xde\xad\xbe\xef" * ((size - 4096) // 4))
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    tools = CodeTools(json_pkg)
    out = tools.search_code("Expecting value")
    assert out.startswith("json/")
    assert any("rebuilding" in n or "unreadable" in n for n in tools.notices)
    assert "JSONDecoder" in tools.find_symbol("JSONDecoder")
    tools.close()


def test_index_damaged_while_open_is_rebuilt_on_the_next_lookup(json_pkg):
    import sqlite3

    tools = CodeTools(json_pkg)
    other = sqlite3.connect(tools.index.db_path)
    other.execute("DROP TABLE chunks")  # another process wrecks the index under the open tools
    other.close()
    out = tools.search_code("Expecting value")
    assert out.startswith("json/")
    assert any("damaged" in n for n in tools.notices)
    tools.close()


def test_lookups_do_not_wait_for_another_refresh(json_pkg):
    from tui_agent.index.store import IndexBusy, file_lock

    tools = CodeTools(json_pkg, refresh_interval=0)
    with file_lock(tools.index.db_path):  # as if another process were rebuilding right now
        assert tools.search_code("Expecting value").startswith("json/")
        with pytest.raises(IndexBusy):
            tools.index.refresh(wait=0)
    tools.close()


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_a_planted_cache_entry_is_never_unpickled(json_pkg, tmp_path):
    import pickle
    import sqlite3

    from tui_agent.index.store import generation

    tools = CodeTools(json_pkg)
    marker = tmp_path / "marker"
    conn = sqlite3.connect(tools.index.db_path)
    gen = generation(conn)
    conn.execute("INSERT OR REPLACE INTO cache VALUES ('graph', ?, ?)", (gen, pickle.dumps(_Payload(marker))))
    conn.commit()
    conn.close()
    fresh = CodeTools(json_pkg)
    assert "json/" in fresh.repo_map(300)
    assert not marker.exists()
    fresh.close()
    tools.close()

"""The prelude: what the prompt documents is what the kernel defines, and the tools work inside a real kernel."""

from __future__ import annotations

import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tui_agent.tools import prelude
from tui_agent.tools.kernel import Kernel

TOOLS = ["final_answer", "read_file", "search_code", "find_symbol", "repo_map"]


def test_tool_docs_show_signatures_and_docstrings():
    docs = prelude.tool_docs(web=True)
    assert "web_search(query: str, k: int = 5) -> str\n    Search the web" in docs
    assert "visit_page(url: str, max_chars: int = 4000) -> str" in docs
    assert "read_file(path: str, start: int = 1, end: int | None = None) -> str" in docs
    assert "final_answer(answer: Any) -> None\n    Give the final answer" in docs
    for name in TOOLS:
        assert f"\n{name}(" in f"\n{docs}"


def test_private_mode_docs_have_no_web_tools():
    docs = prelude.tool_docs(web=False)
    assert "web_search" not in docs and "visit_page" not in docs
    assert all(f"{name}(" in docs for name in TOOLS)


def test_final_answer_is_not_an_exception():
    assert issubclass(prelude.FinalAnswer, BaseException)
    assert not issubclass(prelude.FinalAnswer, Exception)
    with pytest.raises(prelude.FinalAnswer) as caught:
        prelude.final_answer(3.5)
    assert caught.value.answer == 3.5 and str(caught.value) == "3.5"


def test_code_tools_are_used_when_the_index_exists(tmp_path, monkeypatch):
    calls = []

    class CodeTools:
        def __init__(self, workspace: Path) -> None:
            calls.append(("init", workspace))

        def search_code(self, query: str, k: int = 5) -> str:
            return f"indexed search {query} {k}"

        def find_symbol(self, name: str) -> str:
            raise RuntimeError("index is being rebuilt")

        def repo_map(self, budget: int = 1024) -> str:
            return f"indexed map {budget}"

    module = types.ModuleType("tui_agent.index.tools")
    module.CodeTools = CodeTools
    monkeypatch.setitem(sys.modules, "tui_agent.index.tools", module)
    (tmp_path / "mod.py").write_text("def target():\n    pass\n")
    tools = prelude.make_tools(tmp_path, web=False)
    assert tools["search_code"]("needle", 3) == "indexed search needle 3"
    assert tools["repo_map"](50) == "indexed map 50"
    assert tools["find_symbol"]("target") == "mod.py:1: def target():"  # failing index -> text search
    assert calls == [("init", tmp_path)]


def test_text_search_when_the_index_is_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tui_agent.index.tools", None)  # import fails
    (tmp_path / "mod.py").write_text("def target():\n    return 'needle'\n")
    tools = prelude.make_tools(tmp_path, web=False)
    assert tools["search_code"]("needle") == "mod.py\n  2: return 'needle'"
    assert tools["find_symbol"]("target") == "mod.py:1: def target():"
    assert tools["repo_map"]() == "mod.py: target"


# inside a real kernel -------------------------------------------------------------------------------------------


class Page(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        body = b"<html><body><article><p>The answer to the page question is forty-two.</p></article></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    root = tmp_path_factory.mktemp("prelude")
    workspace = root / "ws"
    workspace.mkdir()
    (workspace / "app.py").write_text("def handler(event):\n    return event['body']\n")
    (root / "outside.txt").write_text("private\n")
    with Kernel(workspace, timeout=20) as k:
        yield k


def test_kernel_defines_the_documented_tools(kernel):
    for name in [*TOOLS, "web_search", "visit_page"]:
        doc = f"__import__('inspect').getdoc({name}).replace(chr(10), chr(10) + '    ')"  # as the prompt indents it
        result = kernel.execute(f"callable({name}), {doc} in {prelude.tool_docs()!r}")
        assert result.result == "(True, True)", name


def test_read_file_inside_the_kernel_is_confined(kernel):
    shown = kernel.execute("print(read_file('app.py', 2))").stdout
    assert shown == "app.py (lines 2-2 of 2)\n2      return event['body']\n"
    refused = kernel.execute("print(read_file('../outside.txt'))")
    assert refused.stdout.startswith("read_file refused:") and "private" not in refused.stdout


def test_code_tools_inside_the_kernel(kernel):
    assert "app.py" in kernel.execute("print(search_code('handler event'))").stdout
    assert "app.py" in kernel.execute("print(find_symbol('handler'))").stdout
    assert "app.py" in kernel.execute("print(repo_map())").stdout


def test_visit_page_inside_the_kernel(kernel):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        result = kernel.execute(f"print(visit_page({url!r}))")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert result.stdout.strip() == "The answer to the page question is forty-two."

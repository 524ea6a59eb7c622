"""Web tools: visit_page against a local HTTP server, web_search through a real DDGS whose network is cut."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from tui_agent.tools import web

ARTICLE = """<!doctype html><html><head><title>Kernel notes</title>
<style>body {{ color: red; }}</style><script>var tracking = 1;</script></head>
<body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<article><h1>How the agent runs code</h1>
{paragraphs}
</article><footer>Copyright footer</footer></body></html>"""
PARAGRAPH = (
    "<p>The agent writes a Python cell, the Jupyter kernel runs it and the printed output becomes the "
    "observation for step {i}. State is kept between cells, so later steps can reuse earlier variables.</p>"
)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/article":
            html = ARTICLE.format(paragraphs="\n".join(PARAGRAPH.format(i=i) for i in range(40)))
            self._send(200, "text/html; charset=utf-8", html.encode())
        elif self.path == "/plain":
            self._send(200, "text/plain; charset=utf-8", b"just text, no markup\n")
        elif self.path == "/binary":
            self._send(200, "application/octet-stream", bytes(range(256)) * 4)
        elif self.path == "/slow":
            time.sleep(3)
            self._send(200, "text/html", b"<p>too late</p>")
        else:
            self._send(404, "text/html", b"<h1>Not Found</h1>")


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_visit_page_returns_readable_text(server):
    text = web.visit_page(f"{server}/article", max_chars=20_000)
    assert "the Jupyter kernel runs it" in text and "step 39" in text
    assert "<p>" not in text and "tracking" not in text and "color: red" not in text


def test_visit_page_is_length_limited(server):
    text = web.visit_page(f"{server}/article", max_chars=500)
    assert text.startswith("How the agent runs code") or "the Jupyter kernel" in text[:600]
    body, _, note = text.partition("\n[... ")
    assert len(body) == 500 and "more chars" in note


def test_visit_page_plain_text(server):
    assert web.visit_page(f"{server}/plain") == "just text, no markup\n"


def test_visit_page_404(server):
    assert web.visit_page(f"{server}/missing") == f"visit_page failed: HTTP 404 Not Found for {server}/missing"


def test_visit_page_non_html_is_refused(server):
    text = web.visit_page(f"{server}/binary")
    assert "application/octet-stream" in text and "not a text page" in text


def test_visit_page_timeout(server):
    assert web.visit_page(f"{server}/slow", timeout=0.5).startswith("visit_page timed out after")


def test_visit_page_unreachable_and_bad_url(server):
    closed = server.rsplit(":", 1)[0] + ":9"  # discard port: nothing listens there
    assert "cannot reach" in web.visit_page(f"{closed}/x")
    assert web.visit_page("file:///etc/passwd").startswith("visit_page needs an http:// or https:// URL")


def test_html_to_text_falls_back_to_markdownify(monkeypatch):
    import trafilatura

    monkeypatch.setattr(trafilatura, "extract", lambda *a, **k: None)
    text = web.html_to_text("<html><body><h2>Title</h2><p>Some <b>bold</b> words</p></body></html>")
    assert "Title" in text and "**bold**" in text and "<p>" not in text


# web_search: a real DDGS object; only its HTTP layer is replaced ----------------------------------------------

MOJEEK_HTML = """<html><body><ul class="results-standard">{items}</ul></body></html>"""
MOJEEK_ITEM = (
    '<li><h2><a href="https://example.org/{i}">Python  kernel guide {i}</a></h2>'
    '<p class="s">How to run a Python kernel, part {i}.</p></li>'
)


def _respond(status: int, text: str = ""):
    return SimpleNamespace(status_code=status, text=text, content=text.encode())


def test_web_search_formats_results(monkeypatch):
    from ddgs.http_client import HttpClient

    def request(self, method, url, *args, **kwargs):
        if "mojeek" in url:
            items = "".join(MOJEEK_ITEM.format(i=i) for i in range(1, 4))
            return _respond(200, MOJEEK_HTML.format(items=items))
        return _respond(503)

    monkeypatch.setattr(HttpClient, "request", request)
    text = web.web_search("python kernel", k=2)
    lines = text.splitlines()
    assert len(lines) == 6
    assert lines[0].startswith("1. Python kernel guide ") and lines[3].startswith("2. Python kernel guide ")
    assert lines[1].strip().startswith("https://example.org/")
    assert lines[2].strip().startswith("How to run a Python kernel, part")


def test_web_search_offline(monkeypatch):
    import primp

    def no_network(self, *args, **kwargs):
        raise OSError("DNSError: error resolving DNS: no records found")

    monkeypatch.setattr(primp.Client, "request", no_network)
    assert web.web_search("anything") == "web_search failed: no internet connection (offline). Answer without the web."


def test_web_search_rate_limited(monkeypatch):
    from ddgs.http_client import HttpClient

    monkeypatch.setattr(HttpClient, "request", lambda self, *a, **k: _respond(429))
    text = web.web_search("popular query")
    assert text.startswith("No results for 'popular query'") and "rate limiting" in text


def test_web_search_rate_limit_exception(monkeypatch):
    import ddgs
    from ddgs.exceptions import RatelimitException

    def limited(self, *args, **kwargs):
        raise RatelimitException("202 Ratelimit")

    monkeypatch.setattr(ddgs.DDGS, "text", limited)
    assert "rate limited" in web.web_search("q")


def test_web_search_engine_timeout(monkeypatch):
    import primp

    def slow(self, *args, **kwargs):
        raise primp.TimeoutError("operation timed out")

    monkeypatch.setattr(primp.Client, "request", slow)
    assert web.web_search("q").startswith("web_search timed out for 'q'")


def test_web_search_is_bounded_in_time(monkeypatch):
    from ddgs.http_client import HttpClient

    release = threading.Event()

    def hang(self, *args, **kwargs):
        release.wait(30)
        return _respond(503)

    monkeypatch.setattr(HttpClient, "request", hang)
    try:
        assert web.web_search("q", timeout=0.5).startswith("web_search timed out after")
    finally:
        release.set()


def test_web_search_needs_a_query():
    assert web.web_search("  ") == "web_search needs a non-empty query."

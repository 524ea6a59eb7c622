"""Web tools for the kernel prelude: a search through ddgs and a page reader.

Both return strings, never raise: the model reads whatever comes back as an observation, so a failure has to be
a sentence it can act on (try another query, answer from what it has). Both are bounded in time, because a cell
that hangs on the network would stall the whole agent.
"""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from typing import Any

SEARCH_TIMEOUT = 10.0
PAGE_TIMEOUT = 10.0
MAX_DOWNLOAD = 5_000_000
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) tui-agent/0.1"


def _run_bounded(fn, timeout: float) -> tuple[bool, Any, BaseException | None]:
    """Run fn in a daemon thread; (finished, value, error). A stuck network call cannot outlive `timeout`."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller as a string
            box["error"] = exc

    thread = threading.Thread(target=target, name="tui-agent-web", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return False, None, None
    return True, box.get("value"), box.get("error")


def format_results(query: str, results: list[dict]) -> str:
    """Numbered results: title, url and snippet, the shape the prompt's examples use."""
    if not results:
        return f"No results for {query!r}. Try different or fewer keywords."
    lines = []
    for i, item in enumerate(results, 1):
        title = " ".join(str(item.get("title") or "(no title)").split())
        url = item.get("href") or item.get("url") or ""
        body = " ".join(str(item.get("body") or item.get("snippet") or "").split())
        lines.append(f"{i}. {title}\n   {url}\n   {body}".rstrip())
    return "\n".join(lines)


def web_search(query: str, k: int = 5, *, timeout: float = SEARCH_TIMEOUT) -> str:
    """Search the web; returns up to k numbered results (title, url, snippet) or a message saying why not."""
    query = (query or "").strip()
    if not query:
        return "web_search needs a non-empty query."
    k = max(1, min(int(k), 20))
    try:
        from ddgs import DDGS
        from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException
    except ImportError:
        return "web_search is unavailable: the ddgs package is not installed."

    def search() -> list[dict]:
        return DDGS(timeout=max(1, int(timeout))).text(query, max_results=k)

    finished, results, error = _run_bounded(search, timeout + 2.0)
    if not finished:
        return f"web_search timed out after {timeout:.0f} s for {query!r}; the network may be slow. Try again later."
    if error is None:
        return format_results(query, list(results or [])[:k])
    if isinstance(error, RatelimitException):
        return "web_search was rate limited by the search engines; wait a little or answer from what you know."
    if isinstance(error, TimeoutException):
        return f"web_search timed out for {query!r}; the network may be slow. Try again or use what you know."
    if isinstance(error, DDGSException):
        text = str(error)
        if re.search(r"DNS|resolv|connect|network|unreachable", text, re.IGNORECASE):
            return "web_search failed: no internet connection (offline). Answer without the web."
        # "No results found." or an engine choking on an empty/blocked page: both mean nothing usable came back.
        return (
            f"No results for {query!r} (the search engines returned nothing usable; they may be rate limiting). "
            "Try different keywords, or answer without the web."
        )
    return f"web_search failed: {type(error).__name__}: {str(error)[:200]}"


def html_to_text(html: str, url: str | None = None) -> str:
    """Readable text of an HTML page: trafilatura's main content, else markdownify, else stripped tags."""
    try:
        import trafilatura

        text = trafilatura.extract(html, url=url, include_links=False, include_tables=True, favor_recall=True)
        if text and text.strip():
            return text.strip()
    except Exception:  # noqa: BLE001 - any extractor failure falls through to a simpler one
        pass
    try:
        from markdownify import markdownify

        text = markdownify(html, strip=["script", "style"])
    except Exception:  # noqa: BLE001
        text = re.sub(r"(?is)<(script|style).*?</\1>", " ", html)
        text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def _limit(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + f"\n[... {len(text) - max_chars} more chars; call visit_page(url, max_chars=...) ...]"


def visit_page(url: str, max_chars: int = 4000, *, timeout: float = PAGE_TIMEOUT) -> str:
    """Fetch a web page and return its readable text (at most max_chars), or a message saying why not."""
    url = (url or "").strip()
    if not re.match(r"^https?://", url, re.IGNORECASE):
        return f"visit_page needs an http:// or https:// URL, not {url!r}."

    def fetch() -> tuple[str, str, bytes]:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "text/html,*/*"})
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            kind = response.headers.get_content_type()
            charset = response.headers.get_content_charset() or "utf-8"
            return kind, charset, response.read(MAX_DOWNLOAD)

    finished, value, error = _run_bounded(fetch, timeout + 2.0)
    if not finished or isinstance(error, TimeoutError) or "timed out" in str(error or ""):
        return f"visit_page timed out after {timeout:.0f} s: {url}"
    if isinstance(error, urllib.error.HTTPError):
        return f"visit_page failed: HTTP {error.code} {error.reason} for {url}"
    if isinstance(error, urllib.error.URLError):
        return f"visit_page failed: cannot reach {url} ({error.reason}); the machine may be offline."
    if error is not None:
        return f"visit_page failed: {type(error).__name__}: {str(error)[:200]} ({url})"
    kind, charset, body = value
    try:
        text = body.decode(charset, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    if kind in ("text/html", "application/xhtml+xml"):
        text = html_to_text(text, url)
    elif not (kind.startswith("text/") or kind in ("application/json", "application/xml")):
        return f"visit_page: {url} is {kind}, not a text page ({len(body)} bytes); it cannot be shown as text."
    if not text.strip():
        return f"visit_page: {url} has no readable text."
    return _limit(text, max(100, int(max_chars)))

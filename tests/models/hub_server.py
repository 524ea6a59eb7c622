"""A small HTTP server on 127.0.0.1 that speaks the Hugging Face Hub's file protocol, for tests.

It serves real files at ``/{repo}/resolve/{revision}/{filename}`` (HEAD and GET) with the headers huggingface_hub
reads (``X-Repo-Commit``, ``ETag``/``X-Linked-Etag``, ``X-Linked-Size``, ``Content-Length``, ``Accept-Ranges``),
honours ``Range: bytes=N-`` with 206 answers, and answers unknown repos and files the way the hub does
(404 with ``X-Error-Code: RepoNotFound`` / ``EntryNotFound``). Every file is served at ``main`` (= ``COMMIT``);
``revisions[name] = commit`` serves them at more revisions, as the same content in other commits.
Faults can be injected per file:

- ``cut_after[filename] = n``: the next GET sends the full Content-Length header but closes after ``n`` bytes
  (a dropped connection; huggingface_hub resumes with a Range request);
- ``corrupt_at[filename] = offset``: the byte at ``offset`` is flipped in every GET (a file that fails sha256);
- ``throttle = seconds``: a pause after each MiB sent (a slow link, so a download can be interrupted).

Usage::

    with HubServer({"Qwen/Repo-GGUF": {"model.gguf": path}}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)$")
_CHUNK = 1 << 20


class HubServer:
    """Serve ``files`` (repo -> filename -> local path) over the hub's resolve protocol on a free local port."""

    def __init__(self, files: dict[str, dict[str, Path]], etags: dict[str, str] | None = None):
        self.files = {repo: {name: Path(path) for name, path in entries.items()} for repo, entries in files.items()}
        self.etags = dict(etags or {})
        self.cut_after: dict[str, int] = {}
        self.corrupt_at: dict[str, int] = {}
        self.throttle = 0.0  # seconds to sleep after each MiB sent (a slow link, so a download can be interrupted)
        self.revisions = {"main": COMMIT, COMMIT: COMMIT}  # revision -> commit; add commits to serve more revisions
        self.requests: list[tuple[str, str, str | None]] = []  # (method, filename, Range header)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def etag(self, filename: str, path: Path) -> str:
        """The file's sha256, as the hub uses for LFS files (computed once unless given)."""
        with self._lock:
            if filename not in self.etags:
                digest = hashlib.sha256()
                with open(path, "rb") as handle:
                    while block := handle.read(_CHUNK):
                        digest.update(block)
                self.etags[filename] = digest.hexdigest()
            return self.etags[filename]

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _error(self, status: int, code: str) -> None:
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _serve(self, body: bool) -> None:
                match = _RESOLVE.match(unquote(self.path.split("?")[0]))
                filename = match["filename"] if match else self.path
                hub.requests.append((self.command, filename, self.headers.get("Range")))
                if not match:
                    return self._error(404, "RepoNotFound")
                repo = hub.files.get(match["repo"])
                if repo is None:
                    return self._error(404, "RepoNotFound")
                commit = hub.revisions.get(match["revision"])
                if commit is None:
                    return self._error(404, "RevisionNotFound")
                path = repo.get(filename)
                if path is None:
                    return self._error(404, "EntryNotFound")
                total = path.stat().st_size
                etag = hub.etag(filename, path)
                start, end = 0, total - 1
                ranged = self.headers.get("Range")
                if ranged:
                    found = re.match(r"bytes=(\d+)-(\d*)", ranged)
                    if not found or int(found[1]) >= total:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{total}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    start = int(found[1])
                    end = min(int(found[2]), total - 1) if found[2] else total - 1
                self.send_response(206 if ranged else 200)
                self.send_header("X-Repo-Commit", commit)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("X-Linked-Size", str(total))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(end - start + 1))
                if ranged:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
                self.end_headers()
                if body:
                    self._send_body(filename, path, start, end)

            def _send_body(self, filename: str, path: Path, start: int, end: int) -> None:
                with hub._lock:
                    cut = hub.cut_after.pop(filename, None)
                corrupt = hub.corrupt_at.get(filename)
                sent, position = 0, start
                with open(path, "rb") as handle:
                    handle.seek(start)
                    while position <= end:
                        block = bytearray(handle.read(min(_CHUNK, end - position + 1)))
                        if not block:
                            break
                        if corrupt is not None and position <= corrupt < position + len(block):
                            block[corrupt - position] ^= 0xFF
                        if cut is not None and sent + len(block) >= cut:
                            self.wfile.write(block[: cut - sent])
                            self.wfile.flush()
                            self.close_connection = True
                            self.connection.shutdown(2)
                            return
                        try:
                            self.wfile.write(block)
                        except (BrokenPipeError, ConnectionResetError):  # the client went away
                            return
                        sent += len(block)
                        position += len(block)
                        if hub.throttle:
                            time.sleep(hub.throttle)

        return Handler

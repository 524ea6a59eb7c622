"""Private mode on a real kernel: a cell cannot reach a real HTTP server on 127.0.0.1, by either mechanism."""

from __future__ import annotations

import http.server
import sys
import threading

import pytest

from tui_agent.tools import sandbox
from tui_agent.tools.kernel import Kernel

linux_namespaces = pytest.mark.skipif(
    not sandbox.namespaces_available(), reason="this system does not allow unprivileged user namespaces"
)


@pytest.fixture(scope="module")
def server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"reached the server")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


FETCH = "import urllib.request\nprint(urllib.request.urlopen({url!r}, timeout=5).read().decode())"


def fetch(kernel: Kernel, url: str):
    return kernel.execute(FETCH.format(url=url))


def test_with_web_a_cell_reaches_the_server(tmp_path, server):
    with Kernel(tmp_path, web=True, memory_limit_mb=None) as kernel:
        assert kernel.isolation == sandbox.OFF
        result = fetch(kernel, server)
        assert result.ok and result.stdout == "reached the server\n"


@linux_namespaces
def test_private_kernel_in_a_network_namespace_cannot_reach_the_server(tmp_path, server):
    with Kernel(tmp_path, web=False, memory_limit_mb=None) as kernel:
        assert kernel.isolation == sandbox.NAMESPACE
        result = fetch(kernel, server)
        assert not result.ok and "Network is unreachable" in result.error
        # programs run, but share the kernel's lack of network; files work as usual
        shell = kernel.execute(
            f"import subprocess, sys\nopen('made.txt', 'w').write('ok')\n"
            f"subprocess.run([sys.executable, '-c', {FETCH.format(url=server)!r}]).returncode"
        )
        assert shell.ok and shell.result == "1" and (tmp_path / "made.txt").read_text() == "ok"
        trial = kernel.try_execute(FETCH.format(url=server))
        assert not trial.ok


def test_private_kernel_without_namespaces_is_held_by_the_audit_hook(tmp_path, server, monkeypatch):
    monkeypatch.setenv("TUI_AGENT_NO_NAMESPACES", "1")
    with Kernel(tmp_path, web=False, memory_limit_mb=None) as kernel:
        assert kernel.isolation == sandbox.AUDIT_HOOK
        result = fetch(kernel, server)
        assert not result.ok and "private mode: no network access" in result.error
        lookup = kernel.execute("import socket\nsocket.getaddrinfo('localhost', 80)")
        assert "NetworkRefused" in lookup.error
        program = kernel.execute(f"import subprocess\nsubprocess.run([{sys.executable!r}, '-c', 'pass'])")
        assert "programs cannot be started" in program.error
        spawn = kernel.execute(
            "import multiprocessing\nmultiprocessing.get_context('spawn').Process(target=print).start()"
        )
        assert "programs cannot be started" in spawn.error
        local = kernel.execute("import socket\na, b = socket.socketpair()\na.send(b'x')\nb.recv(1)")
        assert local.ok and local.result == "b'x'"
        assert kernel.execute("open('f.txt', 'w').write('kept')").ok and (tmp_path / "f.txt").exists()


def test_secrets_stay_out_of_the_kernel_unless_asked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    monkeypatch.setenv("MY_SERVICE_PASSWORD", "hunter2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    names = "' '.join(sorted(n for n in os.environ if n in {'OPENAI_API_KEY','HF_TOKEN','MY_SERVICE_PASSWORD',"
    names += "'AWS_ACCESS_KEY_ID','HF_HOME'}))"
    with Kernel(tmp_path, memory_limit_mb=None) as kernel:
        assert kernel.execute(f"import os\n{names}").result == "'HF_HOME'"
    with Kernel(tmp_path, memory_limit_mb=None, secrets=True) as kernel:
        shown = kernel.execute(f"import os\n{names}").result
        assert shown == "'AWS_ACCESS_KEY_ID HF_HOME HF_TOKEN MY_SERVICE_PASSWORD OPENAI_API_KEY'"


def test_secret_names():
    secret = [
        "GITHUB_TOKEN",
        "OPENAI_API_KEY",
        "ANTHROPIC_BASE_URL",
        "DB_PASSWORD",
        "STRIPE_SECRET_KEY",
        "SSH_AUTH_SOCK",
    ]
    plain = ["PATH", "HOME", "HF_HOME", "HF_ENDPOINT", "KEYBOARD_LAYOUT", "PYTHONHASHSEED", "TOKENIZERS_PARALLELISM"]
    assert all(sandbox.is_secret(n) for n in secret)
    assert not any(sandbox.is_secret(n) for n in plain)

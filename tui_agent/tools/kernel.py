"""The session's Python kernel: a real ipykernel driven through jupyter_client.

One kernel per session, started in the workspace, keeping state across cells. Every way a cell can go wrong
ends in a CellResult rather than a hang or an exception in the app: a wall-clock timeout interrupts the kernel
and restarts it if it does not answer; a kernel that dies (os._exit, segfault, killed for memory) is restarted
with its prelude and the result says that the state is gone; input() fails with a clear message.
"""

from __future__ import annotations

import base64
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tui_agent.tools.cell import CELL_FILE_RE, BoundedText, CellResult, plain_text, strip_ansi, tidy_traceback
from tui_agent.tools.edits import EDIT_MIME, POLICIES
from tui_agent.tools.prelude import FINAL_MIME, POLICY_HELPER, TRY_HELPER, TRY_MIME, FinalAnswer
from tui_agent.tools.shadowing import NOTICE_MIME

POLL_S = 0.1
INTERRUPT_GRACE_S = 5.0
START_TIMEOUT_S = 60.0
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}
TRACEBACK_LINES = 14
INPUT_MESSAGE = (
    "input() is not available: the code runs without anyone at the keyboard. "
    "Compute or hard-code the values you need instead."
)


class KernelError(RuntimeError):
    """The kernel could not be started at all (missing ipykernel, broken environment)."""


def _exit_description(code: int | None) -> str:
    if code is None:
        return "stopped responding"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == signal.SIGKILL:
            return f"was killed ({name}), most likely for using too much memory"
        if -code == signal.SIGSEGV:
            return f"crashed with a segmentation fault ({name})"
        return f"was terminated by {name}"
    return f"exited with code {code}"


class Kernel:
    """A Jupyter kernel for one agent session; the prelude's tools are defined in it."""

    def __init__(
        self,
        workspace: Path,
        *,
        web: bool = True,
        timeout: float = 60.0,
        memory_limit_mb: int | None = 4096,
        outputs_dir: Path | None = None,
        python: str | None = None,
        secrets: bool = False,
    ) -> None:
        self.workspace = Path(workspace).resolve()
        self.web = web
        self.secrets = secrets  # False: API keys and tokens are kept out of the kernel's environment
        self.isolation = "off"  # what keeps a private kernel off the network: see tools/sandbox.py
        self.timeout = timeout
        self.memory_limit_mb = memory_limit_mb
        self.outputs_dir = Path(outputs_dir) if outputs_dir else self.workspace / ".tui-agent" / "outputs"
        self.python = python or sys.executable  # the kernel runs in tui-agent's own environment by default
        self._km: Any = None
        self._kc: Any = None
        self._tmp: str | None = None
        self._lock = threading.RLock()  # one cell, start or restart at a time
        self._interrupt_requested = threading.Event()
        self._cell_count = 0
        self._image_count = 0
        self._log_file: Any = None
        self._pending_notice: str | None = None
        self._pending_restart = False
        self.edit_policy = "apply"  # what write_file/edit_file do: apply, stage (ask first) or refuse

    # lifecycle -------------------------------------------------------------------------------------------------
    def __enter__(self) -> Kernel:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def _process(self) -> Any:
        """The kernel's Popen, read directly: cheap and safe from any thread (no asyncio machinery)."""
        km = self._km
        provisioner = getattr(km, "provisioner", None) if km is not None else None
        return getattr(provisioner, "process", None)

    @property
    def alive(self) -> bool:
        """True while the kernel process is running."""
        process = self._process()
        return process is not None and process.poll() is None

    def start(self) -> None:
        """Start the kernel and load the prelude; does nothing if it is already running."""
        with self._lock:
            if self.alive:
                return
            if self._km is not None:
                self._stop()
            self._start()

    def _kernel_env(self) -> dict[str, str]:
        from tui_agent.tools.sandbox import scrub_env

        env = dict(os.environ) if self.secrets else scrub_env(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        if package_root not in paths:
            paths.append(package_root)  # the prelude imports tui_agent even when it is not installed
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures come back as images, no windows
        env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
        return env

    def _start(self) -> None:
        try:
            from jupyter_client.kernelspec import KernelSpec
            from jupyter_client.manager import KernelManager
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise KernelError(f"jupyter_client is not installed: {exc}") from exc
        if self.workspace.exists() and not self.workspace.is_dir():
            raise KernelError(f"the workspace {self.workspace} is not a directory")
        self.workspace.mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.mkdtemp(prefix="tui-k-")
        ipc = sys.platform != "win32"
        km = KernelManager(
            transport="ipc" if ipc else "tcp",
            ip=os.path.join(self._tmp, "k") if ipc else "127.0.0.1",
            connection_file=os.path.join(self._tmp, "kernel.json"),
        )
        km._kernel_spec = KernelSpec(
            argv=[
                self.python, "-m", "ipykernel_launcher" if self.web else "tui_agent.tools.kernel_launcher",
                "-f", "{connection_file}",
                "--HistoryManager.enabled=False", "--InteractiveShell.colors=nocolor",
                "--IPKernelApp.quiet=True",
            ],
            display_name="tui-agent", language="python", env={},
        )  # fmt: skip
        self._log_file = open(os.path.join(self._tmp, "kernel.log"), "wb")  # noqa: SIM115 - closed in _stop
        try:
            km.start_kernel(
                cwd=str(self.workspace), env=self._kernel_env(), stdout=self._log_file, stderr=self._log_file
            )
            kc = km.blocking_client()
            kc.start_channels()
            kc.wait_for_ready(timeout=START_TIMEOUT_S)
        except Exception as exc:
            self._km = km
            self._stop()
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise KernelError(f"the Python kernel did not start ({self.python}): {reason}") from exc
        self._km, self._kc = km, kc
        self._load_prelude()

    def _load_prelude(self) -> None:
        code = (
            "from tui_agent.tools.prelude import install as _tui_agent_install\n"
            f"_tui_agent_install(get_ipython(), {str(self.workspace)!r}, web={self.web!r}, "
            f"memory_limit_mb={self.memory_limit_mb!r}, edit_policy={self.edit_policy!r})\n"
            "del _tui_agent_install\n"
            "__import__('tui_agent.tools.sandbox').tools.sandbox.STATE\n"
        )
        result = self._run(code, timeout=START_TIMEOUT_S, store_history=False, prelude=True)
        if result.error or result.timed_out:
            raise KernelError(f"the kernel prelude failed: {result.error or 'timed out'}")
        self.isolation = (result.result or "'off'").strip("'\"")
        if result.stdout.strip():
            self._pending_notice = result.stdout.strip()  # e.g. a memory limit that could not be applied

    def set_edit_policy(self, policy: str) -> None:
        """How the file tools treat changes from the next cell on (see ``tools.edits``); kept across restarts."""
        if policy not in POLICIES:
            raise ValueError(f"unknown edit policy {policy!r}")
        with self._lock:
            if policy == self.edit_policy:
                return
            self.edit_policy = policy
            if self.alive:
                result = self._run(f"{POLICY_HELPER}({policy!r})", timeout=START_TIMEOUT_S, store_history=False)
                if result.error or result.timed_out:
                    raise KernelError(f"could not set the edit policy: {result.error or 'timed out'}")

    def _stop(self) -> None:
        kc, km = self._kc, self._km
        self._kc = self._km = None
        if kc is not None:
            try:
                kc.stop_channels()
            except Exception:  # noqa: BLE001, S110 - tearing down whatever is left
                pass
        if km is not None:
            try:
                km.shutdown_kernel(now=True)
            except Exception:  # noqa: BLE001
                try:
                    km.provisioner and km.provisioner.process and km.provisioner.process.kill()
                except Exception:  # noqa: BLE001, S110
                    pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def restart(self) -> None:
        """A fresh kernel with the prelude loaded; every variable and import is lost."""
        with self._lock:
            self._stop()
            self._start()

    def shutdown(self) -> None:
        """Stop the kernel and remove its connection files."""
        self._interrupt_requested.set()
        with self._lock:
            self._stop()
        self._interrupt_requested.clear()

    def interrupt(self) -> None:
        """Interrupt the running cell (safe to call from another thread, e.g. on Ctrl-C)."""
        self._interrupt_requested.set()  # the running cell's loop sends the signal within POLL_S
        if self._lock.acquire(blocking=False):  # nothing is running: nothing to interrupt
            self._lock.release()
            self._interrupt_requested.clear()

    # execution -------------------------------------------------------------------------------------------------
    def _ensure_started(self) -> None:
        """Start the kernel; if it died between cells, restart it and tell the next result that state was lost."""
        process = self._process()
        if process is not None and process.poll() is not None:
            what = _exit_description(process.poll())
            self._pending_notice = (
                f"The Python kernel {what} since the last cell. It was restarted: all variables, imports and "
                "definitions are lost."
            )
            self._pending_restart = True
        self.start()

    def execute(self, code: str, *, timeout: float | None = None) -> CellResult:
        """Run a cell in the session's kernel; errors, timeouts and crashes come back in the CellResult."""
        with self._lock:
            self._ensure_started()
            self._interrupt_requested.clear()
            result = self._run(code, timeout=self.timeout if timeout is None else timeout)
            if self._pending_notice:  # told once, on the next real cell (trial runs are not shown to the user)
                result.notice = "; ".join(filter(None, [result.notice, self._pending_notice]))
                result.restarted = result.restarted or self._pending_restart
                self._pending_notice, self._pending_restart = None, False
            return result

    def try_execute(self, code: str, *, timeout: float | None = None) -> CellResult:
        """Run a cell in a throwaway fork of the kernel's state; the session sees no side effects."""
        limit = self.timeout if timeout is None else timeout
        with self._lock:
            self._ensure_started()
            self._interrupt_requested.clear()
            outer = self._run(f"{TRY_HELPER}({code!r}, {limit!r})", timeout=limit + 15, store_history=False)
        payload = outer.__dict__.pop("_try_payload", None)
        if payload is None:
            if outer.ok and not outer.error:
                outer.error = "the candidate produced no result"
            return outer
        result = CellResult(
            stdout=payload.get("stdout") or "",
            stderr=payload.get("stderr") or "",
            result=payload.get("result"),
            error=payload.get("error"),
            final_answer=payload.get("final_answer"),
            timed_out=bool(payload.get("timed_out")),
        )
        shown = BoundedText()
        for record in payload.get("displays") or []:
            self._display(record.get("data") or {}, result, shown)
        result.stdout += shown.value()
        if result.timed_out:
            result.notice = f"The cell ran longer than {limit:g} s and was stopped."
        if "StdinNotImplementedError" in (result.error or "").split(":", 1)[0]:
            result.error = INPUT_MESSAGE
        return result

    def _save_image(self, mime: str, data: str) -> str | None:
        try:
            self.outputs_dir.mkdir(parents=True, exist_ok=True)
            marker = self.outputs_dir.parent / ".gitignore"
            if self.outputs_dir.parent.name == ".tui-agent" and not marker.exists():
                marker.write_text("*\n")
            self._image_count += 1
            path = self.outputs_dir / f"cell{self._cell_count}-{self._image_count}.{IMAGE_TYPES[mime]}"
            if mime == "image/svg+xml":
                path.write_text(data if isinstance(data, str) else "".join(data), encoding="utf-8")
            else:
                path.write_bytes(base64.b64decode(data))
        except (OSError, ValueError):
            return None
        return str(path)

    def _display(self, data: dict, result: CellResult, extra: BoundedText) -> None:
        """Turn display_data into the result: final answer, saved images, or text."""
        if FINAL_MIME in data:
            result.final_answer = str((data[FINAL_MIME] or {}).get("answer", ""))
            return
        if TRY_MIME in data:
            result.__dict__["_try_payload"] = data[TRY_MIME]
            return
        if EDIT_MIME in data:
            result.changes.append(dict(data[EDIT_MIME] or {}))
            return
        if NOTICE_MIME in data:
            text = str((data[NOTICE_MIME] or {}).get("text", ""))
            result.notice = "; ".join(filter(None, [result.notice, text]))
            return
        for mime in IMAGE_TYPES:
            if mime in data:
                path = self._save_image(mime, data[mime])
                if path:
                    result.images.append(path)
                return
        text = plain_text(data)
        if text:
            extra.add(text + "\n")

    def _error_text(self, content: dict) -> str:
        name, value = content.get("ename", "Error"), content.get("evalue", "")
        if name == "StdinNotImplementedError":
            return INPUT_MESSAGE
        lines = strip_ansi("\n".join(content.get("traceback") or [])).splitlines()
        lines = tidy_traceback([line for line in lines if line.strip() and not set(line.strip()) <= {"-"}])
        head = CELL_FILE_RE.sub("<cell>", f"{name}: {value}" if value else name)
        body = [line for line in lines[-TRACEBACK_LINES:] if line.strip() != head]
        if name == "MemoryError" and self.memory_limit_mb:
            head += f" (the kernel's memory limit is {self.memory_limit_mb} MB)"
        return head + ("\n" + "\n".join(body) if body else "")

    def _run(self, code: str, *, timeout: float, store_history: bool = True, prelude: bool = False) -> CellResult:
        """Send one execute request and collect its outputs until the kernel is idle, dies or times out."""
        kc, km = self._kc, self._km
        result = CellResult()
        stdout, stderr, extra = BoundedText(), BoundedText(), BoundedText()
        if store_history:
            self._cell_count += 1
        msg_id = kc.execute(code, store_history=store_history, allow_stdin=False, stop_on_error=False)
        start = time.monotonic()
        deadline = start + timeout
        interrupted_at: float | None = None
        user_interrupt = False
        died: int | None | bool = False
        while True:
            if self._interrupt_requested.is_set() and interrupted_at is None:
                user_interrupt = True
                interrupted_at = time.monotonic()
                self._send_interrupt(km)
            try:
                msg = kc.get_iopub_msg(timeout=POLL_S)
            except queue.Empty:
                now = time.monotonic()
                process = self._process()
                if process is None or process.poll() is not None:
                    died = process.poll() if process is not None else None
                    break
                if interrupted_at is None and now > deadline:
                    result.timed_out = True
                    interrupted_at = now
                    self._send_interrupt(km)
                elif interrupted_at is not None and now - interrupted_at > INTERRUPT_GRACE_S:
                    died = None
                    break
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue  # output of an earlier, abandoned request: not ours
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                break
            if kind == "stream":
                (stderr if content.get("name") == "stderr" else stdout).add(content.get("text", ""))
            elif kind == "execute_result":
                data = content.get("data", {})
                if any(m in data for m in IMAGE_TYPES):
                    self._display(data, result, extra)
                else:
                    result.result = plain_text(data)
            elif kind in ("display_data", "update_display_data"):
                self._display(content.get("data", {}), result, extra)
            elif kind == "error":
                if content.get("ename") == FinalAnswer.__name__:
                    continue
                result.error = self._error_text(content)
            elif kind == "clear_output":
                stdout, extra = BoundedText(), BoundedText()
        self._drain_shell(msg_id)
        result.stdout = stdout.value() + extra.value()
        result.stderr = stderr.value()
        if user_interrupt and died is False:
            result.notice = "Interrupted by the user; the kernel state is kept."
        elif result.timed_out and died is False:
            result.notice = f"The cell ran longer than {timeout:g} s and was interrupted; the kernel state is kept."
        if died is not False:
            self._recover(result, died, timeout, user_interrupt, prelude)
        return result

    def _send_interrupt(self, km: Any) -> None:
        """SIGINT to the kernel's process group (its forked trial runs included); Windows goes through km."""
        process = self._process()
        try:
            if process is not None and hasattr(os, "killpg"):
                try:
                    os.killpg(os.getpgid(process.pid), signal.SIGINT)
                except OSError:
                    process.send_signal(signal.SIGINT)
            elif km is not None:
                km.interrupt_kernel()
        except Exception:  # noqa: BLE001, S110 - a kernel that is gone is detected by the running cell
            pass

    def _drain_shell(self, msg_id: str) -> None:
        """Consume the execute_reply so the shell channel does not pile up replies."""
        kc = self._kc
        if kc is None:
            return
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                reply = kc.get_shell_msg(timeout=0.2)
            except queue.Empty:
                return
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return

    def _recover(self, result: CellResult, died: int | None, timeout: float, user: bool, prelude: bool) -> None:
        """The kernel died or stopped answering: restart it and say so in the result."""
        if died is None and not self.alive:
            what = "The Python kernel stopped"
        elif died is None:
            cause = "an interrupt" if user else f"an interrupt after {timeout:g} s"
            what = f"The Python kernel did not respond to {cause}"
            result.timed_out = result.timed_out or not user
        else:
            what = f"The Python kernel {_exit_description(died)} while running this cell"
        if prelude:
            result.error = result.error or what
            return
        try:
            self._stop()
            self._start()
        except KernelError as exc:
            result.notice = f"{what}; restarting it failed: {exc}"
            result.error = result.error or "KernelDied"
            return
        result.restarted = True
        result.notice = f"{what}. It was restarted: all variables, imports and definitions are lost."
        if result.error is None and not result.timed_out:
            result.error = "KernelDied"

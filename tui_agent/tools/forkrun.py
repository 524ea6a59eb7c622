"""Run a cell in a forked copy of the kernel process, so it leaves no trace in the session (used by SAG).

Runs inside the kernel. The child gets a copy-on-write snapshot of every variable, runs the code with its
output captured in memory and in a temp file (for C-level writes), sends a JSON result back over a pipe and
leaves with ``os._exit`` (no atexit hooks, no ZeroMQ teardown). The parent only waits, with a deadline after
which the child is killed, so a candidate that loops, crashes or segfaults costs nothing but its own process.
Where Linux allows it, the child first moves into its own user, mount and network namespaces and sees the
workspace through an overlayfs whose changes live in a private tmpfs: what it does there vanishes with it, C code
and all, and it has no network. Everything else it does to files (outside the workspace, through a symlink that
leads out of it, through a file opened before the fork) is journaled and undone by the parent (see ``fsjournal``),
which is also all there is where namespaces are not available.
"""

from __future__ import annotations

import ast
import faulthandler
import io
import json
import linecache
import os
import select
import signal
import sys
import tempfile
import time
import traceback
from typing import Any

CELL_FILENAME = "<cell>"


class _Recorder:
    """Stands in for IPython's display publisher in the child: ZeroMQ sockets must not be used after fork."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def publish(self, data, metadata=None, *args: Any, **kwargs: Any) -> None:
        self.records.append({"data": data, "metadata": metadata or {}})

    def clear_output(self, wait: bool = False) -> None:
        self.records.clear()


def short_traceback(exc: BaseException, limit_lines: int = 12) -> str:
    """`Name: message` and the last frames that belong to the cell itself."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == CELL_FILENAME]
    from tui_agent.tools.cell import tidy_traceback

    lines = tidy_traceback([f"  line {f.lineno}: {(f.line or '').strip()}" for f in frames])[-limit_lines:]
    head = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return head + ("\nTraceback (most recent call last):\n" + "\n".join(lines) if lines else "")


def _execute(shell, code: str, final_exc: type[BaseException]) -> dict:
    """Execute code like a cell: statements, then the value of a trailing expression."""
    out: dict[str, Any] = {"result": None, "error": None, "final_answer": None}
    try:
        source = shell.transform_cell(code) if shell is not None else code
        linecache.cache[CELL_FILENAME] = (len(source), None, source.splitlines(True), CELL_FILENAME)
        tree = ast.parse(source, CELL_FILENAME)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        namespace = shell.user_ns if shell is not None else {}
        exec(compile(tree, CELL_FILENAME, "exec"), namespace)  # noqa: S102 - running the model's code is the point
        if last is not None:
            value = eval(compile(ast.Expression(last.value), CELL_FILENAME, "eval"), namespace)  # noqa: S307
            if value is not None:
                if shell is not None:
                    from tui_agent.tools.cell import plain_text

                    out["result"] = plain_text(shell.display_formatter.format(value)[0]) or repr(value)
                else:
                    out["result"] = repr(value)
    except final_exc as exc:
        out["final_answer"] = str(getattr(exc, "answer", exc))
    except BaseException as exc:  # noqa: BLE001 - the model's error is data here
        out["error"] = short_traceback(exc)
    return out


def _child(shell, code: str, fd_out: int, final_exc: type[BaseException]) -> dict:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    faulthandler.disable()  # a crash is reported by the parent in one line, not as a dump of the parent's stack
    os.dup2(fd_out, 1)
    os.dup2(fd_out, 2)
    stdout, stderr = io.StringIO(), io.StringIO()
    sys.stdout, sys.stderr = stdout, stderr
    recorder = _Recorder()
    if shell is not None:
        shell.display_pub = recorder
    out = _execute(shell, code, final_exc)
    for stream in (stdout, stderr):
        stream.flush()
    out["stdout"] = stdout.getvalue()
    out["stderr"] = stderr.getvalue()
    out["displays"] = recorder.records
    return out


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"the code crashed its process ({name})"
    return f"the code ended its process (exit code {os.WEXITSTATUS(status)})"


class _NeverRaised(BaseException):
    """Stands in for the final-answer exception when the caller has none."""


OVERLAY_MB = 512  # room for what a trial writes in the workspace (memory, freed when the trial ends)


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _inherited_outputs(extra: tuple[int, ...]) -> set[int]:
    """Descriptors of the kernel's own output files (its log, ipykernel's copies of it) and ours: not the user's."""
    from tui_agent.tools.fsjournal import _open_descriptors

    mine = []
    for fd in (1, 2, *extra):
        try:
            mine.append(os.fstat(fd))
        except OSError:
            continue
    skip = set(extra)
    for fd in _open_descriptors():
        try:
            info = os.fstat(fd)
        except OSError:
            continue
        if any(_same_file(info, other) for other in mine):
            skip.add(fd)
    return skip


def _die_with_parent() -> None:
    """A trial outliving its kernel (killed mid-trial) would go on writing; Linux can end it with the kernel."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def isolate(journal, workspace: str | None) -> str:
    """In the child: own namespaces and an overlay over the workspace where possible; what is in force, in words."""
    from tui_agent.tools import sandbox

    try:
        sandbox.unshare(sandbox.CLONE_NEWNS | sandbox.CLONE_NEWNET)
    except OSError:
        return "journal"
    from tui_agent.tools.fsjournal import _inside

    if not workspace or not os.path.isdir(workspace) or _inside(journal.directory, os.path.realpath(workspace)):
        return "journal, no network"  # the journal must stay where the parent can read it
    scratch = os.path.join(journal.directory, "overlay")
    try:
        os.mkdir(scratch)
        sandbox.mount_overlay(os.path.realpath(workspace), scratch, OVERLAY_MB)
    except OSError:
        return "journal, no network"
    journal.isolate(workspace)
    return "overlay, no network"


def run_forked(
    shell, code: str, timeout: float, final_exc: type[BaseException] = _NeverRaised, workspace: str | None = None
) -> dict:
    """Run code in a forked child with a deadline; a dict of stdout, stderr, result, error, final_answer...

    `workspace`: the tree to show the child through a copy-on-write overlay where the platform allows it.
    """
    if not hasattr(os, "fork"):
        return {"stdout": "", "error": "NotImplementedError: trial runs need os.fork, which this platform lacks"}
    from tui_agent.tools.fsjournal import Journal

    journal = Journal()
    read_end, write_end = os.pipe()
    fd_out, out_path = tempfile.mkstemp(prefix="tui-agent-try-")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - a stream that cannot flush is not worth failing over
            pass
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read_end)
            try:
                _die_with_parent()
                journal.preserve_open_files(exclude=_inherited_outputs((fd_out, write_end)))
                isolation = isolate(journal, workspace)
                journal.install()
                out = _child(shell, code, fd_out, final_exc)
                out["isolation"] = isolation
                payload = json.dumps(out, default=str)
            except BaseException as exc:  # noqa: BLE001
                payload = json.dumps({"error": f"could not run the candidate: {exc!r}"})
            data = payload.encode()
            while data:
                data = data[os.write(write_end, data) :]
        finally:
            os._exit(0)
    os.close(write_end)
    os.close(fd_out)
    chunks: list[bytes] = []
    timed_out = False
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([read_end], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(read_end, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_end)
        if timed_out or sys.exc_info()[0] is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(pid, 0)
        try:
            with open(out_path, encoding="utf-8", errors="replace") as fh:
                fd_text = fh.read(200_000)
        finally:
            os.unlink(out_path)
            problems = journal.rollback()
    raw = b"".join(chunks)
    out: dict[str, Any]
    try:
        out = json.loads(raw) if raw else {}
    except ValueError:
        out = {}
    out.setdefault("stdout", "")
    out["stdout"] = fd_text + out["stdout"]
    if timed_out:
        out["timed_out"] = True
        out["error"] = f"TimeoutError: the code ran longer than {timeout:g} s and was stopped"
    elif not raw:
        out["error"] = f"ProcessError: {_describe_status(status)}"
    if problems:
        note = "Files the trial changed could not all be restored: " + "; ".join(problems)
        out["error"] = f"{out['error']}\n{note}" if out.get("error") else note
    return out

"""The session kernel on a real ipykernel: outputs, errors, timeouts, crashes, limits, forked trial runs."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from tui_agent.tools.kernel import INPUT_MESSAGE, Kernel


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ws")
    (path / "data.txt").write_text("alpha\nbeta\n")
    return path


@pytest.fixture(scope="module")
def kernel(workspace):
    with Kernel(workspace, timeout=20, memory_limit_mb=2048) as k:
        yield k


def test_state_is_kept_across_cells_in_the_workspace(kernel, workspace):
    first = kernel.execute("value = 41\nprint('set')\nvalue + 1")
    assert first.ok and first.stdout == "set\n" and first.result == "42"
    second = kernel.execute("import os\nos.getcwd(), open('data.txt').read().split()")
    assert second.result == f"({str(workspace)!r}, ['alpha', 'beta'])"
    assert kernel.execute("value").result == "41"


def test_ipc_transport_and_idempotent_start(kernel):
    pid = kernel._km.provisioner.process.pid
    kernel.start()
    assert kernel.alive and kernel._km.provisioner.process.pid == pid
    assert kernel._km.transport == "ipc"


def test_error_gives_name_message_and_short_plain_traceback(kernel):
    result = kernel.execute("def f(x):\n    return 1 / x\n\nf(0)")
    assert not result.ok
    assert result.error.startswith("ZeroDivisionError: division by zero")
    assert "return 1 / x" in result.error and "\x1b[" not in result.error
    assert len(result.error.splitlines()) <= 16
    assert "Error: ZeroDivisionError" in result.observation()


@pytest.mark.parametrize("trial", [False, True])
def test_recursion_and_syntax_errors_stay_short(kernel, trial):
    run = kernel.try_execute if trial else kernel.execute
    deep = run("def down(n):\n    return down(n + 1)\n\ndown(0)")
    assert deep.error.startswith("RecursionError: maximum recursion depth exceeded")
    assert "repeated" in deep.error and len(deep.error.splitlines()) < 10
    bad = run("def f(:\n    pass")
    assert bad.error.startswith("SyntaxError: invalid syntax (<cell>, line 1)")


@pytest.mark.parametrize("trial", [False, True])
def test_html_only_outputs_become_text(kernel, trial):
    run = kernel.try_execute if trial else kernel.execute
    code = "from IPython.display import HTML, display\ndisplay(HTML('<p>shown <b>text</b></p>'))\nHTML('<i>value</i>')"
    shown = run(code)
    assert shown.stdout == "shown **text**\n" and shown.result == "*value*"


def test_stderr_is_separate(kernel):
    result = kernel.execute("import sys\nprint('out')\nprint('warn', file=sys.stderr)")
    assert result.stdout == "out\n" and result.stderr == "warn\n"
    assert "[stderr]\nwarn" in result.observation()


def test_only_messages_of_our_request_count(kernel):
    # An earlier request whose outputs and idle status arrive while we wait for ours.
    kernel._kc.execute("import time\ntime.sleep(0.3)\nprint('not mine')", store_history=False)
    result = kernel.execute("print('mine')")
    assert result.stdout == "mine\n"


def test_rich_outputs_are_saved_and_referenced(kernel, workspace):
    code = (
        "import struct, zlib\n"
        "from IPython.display import Image, SVG, display\n"
        "def chunk(kind, data):\n"
        "    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))\n"
        "png = b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 1, 1, 8, 0, 0, 0, 0))\n"
        "png += chunk(b'IDAT', zlib.compress(b'\\x00\\x00')) + chunk(b'IEND', b'')\n"
        "display(Image(data=png, format='png'))\n"
        'display(SVG(\'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>\'))\n'
    )
    result = kernel.execute(code)
    assert result.ok and len(result.images) == 2
    png, svg = (Path(p) for p in result.images)
    assert png.read_bytes().startswith(b"\x89PNG") and png.suffix == ".png"
    assert "<svg" in svg.read_text() and svg.parent == workspace / ".tui-agent" / "outputs"
    assert f"[image saved: {png}]" in result.observation()


def test_long_output_is_cut_head_and_tail(kernel):
    result = kernel.execute("for i in range(3000):\n    print(f'line {i:05d}')")
    text = result.observation(max_chars=600)
    assert len(text) <= 600
    assert "line 00000" in text and "line 02999" in text and "chars cut ...]" in text


def test_runaway_output_is_bounded_in_memory(kernel):
    result = kernel.execute("print('x' * 3_000_000)")
    assert len(result.stdout) < 300_000 and "chars cut ...]" in result.stdout


def test_input_fails_with_a_clear_message(kernel):
    result = kernel.execute("name = input('Your name? ')")
    assert result.error == INPUT_MESSAGE
    assert "input() is not available" in result.observation()


def test_final_answer_cannot_be_swallowed(kernel):
    result = kernel.execute("try:\n    final_answer(6 * 7)\nexcept Exception:\n    print('swallowed')")
    assert result.final_answer == "42" and result.ok
    assert "swallowed" not in result.stdout and "Final answer: 42" in result.observation()
    assert kernel.execute("'after'").result == "'after'"


def test_memory_blowup_raises_memory_error_and_kernel_survives(kernel):
    limit = kernel.execute("import resource\nresource.getrlimit(resource.RLIMIT_AS)[0] // 2**20")
    assert limit.result == "2048"
    result = kernel.execute("kept = 5\nhuge = bytearray(8 * 2**30)")
    assert result.error.startswith("MemoryError") and "memory limit is 2048 MB" in result.error
    assert kernel.execute("kept").result == "5"


def test_timeout_interrupts_and_keeps_state(kernel):
    kernel.execute("survivor = 'yes'")
    result = kernel.execute("import time\nwhile True:\n    time.sleep(0.05)", timeout=1)
    assert result.timed_out and not result.ok and not result.restarted
    assert "KeyboardInterrupt" in result.error and "interrupted" in result.notice
    assert kernel.execute("survivor").result == "'yes'"


def _interrupt_once_running(kernel, marker: Path) -> threading.Thread:
    """Interrupt from another thread as soon as the cell has written its marker file (i.e. it is running)."""

    def watch() -> None:
        for _ in range(600):
            if marker.exists():
                kernel.interrupt()
                return
            threading.Event().wait(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_interrupt_from_another_thread(kernel, tmp_path):
    kernel.execute("still_here = True")
    marker = tmp_path / "running"
    watcher = _interrupt_once_running(kernel, marker)
    result = kernel.execute(f"import time\nopen({str(marker)!r}, 'w').close()\ntime.sleep(30)")
    watcher.join()
    assert not result.timed_out and "KeyboardInterrupt" in result.error
    assert result.notice.startswith("Interrupted by the user")
    assert kernel.execute("still_here").result == "True"


def test_interrupt_when_idle_does_not_touch_the_next_cell(kernel):
    kernel.interrupt()
    result = kernel.execute("import time\ntime.sleep(0.3)\n'finished'")
    assert result.ok and result.result == "'finished'" and result.notice is None


def test_interrupting_a_trial_run_kills_the_fork_only(kernel, tmp_path):
    kernel.execute("trial_safe = 'kept'")
    marker = tmp_path / "running"
    watcher = _interrupt_once_running(kernel, marker)
    result = kernel.try_execute(f"import time\nopen({str(marker)!r}, 'w').close()\ntime.sleep(30)")
    watcher.join()
    assert not result.ok and "KeyboardInterrupt" in result.error
    assert kernel.execute("trial_safe").result == "'kept'"


def _assert_restarted(kernel, result, words: str) -> None:
    assert result.restarted and not result.ok
    assert words in result.notice and "lost" in result.notice
    assert kernel.alive
    lost = kernel.execute("doomed")
    assert lost.error.startswith("NameError")
    assert kernel.execute("final_answer('prelude back')").final_answer == "prelude back"


def test_kernel_that_exits_is_restarted(kernel):
    kernel.execute("doomed = 1")
    result = kernel.execute("import os\nos._exit(3)")
    _assert_restarted(kernel, result, "exited with code 3")


def test_segfault_is_restarted(kernel):
    kernel.execute("doomed = 1")
    result = kernel.execute("import ctypes\nctypes.string_at(0)")
    _assert_restarted(kernel, result, "segmentation fault")


def test_kernel_killed_for_memory_is_restarted(kernel):
    kernel.execute("doomed = 1")
    # What the kernel's out-of-memory killer does to a process.
    result = kernel.execute("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    _assert_restarted(kernel, result, "too much memory")


def test_kernel_that_died_between_cells_is_restarted_with_a_notice(kernel):
    kernel.execute("doomed = 1")
    os.kill(kernel._process().pid, signal.SIGKILL)
    kernel._process().wait()
    trial = kernel.try_execute("'trial'")
    assert trial.result == "'trial'" and trial.notice is None
    result = kernel.execute("'next cell'")
    assert result.result == "'next cell'" and result.ok and result.restarted
    assert "since the last cell" in result.notice and "lost" in result.notice
    assert kernel.execute("doomed").error.startswith("NameError")
    assert kernel.execute("1").notice is None


def test_kernel_deaf_to_interrupts_is_restarted(kernel):
    kernel.execute("doomed = 1")
    code = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)"
    result = kernel.execute(code, timeout=0.5)
    assert result.timed_out
    _assert_restarted(kernel, result, "did not respond")


def test_try_execute_leaves_no_trace(kernel):
    kernel.execute("counter = 1\nitems = [1]")
    trial = kernel.try_execute("counter += 100\nitems.append(2)\nimport json\nprint('trial', counter)\nlen(items)")
    assert trial.ok and trial.stdout == "trial 101\n" and trial.result == "2"
    after = kernel.execute("counter, items, 'json' in dir()")
    assert after.result == "(1, [1], False)"


def test_try_execute_leaves_the_workspace_files_as_they_were(kernel, workspace):
    (workspace / "keep.txt").write_text("kept\n")
    code = (
        "import os, shutil\nopen('keep.txt', 'a').write('changed')\nos.remove('data.txt')\n"
        "os.makedirs('made/deep')\nopen('made/deep/new.txt', 'w').write('new')\nprint(sorted(os.listdir('.')))"
    )
    trial = kernel.try_execute(code)
    assert trial.ok and "made" in trial.stdout and "data.txt" not in trial.stdout
    assert (workspace / "keep.txt").read_text() == "kept\n"
    assert (workspace / "data.txt").read_text() == "alpha\nbeta\n"
    assert not (workspace / "made").exists()
    refused = kernel.try_execute("import subprocess\nsubprocess.run(['touch', 'spawned'])")
    assert not refused.ok and refused.error.startswith("TrialRefused")
    assert not (workspace / "spawned").exists()


def test_try_execute_reports_errors_final_answer_and_input(kernel):
    error = kernel.try_execute("x = 1\nraise ValueError('bad candidate')")
    assert error.error.startswith("ValueError: bad candidate") and "line 2" in error.error
    answer = kernel.try_execute("try:\n    final_answer(7)\nexcept Exception:\n    pass")
    assert answer.final_answer == "7" and answer.ok
    assert kernel.try_execute("input()").error == INPUT_MESSAGE
    assert kernel.try_execute("import os\nos.write(1, b'raw fd\\n')\nprint('py')").stdout == "raw fd\npy\n"


def test_try_execute_timeout_and_crash_spare_the_session(kernel):
    kernel.execute("session_value = 'safe'")
    looping = kernel.try_execute("while True:\n    pass", timeout=1)
    assert looping.timed_out and not looping.ok
    crashed = kernel.try_execute("import ctypes\nctypes.string_at(0)")
    assert "SIGSEGV" in crashed.error and not crashed.restarted
    exited = kernel.try_execute("import os\nos._exit(4)")
    assert "exit code 4" in exited.error
    assert kernel.execute("session_value").result == "'safe'"


def test_private_mode_and_shutdown(tmp_path):
    kernel = Kernel(tmp_path, web=False, memory_limit_mb=None)
    kernel.start()
    try:
        names = kernel.execute("sorted(n for n in ('web_search', 'visit_page', 'read_file') if n in globals())")
        assert names.result == "['read_file']"
        pid = kernel._km.provisioner.process.pid
    finally:
        kernel.shutdown()
    assert not kernel.alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_memory_limit_below_the_kernel_size_is_reported_not_applied(tmp_path):
    import resource

    inherited = resource.getrlimit(resource.RLIMIT_AS)[0]  # the kernel keeps what it inherited from us
    with Kernel(tmp_path, memory_limit_mb=64) as kernel:
        result = kernel.execute("import resource\nresource.getrlimit(resource.RLIMIT_AS)[0]")
        assert result.ok and result.result == str(inherited)
        assert "memory limit of 64 MB not applied" in result.notice
        assert kernel.execute("1 + 1").notice is None


def test_start_failures_are_clear_errors(tmp_path):
    from tui_agent.tools.kernel import KernelError

    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    with pytest.raises(KernelError, match="is not a directory"):
        Kernel(not_a_dir).start()
    with pytest.raises(KernelError, match="did not start .*/no/such/python"):
        Kernel(tmp_path, python="/no/such/python").start()
    broken = tmp_path / "broken-python"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    kernel = Kernel(tmp_path, python=str(broken))
    with pytest.raises(KernelError, match="did not start"):
        kernel.start()
    assert not kernel.alive

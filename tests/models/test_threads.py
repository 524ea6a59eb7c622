"""The thread rule: llama.cpp gets the cores that other processes leave free, never fewer than one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from tui_agent.models.threads import ThreadFit, fit_threads, usable_cores


@pytest.mark.parametrize(
    ("cores", "busy", "threads"),
    [(2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.0, 1), (2, 3.5, 1), (8, 2.2, 6), (1, 0.0, 1)],
)
def test_threads_are_the_cores_others_leave_free(cores, busy, threads):
    assert fit_threads(cores, busy) == threads


def test_usable_cores_respect_the_affinity_mask():
    assert 1 <= usable_cores() <= len(os.sched_getaffinity(0))


def test_another_busy_process_takes_a_thread_away_but_our_own_work_does_not():
    fit = ThreadFit()
    fit._read = lambda: samples.pop(0)  # type: ignore[method-assign]
    fit._sample = (0.0, 100.0, 10.0)
    # 2 s: the system used 4 CPU-seconds, 3.8 of them ours (llama.cpp threads, the kernel): others ~0.1 core
    samples = [(2.0, 104.0, 13.8)]
    assert fit.pick() == fit_threads(fit.cores, 0.1)
    # 2 s more: the system used 4 CPU-seconds, 2 of them ours: another process kept one core busy
    samples = [(4.0, 108.0, 15.8)]
    assert fit.others_busy() == pytest.approx(1.0)
    # too short a window keeps the last figure
    samples = [(4.1, 108.2, 15.8)]
    assert fit.others_busy() == pytest.approx(1.0)


def test_a_real_cpu_bound_process_is_measured_as_busy():
    # started through a shell that exits at once, so it is nobody's child here: "another process"
    code = "import time\nend = time.time() + 4\nwhile time.time() < end: pass"
    pid = int(subprocess.check_output(["sh", "-c", f'{sys.executable} -c "{code}" >/dev/null 2>&1 & echo $!']))
    try:
        fit = ThreadFit()
        time.sleep(1.5)
        assert fit.others_busy() > 0.5
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

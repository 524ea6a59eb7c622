"""How many threads llama.cpp gets: the cores that are actually free for it, re-checked before every generation.

llama.cpp's worker threads wait for each other at every layer; when one of them loses its core to another process,
all of them wait (and spin). Oversubscribed on 2 cores it ran 3-50x slower, so fewer threads than cores is much
better than more threads than free cores. The rule:

    threads = cores we may run on (CPU affinity, physical cores) - cores other processes keep busy, at least 1

"Busy" is the CPU time other processes used since the last check (system-wide time minus that of this process and
its children, such as the Jupyter kernel), in cores, rounded. Niced processes count too: a niced process still
takes a core for a few milliseconds now and then, and every such pause stalls all of llama.cpp's threads. Measured
on 2 cores next to two niced CPU-bound processes, Qwen2.5-Coder-0.5B read prompts at 7-10 tok/s and generated at
0.8-1.5 tok/s with 2 threads, but at 21-23 and 5-7 tok/s with 1 thread. Before anything is measured, the 1-minute
load average stands in.
"""

from __future__ import annotations

import os
import time


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped at the physical cores (hyper-threads don't help)."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        allowed = os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or allowed
    except Exception:  # noqa: BLE001 - psutil missing or unsupported platform
        physical = allowed
    return max(1, min(allowed, physical))


def fit_threads(cores: int, others_busy: float) -> int:
    """The rule: the cores not kept busy by other processes, at least one."""
    return max(1, min(cores, cores - int(others_busy + 0.5)))


class ThreadFit:
    """Measures how busy the other processes keep the CPU, between successive calls to ``pick``."""

    MIN_WINDOW = 0.5  # seconds: a shorter window says little, so the last figure is kept

    def __init__(self) -> None:
        self.cores = usable_cores()
        self._sample = self._read()
        self._others: float | None = None

    @staticmethod
    def _read() -> tuple[float, float, float] | None:
        """(wall time, CPU seconds used system-wide, CPU seconds used by this process and its children)."""
        try:
            import psutil

            system = psutil.cpu_times()
            me = psutil.Process()
            own = 0.0
            for process in [me, *me.children(recursive=True)]:  # the Jupyter kernel is ours too
                try:
                    times = process.cpu_times()
                except psutil.Error:
                    continue
                own += times.user + times.system
        except Exception:  # noqa: BLE001 - no psutil: the load average is all we have
            return None
        busy = sum(getattr(system, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))
        return time.monotonic(), busy, own

    def others_busy(self) -> float:
        """Cores kept busy by other processes since the last call; the load average before that."""
        now = self._read()
        before, self._sample = self._sample, now if now is not None else self._sample
        if now is not None and before is not None and now[0] - before[0] >= self.MIN_WINDOW:
            elapsed = now[0] - before[0]
            self._others = max(0.0, ((now[1] - before[1]) - (now[2] - before[2])) / elapsed)
        elif now is not None and before is not None:
            self._sample = before  # keep measuring from the older sample
        if self._others is not None:
            return self._others
        try:
            return os.getloadavg()[0]
        except OSError:
            return 0.0

    def pick(self) -> int:
        return fit_threads(self.cores, self.others_busy())

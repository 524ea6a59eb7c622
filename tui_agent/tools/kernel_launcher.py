"""Start ipykernel in private mode: cut the process off the network first, then run the kernel in it.

``python -m tui_agent.tools.kernel_launcher <ipykernel arguments>``: the isolation is applied while the process
is still single-threaded (a requirement of ``unshare``), and the kernel then runs in the same process, so the
audit-hook fallback, when it is the one in force, watches every cell too.
"""

from __future__ import annotations

import runpy
import sys


def main() -> None:
    from tui_agent.tools.sandbox import enter_private

    enter_private()
    sys.argv = ["ipykernel_launcher", *sys.argv[1:]]
    runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

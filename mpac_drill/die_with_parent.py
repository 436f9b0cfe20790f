"""Run a command that dies with the harness: ``python -m mpac_drill.die_with_parent PPID
CMD...`` sets Linux's parent-death signal (SIGTERM) and execs ``CMD`` in place, so a harness
killed with SIGKILL (or by the OOM killer) leaves no orphan behind (the load keeps no target
busy for the rest of its --run-time). A launcher instead of ``preexec_fn``: Python code run
between fork and exec in a threaded harness could receive its pending signals there."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys


def main(argv: list[str]) -> int:
    """Set the parent-death signal, check the parent is still ``argv[0]``, exec the rest."""
    if len(argv) < 2:
        print("usage: python -m mpac_drill.die_with_parent PPID CMD...", file=sys.stderr)
        return 2
    parent, cmd = int(argv[0]), argv[1:]
    # PR_SET_PDEATHSIG (1); not Linux: the harness's own cleanup still runs
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the harness died before the signal was armed
        return 143
    os.execvp(cmd[0], cmd)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Whether a fault took effect on the sandbox: the processes it killed are gone."""

from __future__ import annotations

import time

import psutil

#: A SIGKILLed process is gone within milliseconds; past this bound the kill had no effect.
_GONE_WITHIN_S = 5.0


def processes_gone(pids: list[int], within_s: float = _GONE_WITHIN_S) -> list[int]:
    """The pids of ``pids`` still alive (not zombies) after ``within_s``: empty when every
    one is gone."""
    deadline = time.monotonic() + within_s
    while True:
        alive = [p for p in pids if _alive(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


__all__ = ["processes_gone"]

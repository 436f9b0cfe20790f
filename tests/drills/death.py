"""Helpers of the harness-death tests: start a drill as a user would, kill it at a phase,
list what of the run still lives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from mpac_drill import PROJECT_ROOT

CLI = [sys.executable, "-c", "import sys; from mpac_drill.cli import main; sys.exit(main())"]


def of_run(run_dir: Path) -> list[psutil.Process]:
    """Live processes of the run: its folder in their command line or environment (locust,
    a restored PITR postgres, any helper started with MPAC_LOAD_OUT)."""
    mark = str(run_dir)
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            if mark in " ".join(p.info["cmdline"] or []) or mark in (
                p.environ().get("MPAC_LOAD_OUT") or ""
            ):
                found.append(p)
        except psutil.Error:
            continue
    return found


def descendants(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    """The harness's children and grandchildren, read while it lives."""
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        return []


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            continue
    return out


def start(
    scenario: str, runs: Path, *args: str, users: int = 2, console: bool = False
) -> subprocess.Popen[str]:
    """``mpac-drill run SCENARIO`` in its own process; ``console``: its stderr piped (the
    phase lines), else discarded."""
    return subprocess.Popen(
        [*CLI, "run", scenario, "--users", str(users), "--runs-dir", str(runs), *args],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if console else subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def signal_at_phase(
    proc: subprocess.Popen[str],
    phase: str,
    sig: int = signal.SIGKILL,
    delay_s: float = 0.0,
    timeout_s: float = 180,
) -> tuple[list[str], list[psutil.Process]]:
    """Send ``sig`` once the drill's console shows ``phase`` (plus ``delay_s``); the console
    lines up to then and the harness's descendants read just before the signal."""
    assert proc.stderr is not None
    lines: list[str] = []
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    try:
        for line in proc.stderr:
            lines.append(line)
            if phase in line:
                if delay_s:
                    time.sleep(delay_s)
                kids = descendants(proc)
                proc.send_signal(sig)
                return lines, kids
    finally:
        timer.cancel()
    raise AssertionError(f"no phase {phase!r} (exit {proc.poll()}):\n" + "".join(lines[-20:]))


def gone_within(check, limit_s: float = 5.0) -> float:
    """Seconds until ``check()`` is empty, at most ``limit_s`` (then it is returned)."""
    t0 = time.monotonic()
    while check() and time.monotonic() - t0 < limit_s:
        time.sleep(0.05)
    return time.monotonic() - t0

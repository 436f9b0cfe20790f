"""Rollback always runs: drills interrupted at many points, in every phase.

Each case starts a real drill as a user would (a separate ``mpac-drill run`` process),
waits for a phase line on its console, sends SIGINT, SIGTERM or SIGHUP, and checks: exit
130, 143 or 129,
``result.json`` says aborted, no locust or helper process survives, and the sandbox is
healthy again within 30 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from mpac_drill import PROJECT_ROOT
from mpac_drill.sandbox import control

pytestmark = pytest.mark.sandbox

# (scenario, phase text to wait for, extra delay after it, signal)
POINTS = [
    ("ecs-task-failure", "starting load", 0.0, signal.SIGINT),
    ("ecs-task-failure", "observing", 0.3, signal.SIGINT),
    ("ecs-task-failure", "fault injected", 0.0, signal.SIGTERM),
    ("ecs-task-failure", "awaiting recovery", 0.5, signal.SIGINT),
    ("ecs-task-failure", "cooldown", 0.2, signal.SIGINT),
    ("rds-failover", "observing", 1.5, signal.SIGTERM),
    ("rds-failover", "failing over the RDS primary", 0.0, signal.SIGINT),
    ("rds-failover", "awaiting recovery", 0.2, signal.SIGINT),
    ("rds-failover", "reading back canary", 0.0, signal.SIGTERM),
    ("redis-failover", "observing", 0.1, signal.SIGINT),
    ("redis-failover", "awaiting recovery", 1.0, signal.SIGTERM),
    ("redis-failover", "cooldown", 0.0, signal.SIGINT),
    # the SSH session to the bastion drops: the harness gets SIGHUP (issue 17)
    ("rds-failover", "awaiting recovery", 0.3, signal.SIGHUP),
]


def _locust_of(run_dir) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "locust" in cmd and str(run_dir) in cmd:
            found.append(p)
    return found


@pytest.mark.parametrize(
    "scenario, phase, delay, sig",
    POINTS,
    ids=[f"{s}-{p.replace(' ', '_')}+{d}-{g.name}" for s, p, d, g in POINTS],
)
def test_interrupt_runs_rollbacks_and_leaves_sandbox_healthy(
    sandbox, tmp_path, scenario, phase, delay, sig
):
    runs = tmp_path / "runs"
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from mpac_drill.cli import main; sys.exit(main())",
            "run",
            scenario,
            "--users",
            "2",
            "--runs-dir",
            str(runs),
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    seen = threading.Event()
    lines: list[str] = []

    def reader() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if phase in line:
                seen.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert seen.wait(90), f"phase {phase!r} never shown:\n{''.join(lines)}"
    time.sleep(delay)  # where in the phase the operator presses Ctrl-C
    proc.send_signal(sig)
    try:
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    t.join(timeout=5)
    expected = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}[sig]
    assert code == expected, "".join(lines)
    assert "Traceback" not in "".join(lines)
    results = list(runs.glob("*/result.json"))
    assert len(results) == 1, "".join(lines)
    result = json.loads(results[0].read_text())
    assert result["status"] == "aborted"
    assert result["reason"]
    assert not _locust_of(results[0].parent)
    started = time.monotonic()
    control.wait_healthy(sandbox, timeout_s=30)
    assert time.monotonic() - started <= 30


def test_harness_killed_with_sigkill_leaves_no_orphan_load(sandbox, tmp_path):
    """kill -9 (or the OOM killer) of the harness: its locust processes die with it
    (parent-death signal) instead of loading the target for the rest of --run-time."""
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from mpac_drill.cli import main; sys.exit(main())",
         "run", "ecs-task-failure", "--users", "2", "--runs-dir", str(runs)],
        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    seen = threading.Event()

    def reader() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "observing" in line:
                seen.set()

    threading.Thread(target=reader, daemon=True).start()
    try:
        assert seen.wait(90), "the drill never started observing"
        (run_dir,) = list(runs.iterdir())
        assert _locust_of(run_dir), "no load was running"
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _locust_of(run_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _locust_of(run_dir), "locust outlived the harness"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in _locust_of(runs):
            p.kill()
    control.wait_healthy(sandbox, timeout_s=60)

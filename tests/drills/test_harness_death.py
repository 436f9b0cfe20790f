"""The harness killed for real (SIGKILL: kill -9, the OOM killer) right after it injected a
fault, and signalled (SIGHUP, SIGKILL) before the fault, after it and while its rollbacks
play, each point on the ECS or the RDS drill: nothing of the run survives it, the run
folder says what was injected and how it is undone (``inflight.json``), the next drill
refuses to inject until ``mpac-drill recover`` has finished the run, and after recover the
sandbox is healthy and the next drill runs clean.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from mpac_drill.drill.inflight import INFLIGHT_FILE
from mpac_drill.load import TARGET_ENV
from mpac_drill.sandbox import control
from tests.conftest import run_cli
from tests.drills.death import alive, gone_within, of_run, signal_at_phase, start

pytestmark = pytest.mark.sandbox
SETS = {
    "ecs-task-failure": ["--set", "ecs.task_start_delay_s=3"],
    "rds-failover": ["--set", "rds.failover_delay_s=3"],
}


def _kill_after_injection(proc: subprocess.Popen[str], runs: Path, timeout_s: float = 120) -> Path:
    """SIGKILL the harness as soon as its run folder holds inflight.json (the fault is
    being injected); the run folder."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = list(runs.glob(f"*/{INFLIGHT_FILE}"))
        if found:
            proc.kill()
            proc.wait(10)
            return found[0].parent
        assert proc.poll() is None, f"the drill ended before its fault (exit {proc.returncode})"
        time.sleep(0.005)
    proc.kill()
    raise AssertionError("no inflight.json appeared")


@pytest.mark.parametrize("scenario, sets", list(SETS.items()))
def test_sigkill_after_injection_then_recover_leaves_sandbox_healthy(
    sandbox, tmp_path, scenario, sets
):
    runs = tmp_path / "runs"
    proc = start(scenario, runs, *sets)
    try:
        run_dir = _kill_after_injection(proc, runs)
        killed = time.monotonic()
        # no locust process of the run survives the harness (parent-death signal)
        while of_run(run_dir) and time.monotonic() - killed < 5:
            time.sleep(0.05)
        gone_s = time.monotonic() - killed
        assert not of_run(run_dir), "a process of the run outlived the harness by 5 s"
        print(f"{scenario}: processes of the run gone {gone_s:.2f} s after SIGKILL")
    finally:
        if proc.poll() is None:
            proc.kill()
    record = json.loads((run_dir / INFLIGHT_FILE).read_text())
    assert record["scenario"] == scenario
    assert record["fault"]["action"]
    assert record["undo"][0]["id"] == "sandbox-health"
    assert record["undo"][0]["state"] == "pending"
    assert not (run_dir / "result.json").exists()

    # the next drill refuses to inject: exit 3, one line naming recover
    refused = run_cli("run", scenario, "--users", "0", "--runs-dir", str(runs), timeout=120)
    assert refused.code == 3, refused.err
    assert "mpac-drill recover" in refused.err and str(run_dir) in refused.err
    assert len(refused.err.strip().splitlines()) == 1
    assert len(list(runs.iterdir())) == 1  # it made no run folder

    dry = run_cli("recover", "--runs-dir", str(runs), "--dry-run")
    assert dry.code == 0, dry.err
    assert "pending: sandbox" in dry.out
    assert (run_dir / INFLIGHT_FILE).exists()  # a dry run changes nothing

    started = time.monotonic()
    rec = run_cli("recover", "--runs-dir", str(runs), timeout=300)
    took = time.monotonic() - started
    assert rec.code == 0, rec.err + rec.out
    assert run_dir.name in rec.out and "harness died" in rec.out
    print(f"{scenario}: recover took {took:.1f} s")
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "aborted"
    assert result["reason"] == "harness died"
    assert result["fault"]["action"] == record["fault"]["action"]
    assert result["recovery"]["steps"][-1]["outcome"] == "up and healthy"
    assert result["verdicts"] == [] and result["passed"] is False
    assert not (run_dir / INFLIGHT_FILE).exists()
    control.wait_healthy(sandbox, timeout_s=5)  # healthy now, not eventually

    again = run_cli("recover", "--runs-dir", str(runs))
    assert again.code == 0 and "no interrupted run" in again.out
    clean = run_cli("run", scenario, "--users", "2", "--runs-dir", str(runs), *sets, timeout=300)
    assert clean.code == 0, clean.err + clean.out


def test_drill_refuses_under_foreign_load(sandbox, tmp_path):
    """A locust process of mpac-drill already loading the sandbox's services (another
    checkout's drill, a harness from before the parent-death launcher): refused, exit 3,
    one line naming its pid and run folder."""
    from mpac_drill.load import LoadRunner

    services = control.view(sandbox).endpoints["services"]
    other = tmp_path / "other-run"
    runner = LoadRunner(
        out_dir=other,
        hosts={
            "portal": services["svc-portal"],
            "smarttab": services["svc-smarttab"],
            "pgw": services["pgw"],
        },
        users=1,
        spawn_rate=1,
        run_time_s=60,
        target_name="sandbox",
    )
    runner.start()
    try:
        assert runner.pids
        out = run_cli(
            "run", "ecs-task-failure", "--users", "0", "--runs-dir", str(tmp_path / "runs")
        )
        assert out.code == 3, out.err
        line = out.err.strip()
        assert len(line.splitlines()) == 1
        assert str(runner.pids[0]) in line and str(other) in line
        assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
    finally:
        runner.stop()
    assert TARGET_ENV == "MPAC_LOAD_TARGET"


FAULT = "fault injected"
# (what, scenario, signals in order with the pause before each, the phase the first waits
# for, options): the points are shared out between the ECS and the RDS drill
POINTS = [
    ("sighup-before-injection", "ecs-task-failure", [(signal.SIGHUP, 0.3)], "observing", []),
    ("sighup-after-injection", "rds-failover", [(signal.SIGHUP, 0.0)], FAULT, []),
    # Ctrl-C once the fault is in: the rollbacks play (await-recovery waits out the delay
    # of 3 s); the terminal hangs up while they do
    ("sighup-during-rollback", "rds-failover",
     [(signal.SIGINT, 0.3), (signal.SIGHUP, 0.5)], FAULT, []),
    ("sigkill-before-injection", "rds-failover", [(signal.SIGKILL, 0.3)], "observing", []),
    ("sigkill-during-rollback", "ecs-task-failure",
     [(signal.SIGINT, 0.3), (signal.SIGKILL, 0.5)], FAULT, []),
    # locust as master and two workers: none outlives the harness
    ("sigkill-after-injection-workers", "ecs-task-failure", [(signal.SIGKILL, 0.0)], FAULT,
     ["--load-workers", "2"]),
]  # fmt: skip


@pytest.mark.parametrize(
    "what, scenario, signals, phase, options", POINTS, ids=[f"{p[1]}-{p[0]}" for p in POINTS]
)
def test_drill_signalled_at_a_point_leaves_nothing_and_the_next_drill_runs(
    sandbox, tmp_path, what, scenario, signals, phase, options
):
    runs = tmp_path / "runs"
    proc = start(scenario, runs, *SETS[scenario], *options, console=True)
    try:
        (first, delay), *later = signals
        _, kids = signal_at_phase(proc, phase, first, delay_s=delay)
        locusts = [k for k in kids if "locust" in " ".join(_cmdline(k))]
        for sig, pause in later:
            time.sleep(pause)
            kids += [k for k in alive(of_run(next(runs.iterdir()))) if k not in kids]
            proc.send_signal(sig)
        code = proc.wait(120)
        run_dir = next(runs.iterdir())
        gone_s = gone_within(lambda: alive(kids) + of_run(run_dir))
        assert not alive(kids) and not of_run(run_dir), alive(kids) + of_run(run_dir)
        if options:  # master and two workers were running when the harness died
            assert len(locusts) >= 3, locusts
        print(f"{scenario} {what}: exit {code}, processes of the run gone {gone_s:.2f} s after it")
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = signals[-1][0] == signal.SIGKILL
    injected = phase == FAULT
    if not killed:  # the harness wrote its own result: aborted, rollbacks ran
        assert code == (129 if first == signal.SIGHUP else 130), code
        result = json.loads((run_dir / "result.json").read_text())
        assert result["status"] == "aborted" and result["passed"] is False
        assert ("hung up" in result["reason"]) == (first == signal.SIGHUP), result["reason"]
        assert (result["fault"]["action"] != "not injected") == injected, result["fault"]
        assert not (run_dir / INFLIGHT_FILE).exists()
        # the rollbacks really ran (the sandbox heals by itself, so health alone proves
        # nothing: a signal outside chaoslib once ran none and still said "rollbacks ran")
        rollbacks = json.loads((run_dir / "journal.json").read_text()).get("rollbacks") or []
        assert rollbacks and all(r["status"] == "succeeded" for r in rollbacks), rollbacks
        control.wait_healthy(sandbox, timeout_s=30)
    elif not injected:  # killed before the fault: nothing to undo, nothing to recover
        assert code == -signal.SIGKILL
        assert not (run_dir / INFLIGHT_FILE).exists() and not (run_dir / "result.json").exists()
        rec = run_cli("recover", "--runs-dir", str(runs))
        assert rec.code == 0 and "no interrupted run" in rec.out, rec.err + rec.out
    else:  # killed after the fault: the record is still there; recover ends it
        assert not (run_dir / "result.json").exists()
        assert json.loads((run_dir / INFLIGHT_FILE).read_text())["fault"]["action"]
        rec = run_cli("recover", "--runs-dir", str(runs), timeout=300)
        assert rec.code == 0 and "harness died" in rec.out, rec.err + rec.out
        result = json.loads((run_dir / "result.json").read_text())
        assert result["status"] == "aborted" and result["reason"] == "harness died"
        control.wait_healthy(sandbox, timeout_s=5)
    clean = run_cli("run", scenario, "--users", "2", "--runs-dir", str(runs), *SETS[scenario])
    assert clean.code == 0, clean.err + clean.out


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []

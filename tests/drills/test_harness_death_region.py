"""The region drill's harness killed for real (SIGKILL) while the DR stack is being
restored: the DR sandbox (its own daemon, sessions of its own) and the front door outlive
nothing but the harness; ``mpac-drill recover`` stops the DR sandbox, brings the primary
sandbox back healthy, and the next drill runs clean. And hung up (SIGHUP) after the Route53
switch: the harness fails back by itself.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from mpac_drill.drill.inflight import INFLIGHT_FILE
from mpac_drill.platform.sandbox.region import dr_target
from mpac_drill.sandbox import control
from mpac_drill.sandbox.procs import marked_processes, port_is_free
from tests.conftest import run_cli
from tests.drills.death import alive, gone_within, of_run, signal_at_phase, start

pytestmark = pytest.mark.sandbox


def test_region_drill_sigkill_mid_restore_then_recover_stops_dr_and_heals_primary(
    sandbox, tmp_path
):
    runs = tmp_path / "runs"
    dr = dr_target(sandbox)
    dr_dir = control.state_dir(dr)
    front = [p + int(sandbox.require("region.front_door_port_offset")) for _, p in _albs(sandbox)]
    proc = start("region-failover", runs, users=2, console=True)
    try:
        _, kids = signal_at_phase(proc, "restoring the latest snapshot", delay_s=0.3)
        proc.wait(10)
        run_dir = next(runs.glob(f"*/{INFLIGHT_FILE}")).parent
        # the harness's own children (locust) and the front door (its thread) die with it;
        # the DR sandbox (a daemon in a session of its own) is left for recover
        dr_pids = {p.pid for p in marked_processes(dr_dir)}
        assert dr_pids, "the DR sandbox was not running when the harness died"
        own = [k for k in kids if k.pid not in dr_pids]
        gone_s = gone_within(lambda: alive(own) + of_run(run_dir))
        assert not alive(own) and not of_run(run_dir), alive(own) + of_run(run_dir)
        assert all(port_is_free(p) for p in front)
        print(f"region: processes of the run gone {gone_s:.2f} s after SIGKILL")
    finally:
        if proc.poll() is None:
            proc.kill()
    record = json.loads((run_dir / INFLIGHT_FILE).read_text())
    assert record["fault"]["action"] == "region:lost"
    assert [s["id"] for s in record["undo"] if s["state"] == "pending"] == [
        "sandbox-health",
        "dr-stack",
    ]
    assert not control.status(sandbox)["healthy"]  # the primary region is still lost

    started = time.monotonic()
    rec = run_cli("recover", "--runs-dir", str(runs), timeout=300)
    took = time.monotonic() - started
    assert rec.code == 0, rec.err + rec.out
    print(f"region: recover took {took:.1f} s")
    assert marked_processes(dr_dir) == [] and not alive(kids)  # nothing of the run is left
    assert not (dr_dir / "ssm").exists() and not (dr_dir / "secrets.json").exists()
    assert all(port_is_free(p) for _, p in control.port_settings(dr))
    control.wait_healthy(sandbox, timeout_s=5)
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "aborted" and result["reason"] == "harness died"
    outcomes = {s["id"]: s for s in result["recovery"]["steps"]}
    assert outcomes["dr-stack"]["ok"] and outcomes["dr-stack"]["outcome"].startswith("stopped")
    assert outcomes["sandbox-health"]["outcome"] == "up and healthy"
    assert not (run_dir / INFLIGHT_FILE).exists()

    clean = run_cli("run", "region-failover", "--users", "0", "--runs-dir", str(runs))
    assert clean.code == 0, clean.err + clean.out
    assert marked_processes(dr_dir) == []
    control.wait_healthy(sandbox, timeout_s=5)


def _albs(target) -> list[tuple[str, int]]:
    return [(n, int(c["port"])) for n, c in target.require("ecs.services").items()]


def test_region_drill_hung_up_after_the_route53_switch_fails_back_by_itself(sandbox, tmp_path):
    """The terminal closes once users are sent to the DR region (SIGHUP after "switching the
    Route53 record"): the harness plays its rollbacks (fail back: DR stack stopped, primary
    started), writes result.json aborted "hung up", exits 129; nothing is left to recover."""
    runs = tmp_path / "runs"
    dr_dir = control.state_dir(dr_target(sandbox))
    proc = start("region-failover", runs, users=2, console=True)
    try:
        lines, kids = signal_at_phase(
            proc, "switching the Route53 record", signal.SIGHUP, delay_s=0.2
        )
        code = proc.wait(180)
    finally:
        if proc.poll() is None:
            proc.kill()
    (run_dir,) = runs.iterdir()
    gone_s = gone_within(lambda: alive(kids) + of_run(run_dir) + marked_processes(dr_dir))
    left = alive(kids) + marked_processes(dr_dir)
    assert not left, [(p.pid, " ".join(p.cmdline())[:150]) for p in left] + lines[-30:]
    print(f"region SIGHUP after the switch: exit {code}, gone {gone_s:.2f} s after it")
    assert code == 129, "".join(lines[-20:])
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "aborted" and "hung up" in result["reason"], result["reason"]
    assert result["fault"]["action"] == "region:lost"
    assert not (run_dir / INFLIGHT_FILE).exists()  # the harness finished its own run
    rollbacks = json.loads((run_dir / "journal.json").read_text())["rollbacks"]
    assert [r["activity"]["name"] for r in rollbacks if r["status"] == "succeeded"] == [
        "stop-observers",
        "stop-load",
        "fail-back",
    ], rollbacks
    control.wait_healthy(sandbox, timeout_s=30)
    rec = run_cli("recover", "--runs-dir", str(runs))
    assert rec.code == 0 and "no interrupted run" in rec.out, rec.err + rec.out

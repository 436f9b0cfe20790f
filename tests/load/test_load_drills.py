"""Drills on the sandbox with load at scale: remote workers started by the test through the
printed worker command, missing workers, a rate in requests per second and a saturated
generator (a worker starved by a CPU hog). Rates are ones two shared cores carry while others
work."""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mpac_drill import PROJECT_ROOT
from tests.conftest import run_cli
from tests.drills.death import CLI
from tests.test_load_runner import _port

pytestmark = pytest.mark.sandbox

SCENARIO = "ecs-task-failure"


def _drill(runs: Path, *sets: str, timeout: float = 300):
    args = ["run", SCENARIO, "--runs-dir", str(runs)]
    for s in ("drill.warmup_s=8", *sets):
        args += ["--set", s]
    r = run_cli(*args, timeout=timeout)
    folders = sorted(runs.glob("*")) if runs.exists() else []
    result = json.loads((folders[-1] / "result.json").read_text()) if folders else None
    return r, result, (folders[-1] if folders else None)


def test_drill_with_two_remote_workers_at_a_low_rate_records_both_and_its_rate(
    sandbox, tmp_path, start_workers
):
    port = _port()
    r = run_cli("load", "worker-command", "--set", f"load.master_bind=127.0.0.1:{port}")
    assert r.code == 0, r.err
    workers = start_workers(shlex.split(r.out.strip()), 2)
    r, result, run_dir = _drill(
        tmp_path / "runs",
        "load.external_workers=2",
        f"load.master_bind=127.0.0.1:{port}",
        "load.workers_wait_s=30",
        "load.rps=30",
    )
    assert result is not None, r.err
    assert r.code == 0, (r.code, r.err[-2000:])
    load = result["measurements"]["load"]
    assert len(list((run_dir / "locust").glob("seconds-*.csv"))) == 2  # both workers
    assert sum(1 for k in load["cpu_max_pct"] if k.startswith("worker")) == 2
    assert load["rps_offered"] == 30
    assert abs(load["rps_achieved"] - 30) <= 0.05 * 30, load
    assert result["load_saturated"] is False, load["saturation_evidence"]
    rows = list(csv.DictReader((run_dir / "load_rps.csv").open()))
    assert rows and {"offered_rps", "achieved_rps"} <= set(rows[0])
    assert all(w.wait(20) is not None for w in workers)


def test_drill_with_missing_workers_exits_3_before_any_fault(sandbox, tmp_path):
    r, result, _ = _drill(
        tmp_path / "runs",
        "load.external_workers=2",
        f"load.master_bind=127.0.0.1:{_port()}",
        "load.workers_wait_s=3",
    )
    assert r.code == 3, (r.code, r.err[-2000:])
    assert result["fault"]["injected_at"] is None
    assert "2 external locust worker(s)" in result["reason"], result["reason"]
    assert "0 connected" in result["reason"]


def _hog(cpu: int) -> subprocess.Popen:
    """A busy loop pinned to ``cpu`` that stops by itself after 180 s."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nend = time.monotonic() + 180\nwhile time.monotonic() < end: pass",
        ]
    )
    os.sched_setaffinity(proc.pid, {cpu})
    return proc


def test_a_worker_starved_by_a_cpu_hog_is_flagged_load_saturated(sandbox, tmp_path, start_workers):
    """The generator is the bottleneck, not the platform: once connected, the one remote
    worker is pinned to a core with a busy loop and given the lowest priority (nice 19: about
    1.5 % of that core). Unstarved, a worker carries 60 rps on about 5 % of a core; here
    it falls short and the run is flagged."""
    port = _port()
    r = run_cli("load", "worker-command", "--set", f"load.master_bind=127.0.0.1:{port}")
    assert r.code == 0, r.err
    (worker,) = start_workers(shlex.split(r.out.strip()), 1)
    runs = tmp_path / "runs"
    sets = [
        "drill.warmup_s=8",
        "load.external_workers=1",
        f"load.master_bind=127.0.0.1:{port}",
        "load.workers_wait_s=60",
        "load.rps=60",
    ]
    drill = subprocess.Popen(
        [*CLI, "run", SCENARIO, "--runs-dir", str(runs), *(a for s in sets for a in ("--set", s))],
        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    hogs: list[subprocess.Popen] = []
    try:
        log = tmp_path / "worker-machine-0" / "worker.log"
        deadline = time.monotonic() + 90
        while "Starting Locust" not in (log.read_text() if log.exists() else ""):
            assert drill.poll() is None and time.monotonic() < deadline, "worker never started"
            time.sleep(0.1)
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(worker.pid, {cpu})
        os.setpriority(os.PRIO_PROCESS, worker.pid, 19)
        hogs = [_hog(cpu)]
        _, err = drill.communicate(timeout=300)
    finally:
        for h in hogs:
            h.kill()
            h.wait(5)
        if drill.poll() is None:
            drill.kill()
    (run_dir,) = runs.iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    load = result["measurements"]["load"]
    assert result["load_saturated"] is True, (load, err[-1500:])
    assert any("offered" in line for line in load["saturation_evidence"]), load
    assert load["rps_achieved"] < 0.9 * 60, load
    # no latency verdict is judged on the starved generator's numbers
    assert not any(
        v["metric"] == "rto_slo_s" and v["outcome"] == "met" for v in result["verdicts"]
    ), result["verdicts"]

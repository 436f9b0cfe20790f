"""The point-in-time drill's harness killed for real (SIGKILL) while its restored PostgreSQL
instance replays WAL: the instance dies with the harness (parent-death signal) within 5 s,
``inflight.json`` names it, and ``mpac-drill recover`` removes its data folder and log,
heals the sandbox, and the next drill runs clean.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest

from mpac_drill.drill.inflight import INFLIGHT_FILE
from mpac_drill.sandbox import control, snapshots
from tests.conftest import run_cli
from tests.drills.death import alive, descendants, gone_within, of_run, start

pytestmark = pytest.mark.sandbox


def _restored(dest: str) -> list[psutil.Process]:
    """The restored instance's postmaster and its children (``postgres -D <dest>``)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if dest in (p.info["cmdline"] or []):
            found.append(p)
            found += p.children(recursive=True)
    return alive(found)


def _pitr_dest(runs: Path, proc, timeout_s: float = 120) -> tuple[Path, str]:
    """Wait for the write-ahead record's restored instance and for its postgres to run."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the drill ended before its restore (exit {proc.returncode})"
        for path in runs.glob(f"*/{INFLIGHT_FILE}"):
            try:
                undo = json.loads(path.read_text())["undo"]
            except ValueError:
                continue
            dest = next((s["data"]["dest"] for s in undo if s["id"] == "pitr-instance"), None)
            if dest and _restored(dest):
                return path.parent, dest
        time.sleep(0.02)
    raise AssertionError("no restored instance started")


def test_pitr_drill_sigkill_mid_restore_leaves_no_instance_and_recover_removes_it(
    sandbox, tmp_path
):
    runs = tmp_path / "runs"
    proc = start("rds-pitr", runs)
    try:
        run_dir, dest = _pitr_dest(runs, proc)
        kids = descendants(proc)
        instance = _restored(dest)
        proc.kill()
        proc.wait(10)
        gone_s = gone_within(lambda: alive(kids) + _restored(dest) + of_run(run_dir))
        assert not _restored(dest), f"the restored instance outlived the harness: {instance}"
        assert not alive(kids) and not of_run(run_dir), alive(kids) + of_run(run_dir)
        print(f"rds-pitr: restored instance and run processes gone {gone_s:.2f} s after SIGKILL")
    finally:
        if proc.poll() is None:
            proc.kill()
    record = json.loads((run_dir / INFLIGHT_FILE).read_text())
    step = next(s for s in record["undo"] if s["id"] == "pitr-instance")
    assert step["state"] == "pending" and step["resources"][0] in dest
    assert Path(dest).exists()  # the data folder stays until recover

    dry = run_cli("recover", "--runs-dir", str(runs), "--dry-run")
    assert dry.code == 0 and "restored PostgreSQL instance" in dry.out, dry.err + dry.out
    started = time.monotonic()
    rec = run_cli("recover", "--runs-dir", str(runs), timeout=300)
    print(f"rds-pitr: recover took {time.monotonic() - started:.1f} s")
    assert rec.code == 0, rec.err + rec.out
    assert not Path(dest).exists() and not Path(dest + ".log").exists()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "aborted" and result["reason"] == "harness died"
    outcome = next(s for s in result["recovery"]["steps"] if s["id"] == "pitr-instance")
    assert outcome["ok"] and outcome["outcome"] == "removed (was not running)", outcome
    control.wait_healthy(sandbox, timeout_s=5)

    clean = run_cli("run", "rds-pitr", "--users", "2", "--runs-dir", str(runs))
    assert clean.code == 0, clean.err + clean.out
    assert not list(snapshots.restore_home(control.state_dir(sandbox)).iterdir())

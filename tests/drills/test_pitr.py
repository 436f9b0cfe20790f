"""The rds-pitr drill (runbook §2.3): a restore to T holds exactly the writes up to T.

The sandbox tests bring up their own sandbox (state folder in tmp, ports 21xxx, below the
kernel's ephemeral range) so they never touch the default one. Its base backups are taken
only at start (``backup.base_interval_s`` 600), so every restore replays WAL from there,
across the timeline switch of a failover when the test makes one.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import psycopg
import pytest
import yaml

from mpac_drill import EXPERIMENTS_DIR
from mpac_drill.config import Target, load_catalog, load_target
from mpac_drill.drill.context import DrillContext
from mpac_drill.drill.runner import run_drill
from mpac_drill.errors import ExitCode
from mpac_drill.platform.sandbox import rds as backend
from mpac_drill.sandbox import control, snapshots
from mpac_drill.sandbox.postgres import conninfo
from mpac_drill.sandbox.procs import pid_alive, postgres_home

STEPS = [
    "choose base backup",
    "wait for WAL archive past T",
    "copy base backup",
    "configure recovery",
    "replay WAL to T",
    "promote",
    "verify",
]


def pitr_settings(state_dir: Path) -> dict:
    """The sandbox target on ports 21xxx with its own state folder."""
    base = yaml.safe_load((EXPERIMENTS_DIR / "targets" / "sandbox.yaml").read_text())
    settings = control.private_settings(
        base, name="sandbox-pitr-test", state_dir=state_dir, port_block=21000
    )
    settings["backup"]["base_interval_s"] = 600
    return settings


# ---------------------------------------------------------------- pure: the ledger check


def _w(seq: int, sent: float, ack: float | None) -> SimpleNamespace:
    return SimpleNamespace(seq=seq, sent_mono=sent, ack_mono=ack)


def test_check_restored_ledger_splits_writes_around_t():
    ledger = [
        _w(1, 0.0, 0.01),
        _w(2, 1.0, 1.01),
        _w(3, 1.99, 2.02),
        _w(4, 2.5, 2.51),
        _w(5, 3.0, None),
    ]
    check = backend.check_restored_ledger(ledger, {1, 2, 3}, t_mono=2.0)
    assert check["acked_before_target"] == 2 and check["lost_writes"] == 0
    assert check["written_after_target"] == 2 and check["rows_after_target"] == 0
    assert check["in_doubt_at_target"] == 1 and check["in_doubt_present"] == 1
    assert check["rpo_s"] == pytest.approx(2.0 - 1.01)


def test_check_restored_ledger_counts_losses_and_rows_past_t():
    ledger = [_w(i, i * 0.1, i * 0.1 + 0.01) for i in range(1, 31)]  # T = 2.0: 1..19 before
    present = set(range(1, 11)) | {12, 25}  # 11 and 13..19 lost; 25 restored too far
    check = backend.check_restored_ledger(ledger, present, t_mono=2.0)
    assert check["lost_writes"] == 8 and check["lost_seqs"] == [11, *range(13, 20)]
    assert check["rows_after_target"] == 1 and check["after_seqs"] == [25]
    assert check["rpo_s"] == pytest.approx(2.0 - 1.01)  # complete up to write 10 only


def test_check_restored_ledger_without_writes_before_t_has_no_rpo():
    check = backend.check_restored_ledger([_w(1, 5.0, 5.01)], set(), t_mono=2.0)
    assert check["rpo_s"] is None and check["acked_before_target"] == 0


def test_rds_pitr_experiment_is_valid_and_in_the_catalog():
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.loader import load_experiment

    scenario = load_catalog().get("rds-pitr")
    assert scenario.experiment == "rds-pitr.yaml"
    assert scenario.extra_targets == {"lost_writes": 0.0, "rows_after_target": 0.0}
    ensure_experiment_is_valid(load_experiment(str(EXPERIMENTS_DIR / scenario.experiment)))


# ---------------------------------------------------------------- on a real sandbox


@pytest.fixture(scope="module")
def pitr_sandbox(tmp_path_factory) -> Target:
    folder = tmp_path_factory.mktemp("pitr-sandbox")
    state = folder / "state"
    path = folder / "sandbox-pitr-test.yaml"
    path.write_text(yaml.safe_dump(pitr_settings(state)))
    target = load_target(str(path))
    control.up(target)
    yield target
    control.down(target)
    for d in (
        snapshots.bucket_dir(state),
        postgres_home(state / "rds"),
        postgres_home(state / "pitr"),
    ):
        if not str(d).startswith(str(folder)):  # moved to /tmp for PostgreSQL's user
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def pitr_run(pitr_sandbox, tmp_path_factory):
    runs = tmp_path_factory.mktemp("pitr-runs")
    return run_drill("rds-pitr", pitr_sandbox, runs_dir=runs, users=2)


def _utc(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _canary(run_dir: Path) -> list[dict]:
    with (run_dir / "canary.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.sandbox
def test_pitr_drill_restores_every_acknowledged_write_before_t_and_none_after(
    pitr_run, pitr_sandbox
):
    r = pitr_run.result
    assert r["status"] == "completed", r.get("reason")
    assert pitr_run.exit_code == ExitCode.OK and r["passed"]
    m, p = r["measurements"], r["pitr"]
    assert m["lost_writes"] == 0 and p["rows_after_target"] == 0
    assert r["impact"] == {"lost_writes": 0, "rows_after_target": 0}
    # the drill's counts agree with the ledger it wrote (times relative to the restore start)
    age = r["fault"]["restore_age_s"]
    rows = _canary(pitr_run.run_dir)
    # canary.csv holds times rounded to the microsecond: a write within that of T may fall
    # either side of it in this recount, never in the drill's (it compares exact clocks)
    eps = 1e-6
    acked = [float(x["ack_rel_s"]) for x in rows if x["acked"] == "1"]
    sent = [float(x["t_rel_s"]) for x in rows]
    assert m["acked_writes"] == p["acked_before_target"] >= 20
    assert (
        sum(t <= -age - eps for t in acked)
        <= p["acked_before_target"]
        <= sum(t <= -age + eps for t in acked)
    )
    # the drill judged the ledger as it stood at its verify step; the canary kept writing
    # until the observers stopped, so only writes finished before verify began must count,
    # and none sent after it ended may (5 ms: the UTC step stamps against monotonic times)
    verify = next(s for s in r["steps"] if s["name"] == "verify")
    v0 = _utc(verify["started_at"]) - _utc(r["fault"]["injected_at"])
    v1, tol = v0 + verify["duration_s"], 0.005
    done = [(float(x["t_rel_s"]), float(x["ack_rel_s"])) for x in rows if x["acked"] == "1"]
    assert (
        sum(t > -age + eps and a < v0 - tol for t, a in done)
        <= p["written_after_target"]
        <= sum(-age - eps < t <= v1 + tol for t in sent)
    )
    assert p["written_after_target"] >= 20
    # precision: the restore is complete up to within the archive timeout of T
    bound = pitr_sandbox.require("backup.wal_archive_timeout_s")
    assert r["ground_truth"]["wal_archive_timeout_s"] == bound
    assert 0 <= m["rpo_s"] <= bound
    assert 0 <= p["last_replayed_commit_before_target_s"] <= bound


@pytest.mark.sandbox
def test_pitr_postgres_log_agrees_that_recovery_stopped_at_t(pitr_run):
    """PostgreSQL's own account: the last replayed commit is before T, the first one it
    did not replay is after T."""
    t = datetime.fromisoformat(pitr_run.result["fault"]["restore_time"].replace("Z", "+00:00"))
    text = (pitr_run.run_dir / "pitr-restore.log").read_text()
    stop = re.search(r"recovery stopping before commit of transaction \d+, time (\S+ \S+)", text)
    last = re.search(r"last completed transaction was at log time (\S+ \S+)", text)
    assert stop and last, text[-2000:]
    assert datetime.fromisoformat(last.group(1) + ":00") <= t
    assert datetime.fromisoformat(stop.group(1) + ":00") > t


@pytest.mark.sandbox
def test_pitr_steps_are_timed_and_sum_to_the_rto(pitr_run):
    r = pitr_run.result
    steps = r["steps"]
    assert [s["name"] for s in steps] == STEPS
    assert all(s["ok"] and s["duration_s"] >= 0 and s["detail"] for s in steps)
    starts = [datetime.fromisoformat(s["started_at"].replace("Z", "+00:00")) for s in steps]
    assert starts == sorted(starts)
    total, rto = sum(s["duration_s"] for s in steps), r["measurements"]["rto_s"]
    assert abs(total - rto) <= 0.05, (total, rto)
    assert 0 < r["pitr"]["restore_s"] < rto
    assert r["fault"]["action"] == "rds:RestoreDBInstanceToPointInTime"


@pytest.mark.sandbox
def test_pitr_result_json_keeps_to_the_contract(pitr_run, result_schema):
    data = json.loads((pitr_run.run_dir / "result.json").read_text())
    jsonschema.Draft202012Validator(result_schema).validate(data)
    assert {v["metric"] for v in data["verdicts"]} == {
        "rpo_s",
        "lost_writes",
        "rows_after_target",
        "steady_state_restored",
    }
    for rel in data["artifacts"].values():
        assert (pitr_run.run_dir / rel).exists(), rel


@pytest.mark.sandbox
def test_pitr_leaves_no_restored_instance_behind(pitr_run, pitr_sandbox):
    home = snapshots.restore_home(control.state_dir(pitr_sandbox))
    assert list(home.iterdir()) == []
    ident = pitr_run.result["pitr"]["identifier"]
    import psutil

    for p in psutil.process_iter(["cmdline"]):
        assert ident not in " ".join(p.info["cmdline"] or []), p


def _ctx(target: Target, run_dir: Path) -> DrillContext:
    catalog = load_catalog()
    run_dir.mkdir(parents=True, exist_ok=True)
    return DrillContext(
        target=target,
        scenario=catalog.get("rds-pitr"),
        catalog=catalog,
        run_dir=run_dir,
        users=0,
        load_workers=0,
    )


@pytest.mark.sandbox
def test_pitr_across_a_failover_holds_exactly_the_rows_up_to_t(pitr_sandbox, tmp_path):
    """A failover between the base backup and T: recovery follows the new timeline. Checked
    from the databases themselves: every row the live database holds that was written
    well before T is restored, and no restored row was written after T."""
    ctx = _ctx(pitr_sandbox, tmp_path / "run")
    ctx.start_canary()
    try:
        time.sleep(3)  # canary history on the old timeline
        backend.failover_rds(ctx)
        failover_mono = ctx.injected_mono
        control.wait_healthy(pitr_sandbox, timeout_s=60)
        deadline = time.monotonic() + 60
        while (
            control.view(pitr_sandbox).by_role("rds", "standby") == []
            or not (control.status(pitr_sandbox)["healthy"])
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(2)
        out = backend.restore_point_in_time(ctx, restore_age_s=1.0, timeout_s=60)
        handle = ctx.handles.pitr_instance
        t_utc = datetime.fromisoformat(out["restore_time"].replace("Z", "+00:00"))
        assert ctx.injected_mono - 1.0 > failover_mono  # T lies on the new timeline
        base = snapshots.list_base_backups(snapshots.bucket_dir(control.state_dir(pitr_sandbox)))
        assert base[0]["id"] == out["base_backup"] and base[0]["timeline"] < (
            ctx.record.pitr["timeline"] - 1
        )
        assert out["lost_writes"] == 0 and out["rows_after_target"] == 0
        pw = control.view(pitr_sandbox).secrets["db_password"]
        with psycopg.connect(conninfo(handle["port"], pw, "smartpos")) as conn:
            restored = dict(
                conn.execute(
                    "SELECT seq, written_at FROM canary WHERE run_id = %s", (ctx.run_id,)
                ).fetchall()
            )
        with psycopg.connect(control.view(pitr_sandbox).dsn()) as conn:
            live = dict(
                conn.execute(
                    "SELECT seq, written_at FROM canary WHERE run_id = %s", (ctx.run_id,)
                ).fetchall()
            )
        assert restored and max(restored.values()) <= t_utc
        well_before = {s for s, at in live.items() if (t_utc - at).total_seconds() > 0.2}
        assert well_before and well_before <= set(restored)
        assert set(restored) <= set(live)
    finally:
        ctx.canary.stop()
        result = backend.delete_restored_instance(ctx)
    assert result["was_running"] is True
    assert not pid_alive(handle["pid"]) and not Path(handle["dest"]).exists()
    assert (ctx.run_dir / "pitr-restore.log").is_file()
    assert backend.delete_restored_instance(ctx) == {"deleted": None}  # idempotent

"""The numbers are true: measured against what the sandbox was set to do.

- measured RTO moves with the configured recovery delay: two runs 3 s apart in delay differ
  by 3 ± 1 s in RTO (the second of slack is what a loaded 2-core machine adds to clients'
  reconnection; measured: up to 0.6 s with a CPU hog beside the suite), and no RTO is below
  its own delay;
- lost_writes equals the acknowledged-but-missing rows counted here, independently;
- with a known replication lag, rpo_s matches it within ± 0.3 s; with none, nothing is lost.
"""

from __future__ import annotations

import csv
import json

import jsonschema
import psycopg
import pytest

from mpac_drill.config import load_target
from mpac_drill.drill.runner import run_drill
from mpac_drill.errors import ExitCode
from mpac_drill.sandbox import control

pytestmark = pytest.mark.sandbox
USERS = 2


def _drill(scenario: str, runs_dir, **sets):
    target = load_target("sandbox", {k: v for k, v in sets.items()})
    return run_drill(scenario, target, runs_dir=runs_dir, users=USERS)


@pytest.fixture(scope="module")
def module_runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def rds_runs(sandbox, module_runs):
    fast = _drill("rds-failover", module_runs, **{"rds.failover_delay_s": 1.0})
    slow = _drill("rds-failover", module_runs, **{"rds.failover_delay_s": 4.0})
    lag = _drill(
        "rds-failover", module_runs, **{"rds.failover_delay_s": 1.0, "rds.replication_lag_s": 2.0}
    )
    return fast, slow, lag


@pytest.fixture(scope="module")
def ecs_runs(sandbox, module_runs):
    fast = _drill("ecs-task-failure", module_runs, **{"ecs.task_start_delay_s": 1.0})
    slow = _drill("ecs-task-failure", module_runs, **{"ecs.task_start_delay_s": 4.0})
    return fast, slow


def test_rds_rto_moves_with_failover_delay(rds_runs):
    fast, slow, _ = rds_runs
    for o in (fast, slow):
        assert o.result["status"] == "completed", o.result.get("reason")
    diff = slow.result["measurements"]["rto_s"] - fast.result["measurements"]["rto_s"]
    assert abs(diff - 3.0) <= 1.0, diff
    assert fast.result["measurements"]["rto_s"] >= 1.0  # never faster than the promotion
    assert slow.result["measurements"]["rto_s"] >= 4.0


def test_ecs_rto_moves_with_task_start_delay(ecs_runs):
    fast, slow = ecs_runs
    for o in (fast, slow):
        assert o.result["status"] == "completed", o.result.get("reason")
        assert o.exit_code == ExitCode.OK
    diff = slow.result["measurements"]["rto_s"] - fast.result["measurements"]["rto_s"]
    assert abs(diff - 3.0) <= 1.0, diff
    assert fast.result["measurements"]["rto_s"] >= 1.0  # never faster than the new task
    assert slow.result["measurements"]["rto_s"] >= 4.0


def test_rds_without_lag_loses_no_acknowledged_write(rds_runs):
    fast, slow, _ = rds_runs
    for o in (fast, slow):
        m = o.result["measurements"]
        assert m["acked_writes"] > 20
        assert m["lost_writes"] == 0
        assert m["rpo_s"] == 0.0


def _independent_loss(run_dir) -> tuple[int, float]:
    """Count acknowledged-but-missing canary rows straight from the database."""
    with (run_dir / "canary.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["acked"] == "1"]
    target = load_target("sandbox")
    view = control.view(target)
    with psycopg.connect(view.dsn(), autocommit=True) as conn:
        present = {
            r[0]
            for r in conn.execute(
                "SELECT seq FROM canary WHERE run_id = %s", (run_dir.name,)
            ).fetchall()
        }
    lost = [r for r in rows if int(r["seq"]) not in present]
    return len(lost), len(rows)


def test_rds_lag_lost_writes_match_independent_count(rds_runs):
    _, _, lag = rds_runs
    lost, acked = _independent_loss(lag.run_dir)
    m = lag.result["measurements"]
    assert m["acked_writes"] == acked
    assert m["lost_writes"] == lost
    assert lost > 10  # two seconds of writes at 20 per second


def test_rds_lag_rpo_matches_configured_lag(rds_runs):
    _, _, lag = rds_runs
    rpo = lag.result["measurements"]["rpo_s"]
    assert abs(rpo - 2.0) <= 0.3, rpo
    assert lag.result["ground_truth"]["replication_lag_s"] == 2.0
    assert lag.exit_code == ExitCode.OK  # 2 s is well inside the 15 min RPO target


def test_result_json_keeps_to_the_contract(rds_runs, ecs_runs, result_schema):
    for o in (*rds_runs, *ecs_runs):
        data = json.loads((o.run_dir / "result.json").read_text())
        jsonschema.Draft202012Validator(result_schema).validate(data)
        for rel in data["artifacts"].values():
            assert (o.run_dir / rel).exists(), rel


def test_run_folder_has_timeline_and_load_history(ecs_runs):
    o = ecs_runs[0]
    with (o.run_dir / "timeline.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    services = {r["service"] for r in rows}
    assert services == {"svc-portal", "svc-smarttab", "pgw", "mpac-obs"}
    assert any(r["ok"] == "0" and r["service"] == "svc-portal" for r in rows)
    with (o.run_dir / "load_per_second.csv").open() as fh:
        load = list(csv.DictReader(fh))
    assert (
        sum(int(r["requests"]) for r in load if r["name"] == "Aggregated")
        == (o.result["measurements"]["load"]["requests"])
    )
    assert o.result["measurements"]["load"]["requests"] > 0


def test_redis_failover_impact_checks(sandbox, module_runs):
    o = _drill("redis-failover", module_runs)
    r = o.result
    assert r["status"] == "completed", r.get("reason")
    impact = r["impact"]
    assert impact["revocation_enforced_before"] is True
    assert impact["duplicate_orders"] == 0
    assert impact["order_retries_sent"] > 0
    rto = r["measurements"]["rto_s"]
    assert rto is not None and rto >= 1.0  # Sentinel waits down_after_ms (1 s) at least
    # the portal fails open: the revoked token is accepted for as long as Redis is out
    assert abs(impact["revoked_token_accepted_s"] - rto) <= 0.6, (impact, rto)
    assert impact["rate_limit_bypassed"] > 0  # QR payments went through unchecked
    assert r["measurements"]["load"]["failures"] == 0  # users saw no error: they fail open
    assert {v["metric"] for v in r["verdicts"]} >= {
        "rto_s",
        "revoked_token_accepted_s",
        "duplicate_orders",
    }

"""Pure metric functions: quarters, verdicts, summary figures, selections."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reports import columns as C
from reports import metrics
from reports.load import load_runs


def _judged(runs_dir: Path, catalog) -> pd.DataFrame:
    return metrics.judge_runs(load_runs(runs_dir, catalog.scenarios).runs, catalog)


def test_quarter_of_offset_near_boundary_uses_utc():
    times = pd.to_datetime(
        pd.Series(["2026-10-01T01:00:00+02:00", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"]),
        utc=True,
        format="ISO8601",
    )
    assert metrics.quarter_of(times).tolist() == ["2026-Q3", "2026-Q4", "2027-Q1"]


def test_quarters_back_crosses_year_boundary():
    assert metrics.quarters_back("2027-Q1", 4) == ["2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.none(), st.floats(0, 20000, allow_nan=False)), min_size=1, max_size=6))
def test_scenario_summary_any_rtos_median_worst_equal_independent(catalog, factory_at, rtos):
    with tempfile.TemporaryDirectory() as tmp:
        factory = factory_at(Path(tmp))
        for i, rto in enumerate(rtos):
            factory(
                "rds-failover",
                started_at=f"2026-11-{i + 1:02d}T10:00:00Z",
                rto_s=rto,
                artifacts=False,
            )
        summary = metrics.scenario_summary(
            metrics.in_quarter(_judged(Path(tmp), catalog), "2026-Q4"), catalog, "2026-Q4"
        )
    row = summary.set_index(C.SCENARIO).loc["rds-failover"]
    as_inf = [float("inf") if r is None else r for r in rtos]
    assert row[C.RTO_WORST] == max(as_inf)
    assert row[C.RTO_MEDIAN] == statistics.median(as_inf)
    met = all(r is not None and r <= 300 for r in rtos)
    assert row[C.VERDICT] == (C.MET if met else C.MISSED)


def test_judge_runs_rpo_without_declared_target_uses_global_when_measured(
    make_run, runs_dir, catalog
):
    make_run("ecs-task-failure", rpo_s=1000.0)
    make_run("ecs-task-failure", started_at="2026-11-11T10:00:00Z", rpo_s=None)
    judged = _judged(runs_dir, catalog)
    assert judged[C.RPO_TARGET].tolist()[0] == catalog.global_rpo_s
    assert pd.isna(judged[C.RPO_TARGET].tolist()[1])
    assert judged[C.RPO_OK].tolist()[0] is False
    assert pd.isna(judged[C.RPO_OK].tolist()[1])


def test_judge_runs_rto_without_declared_target_bounded_by_global(make_run, runs_dir, catalog):
    make_run("rds-pitr", rto_s=15000.0, rpo_s=10.0)
    judged = _judged(runs_dir, catalog)
    assert judged[C.RTO_TARGET].tolist() == [catalog.global_rto_s]
    assert not judged[C.RTO_OK].tolist()[0]


def test_scenario_summary_only_aborted_runs_not_completed(make_run, runs_dir, catalog):
    make_run("ecs-task-failure", status="aborted", rto_s=None, reason="operator stop")
    summary = metrics.scenario_summary(_judged(runs_dir, catalog), catalog, "2026-Q4")
    row = summary.set_index(C.SCENARIO).loc["ecs-task-failure"]
    assert (row[C.N_RUNS], row[C.N_COMPLETED], row[C.VERDICT]) == (1, 0, C.NOT_COMPLETED)
    assert "ecs-task-failure" in metrics.compliance(summary).missed


def test_scenario_summary_scheduled_not_run_listed_with_reason(make_run, runs_dir, catalog):
    make_run("rds-failover", started_at="2026-01-10T10:00:00Z")
    judged = metrics.in_quarter(_judged(runs_dir, catalog), "2026-Q1")
    summary = metrics.scenario_summary(judged, catalog, "2026-Q1").set_index(C.SCENARIO)
    assert summary.index.tolist() == ["rds-failover", "region-failover"]
    assert summary.loc["region-failover", C.VERDICT] == C.NOT_RUN
    assert "no run folder" in summary.loc["region-failover", C.NOT_RUN_REASON]
    assert not summary.loc["rds-failover", C.SCHEDULED]


def test_detail_runs_many_runs_latest_and_worst_per_scenario(make_run, runs_dir, catalog):
    rtos = [40.0, 41.0, 400.0, 43.0, 44.0, 45.0, 46.0, 47.0, 48.0, 49.0, 50.0, 51.0, 52.0]
    folders = [
        make_run(started_at=f"2026-11-{i + 1:02d}T10:00:00Z", rto_s=r, artifacts=False)
        for i, r in enumerate(rtos)
    ]
    runs_q = metrics.in_quarter(_judged(runs_dir, catalog), "2026-Q4")
    chosen = metrics.detail_runs(runs_q)
    assert chosen == [make_run.read(folders[2])["run_id"], make_run.read(folders[-1])["run_id"]]


def test_violations_impact_checks_failed_listed(make_run, runs_dir, catalog):
    make_run(
        "redis-failover",
        rpo_s=None,
        impact={
            "revoked_token_accepted_s": 1000.0,
            "token_lifetime_s": 900,
            "duplicate_orders": 2,
            "rate_limit_bypassed": 5,
        },
    )
    runs_q = metrics.in_quarter(_judged(runs_dir, catalog), "2026-Q4")
    summary = metrics.scenario_summary(runs_q, catalog, "2026-Q4")
    kinds = metrics.violations(runs_q, summary, "2026-Q4")
    redis = kinds.loc[kinds[C.SCENARIO].eq("redis-failover"), C.KIND].tolist()
    assert redis == ["revoked token accepted", "duplicate orders"]

"""The synthetic run folders are what the harness writes: result.json obeys the contract."""

from __future__ import annotations

import csv

import jsonschema
import pytest


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"scenario": "ecs-task-failure", "rpo_s": None, "acked": None, "lost": None},
        {"status": "aborted", "rto_s": None, "reason": "stop condition hit"},
        {
            "scenario": "redis-failover",
            "rpo_s": None,
            "impact": {
                "revoked_token_accepted_s": 12.5,
                "duplicate_orders": 0,
                "rate_limit_bypassed": 4,
                "token_lifetime_s": 900,
            },
        },
        {
            "scenario": "region-failover",
            "rto_s": 3600.0,
            "hz": 0.1,
            "steps": [
                {
                    "name": "switch DNS",
                    "started_at": "2026-11-10T10:05:00Z",
                    "duration_s": 60.0,
                    "ok": True,
                    "detail": "us-east-1",
                }
            ],
            "findings": [{"id": "F1", "section": "1.4", "summary": "s", "evidence": "e"}],
        },
        {"schema_version": 2},
        {"schema_version": 2, "detect_s": None, "rto_s": 0.0, "inconclusive": "no sample failed"},
        {
            "schema_version": 2,
            "status": "failed",
            "verdicts": [],
            "rto_s": None,
            "reason": "fault had no effect (tasks RUNNING): nothing judged",
            "effect": {"verified": False, "evidence": "tasks RUNNING"},
            "cleanup": [{"what": "canary rows", "resource": "t", "outcome": "deleted"}],
        },
    ],
    ids=[
        "completed",
        "stateless",
        "aborted",
        "redis-impact",
        "region-steps",
        "v2-met",
        "v2-inconclusive",
        "v2-not-judged",
    ],
)
def test_factory_result_json_any_kind_valid_against_contract(make_run, contract_schema, kwargs):
    folder = make_run(**kwargs)
    jsonschema.Draft202012Validator(
        contract_schema, format_checker=jsonschema.FormatChecker()
    ).validate(make_run.read(folder))


@pytest.mark.parametrize(
    ("kwargs", "outcome"),
    [
        ({}, "met"),
        ({"rto_s": 400.0}, "missed"),
        ({"detect_s": None, "rto_s": 0.0, "inconclusive": "no sample failed"}, "inconclusive"),
        ({"status": "failed", "verdicts": [], "rto_s": None}, "not judged"),
    ],
    ids=["met", "missed", "inconclusive", "not-judged"],
)
def test_factory_v2_result_outcome_as_harness_writes(make_run, kwargs, outcome):
    result = make_run.read(make_run(schema_version=2, artifacts=False, **kwargs))
    assert result["schema_version"] == 2 and result["outcome"] == outcome
    assert result["passed"] is (outcome == "met")
    if outcome == "inconclusive":
        (verdict,) = result["verdicts"]
        assert (verdict["value"], verdict["passed"]) == (None, False)
        assert verdict["reason"] == "no sample failed"


def test_factory_canary_lost_rows_equal_lost_writes(make_run):
    folder = make_run(acked=100, lost=7, rpo_s=3.0)
    with (folder / "canary.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert sum(r["acked"] == "1" and r["present"] == "0" for r in rows) == 7

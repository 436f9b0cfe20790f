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
    ],
    ids=["completed", "stateless", "aborted", "redis-impact", "region-steps"],
)
def test_factory_result_json_any_kind_valid_against_contract(make_run, contract_schema, kwargs):
    folder = make_run(**kwargs)
    jsonschema.Draft202012Validator(
        contract_schema, format_checker=jsonschema.FormatChecker()
    ).validate(make_run.read(folder))


def test_factory_canary_lost_rows_equal_lost_writes(make_run):
    folder = make_run(acked=100, lost=7, rpo_s=3.0)
    with (folder / "canary.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert sum(r["acked"] == "1" and r["present"] == "0" for r in rows) == 7

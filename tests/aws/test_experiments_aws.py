"""The same experiment on AWS: ``ecs-task-failure`` run end to end against moto.

The AWS control plane is moto on loopback; the health endpoints the observer samples and
locust loads are the sandbox's services (also loopback), so nothing leaves this machine.
"""

from __future__ import annotations

from typing import Any

import pytest

from mpac_drill.drill.runner import run_drill
from mpac_drill.errors import ExitCode, UsageError

pytestmark = [pytest.mark.aws, pytest.mark.sandbox]


def _endpoint_overrides(sandbox) -> dict[str, Any]:
    services = sandbox.require("ecs.services")
    return {
        f"endpoints.{n}": f"http://127.0.0.1:{services[n]['port']}/health"
        for n in ("svc-portal", "svc-smarttab", "pgw")
    }  # the keys staging names


def test_ecs_experiment_on_aws_stops_the_service_tasks(
    sandbox, ecs_service, moto, tmp_path, retarget
):
    target, arns = ecs_service(tasks=3, desired=3)
    aws = retarget(
        target,
        {
            **_endpoint_overrides(sandbox),
            "account_id": "123456789012",
            "drill.warmup_s": 1,
            "drill.cooldown_s": 0.5,
            "drill.observer_interval_s": 0.1,
        },
    )
    outcome = run_drill("ecs-task-failure", aws, runs_dir=tmp_path / "runs", users=2)
    r = outcome.result
    assert r["status"] == "completed", r.get("reason")
    assert r["fault"]["action"] == "ecs:StopTask"
    assert sorted(r["fault"]["resources"]) == sorted(arns)
    tasks = moto("ecs").describe_tasks(cluster=aws.get("ecs.cluster"), tasks=arns)["tasks"]
    assert {t["lastStatus"] for t in tasks} == {"STOPPED"}
    assert r["measurements"]["rpo_s"] is None  # no canary DSN on AWS: not measured
    assert r["measurements"]["load"]["requests"] > 0
    assert outcome.exit_code == ExitCode.OK  # moto stops nothing real: no outage observed


def test_aws_account_mismatch_is_refused_before_any_fault(ecs_service, moto, tmp_path, retarget):
    target, arns = ecs_service(tasks=2, desired=2)
    aws = retarget(
        target,
        {
            "account_id": "999999999999",
            **{
                f"endpoints.{n}": f"http://127.0.0.1:9/{n}/health"
                for n in ("svc-portal", "svc-smarttab", "pgw")
            },
        },
    )
    with pytest.raises(UsageError, match="account"):
        run_drill("ecs-task-failure", aws, runs_dir=tmp_path / "runs", users=0)
    tasks = moto("ecs").describe_tasks(cluster=aws.get("ecs.cluster"), tasks=arns)["tasks"]
    assert {t["lastStatus"] for t in tasks} == {"RUNNING"}


def _aws_drill_target(sandbox, target, **extra):
    from tests.aws.conftest import target_with

    return target_with(
        str(target.path),
        target.path.parent,
        {
            **target.overrides,
            **_endpoint_overrides(sandbox),
            "account_id": "123456789012",
            "drill.warmup_s": 1,
            "drill.cooldown_s": 0.5,
            "drill.observer_interval_s": 0.1,
            **extra,
        },
    )


def test_cloudwatch_alarm_in_alarm_aborts_before_the_fault(sandbox, ecs_service, moto, tmp_path):
    target, arns = ecs_service(tasks=2, desired=2)
    cw = moto("cloudwatch")
    cw.put_metric_alarm(
        AlarmName="mpac-5xx-high",
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(AlarmName="mpac-5xx-high", StateValue="ALARM", StateReason="test")
    aws = _aws_drill_target(sandbox, target, **{"stop.cloudwatch_alarms": ["mpac-5xx-high"]})
    outcome = run_drill("ecs-task-failure", aws, runs_dir=tmp_path / "runs", users=2)
    r = outcome.result
    assert r["status"] == "aborted"
    assert "mpac-5xx-high" in r["reason"]
    assert outcome.exit_code == ExitCode.TARGET_MISSED
    tasks = moto("ecs").describe_tasks(cluster=aws.get("ecs.cluster"), tasks=arns)["tasks"]
    assert {t["lastStatus"] for t in tasks} == {"RUNNING"}  # no fault after the stop


def test_fault_that_fails_still_plays_rollbacks(sandbox, ecs_service, tmp_path):
    target, _ = ecs_service(tasks=1, desired=1)
    aws = _aws_drill_target(
        sandbox,
        target,
        **{"rds.smartpos.identifier": "no-such-db", "database.dsn_ssm_parameter": None},
    )  # no canary
    outcome = run_drill("rds-failover", aws, runs_dir=tmp_path / "runs", users=2)
    r = outcome.result
    assert r["status"] == "failed"
    assert "no-such-db" in r["reason"]
    assert outcome.exit_code == ExitCode.HARNESS
    import json

    journal = json.loads((outcome.run_dir / "journal.json").read_text())
    assert [rb["activity"]["name"] for rb in journal["rollbacks"]] == [
        "stop-observers",
        "stop-load",
        "await-recovery",
    ]
    assert (outcome.run_dir / "load_per_second.csv").is_file()  # load stopped and merged

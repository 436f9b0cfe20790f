"""The same experiment on AWS: ``ecs-task-failure`` run end to end against moto.

The AWS control plane is moto on loopback; the health endpoints the observer samples and
locust loads are the sandbox's services (also loopback), so nothing leaves this machine.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
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
    # moto stopped the tasks (the fault took effect) but the sandbox's services the observer
    # samples never failed: RTO inconclusive, never a pass (issue 11, row 4)
    assert r["fault"]["effect"]["verified"]
    (rto,) = [v for v in r["verdicts"] if v["metric"] == "rto_s"]
    assert rto["outcome"] == "inconclusive" and not rto["passed"] and rto["value"] is None
    assert "no sampled endpoint ever failed" in rto["reason"] and "svc-portal" in rto["reason"]
    assert r["outcome"] == "inconclusive" and not r["passed"]
    assert outcome.exit_code == ExitCode.TARGET_MISSED


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
        Path(tempfile.mkdtemp(prefix="mpac-drill-test-")),  # never beside the shipped targets
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
    # a stop condition before the fault judges nothing: an error, not a missed target
    assert r["verdicts"] == [] and r["outcome"] == "not judged"
    assert outcome.exit_code == ExitCode.HARNESS
    tasks = moto("ecs").describe_tasks(cluster=aws.get("ecs.cluster"), tasks=arns)["tasks"]
    assert {t["lastStatus"] for t in tasks} == {"RUNNING"}  # no fault after the stop


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("rds.smartpos.identifier", "no-such-db", "RDS DB instance no-such-db (ap-northeast-1)"),
        ("ecs.cluster", "mpac-smartpos-typo", "ECS cluster mpac-smartpos-typo (ap-northeast-1)"),
    ],
)
def test_a_mistyped_resource_is_refused_before_load_or_fault(
    sandbox, ecs_service, tmp_path, key, value, fragment
):
    from mpac_drill.errors import UsageError

    target, arns = ecs_service(tasks=1, desired=1)
    aws = _aws_drill_target(sandbox, target, **{key: value, "database.dsn_ssm_parameter": None})
    scenario = "rds-failover" if key.startswith("rds") else "ecs-task-failure"
    with pytest.raises(UsageError, match="does not exist") as err:
        run_drill(scenario, aws, runs_dir=tmp_path / "runs", users=2)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "runs").exists()  # nothing written: no warm-up, no load, no fault


def test_an_instance_without_multi_az_is_not_ready_exit_3(sandbox, ecs_service, moto, tmp_path):
    from mpac_drill.errors import HarnessError

    name = f"single-az-{uuid.uuid4().hex[:6]}"
    moto("rds").create_db_instance(
        DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.t3.micro",
        MasterUsername="mpac", MasterUserPassword="not-a-secret-1", AllocatedStorage=20,
        MultiAZ=False,
    )  # fmt: skip
    target, _ = ecs_service(tasks=1, desired=1)
    aws = _aws_drill_target(
        sandbox, target, **{"rds.smartpos.identifier": name, "database.dsn_ssm_parameter": None}
    )
    with pytest.raises(HarnessError, match="Multi-AZ off: not Multi-AZ, nothing to fail over"):
        run_drill("rds-failover", aws, runs_dir=tmp_path / "runs", users=0)

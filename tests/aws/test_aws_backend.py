"""The AWS client factory and backend, against a moto server on loopback (see conftest)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.history import BaseHistoryHandler, get_global_history_recorder
from botocore.stub import Stubber
from chaoslib.exceptions import ActivityFailed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpac_drill import aws
from mpac_drill.config import Target, load_target
from mpac_drill.errors import UsageError
from mpac_drill.platform.aws import alarms, ecs, elasticache
from mpac_drill.platform.aws import rds as aws_rds

pytestmark = pytest.mark.aws
REGION = "ap-northeast-1"  # staging's aws.region
UNROUTABLE = "http://127.0.0.1:9"  # loopback discard port: nothing answers


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class _Wire(BaseHistoryHandler):
    """botocore's own record of every HTTP request it sends."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.active = True

    def emit(self, event_type: str, payload: Any, source: str) -> None:
        if self.active and event_type == "HTTP_REQUEST":
            self.requests.append(payload)


@pytest.fixture
def wire() -> Iterator[_Wire]:
    handler, recorder = _Wire(), get_global_history_recorder()
    recorder.add_handler(handler)
    recorder.enable()
    yield handler
    handler.active = False
    recorder.disable()


def _bodies(wire: _Wire, action: str) -> list[str]:
    bodies = [
        r["body"].decode() if isinstance(r["body"], bytes) else str(r["body"])
        for r in wire.requests
    ]
    return [b for b in bodies if f"Action={action}" in b]


def _task_states(moto: Callable, target: Target, arns: list[str]) -> dict[str, tuple[str, str]]:
    tasks = moto("ecs").describe_tasks(cluster=target.get("ecs.cluster"), tasks=arns)
    return {t["taskArn"]: (t["lastStatus"], t["desiredStatus"]) for t in tasks["tasks"]}


# ---------------------------------------------------------------- ECS


def test_stop_tasks_all_stops_every_running_task(moto: Callable, ecs_service: Callable) -> None:
    target, arns = ecs_service(tasks=3)

    result = ecs.stop_tasks(target, "svc-portal", reason="drill 42")

    assert result["running_before"] == 3
    assert sorted(result["stopped"]) == sorted(arns)
    assert (result["cluster"], result["service"], result["region"]) == (
        target.get("ecs.cluster"),
        "svc-portal",
        REGION,
    )
    assert set(_task_states(moto, target, arns).values()) == {("STOPPED", "STOPPED")}
    stopped = moto("ecs").describe_tasks(cluster=result["cluster"], tasks=arns)
    assert {t["stoppedReason"] for t in stopped["tasks"]} == {"drill 42"}


def test_stop_tasks_count_stops_exactly_that_many(moto: Callable, ecs_service: Callable) -> None:
    target, arns = ecs_service(tasks=4)

    result = ecs.stop_tasks(target, "svc-portal", count=2)

    states = _task_states(moto, target, arns)
    assert len(result["stopped"]) == 2
    assert [a for a, s in states.items() if s == ("STOPPED", "STOPPED")] == result["stopped"]
    left = moto("ecs").list_tasks(cluster=result["cluster"], desiredStatus="RUNNING")
    assert len(left["taskArns"]) == 2


@pytest.mark.parametrize(("percent", "expected"), [(30, 2), (1, 1), (100, 4)])
def test_stop_tasks_percent_rounds_up_to_at_least_one(
    moto: Callable, ecs_service: Callable, percent: float, expected: int
) -> None:
    target, arns = ecs_service(tasks=4)

    result = ecs.stop_tasks(target, "svc-portal", percent=percent)

    stopped = [a for a, s in _task_states(moto, target, arns).items() if s[0] == "STOPPED"]
    assert len(result["stopped"]) == len(stopped) == expected


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(running=st.integers(1, 60), percent=st.floats(0.01, 100))
def test_stop_tasks_percent_stops_ceil_share_never_none_never_more(
    aws_target: Target, running: int, percent: float
) -> None:
    arns = [f"arn:aws:ecs:ap-northeast-1:111111111111:task/c/{i}" for i in range(running)]
    dry = aws.DryRun(responses={"ecs.ListTasks": {"taskArns": arns}})

    result = ecs.stop_tasks(aws_target, "svc-portal", percent=percent, dry_run=dry)

    assert len(result["stopped"]) == min(running, max(1, math.ceil(running * percent / 100)))
    assert [c["params"]["task"] for c in dry.calls[1:]] == result["stopped"]


def test_stop_tasks_no_running_task_raises(ecs_service: Callable) -> None:
    target, _ = ecs_service(tasks=0)
    with pytest.raises(ActivityFailed, match="no running task to stop"):
        ecs.stop_tasks(target, "svc-portal")


@pytest.mark.parametrize(
    "share",
    [{"count": 1, "percent": 50}, {"count": 0}, {"percent": 0}, {"percent": 150}, {"count": True}],
)
def test_stop_tasks_bad_share_is_usage_error(aws_target: Target, share: dict) -> None:
    with pytest.raises(UsageError):
        ecs.stop_tasks(aws_target, "svc-portal", **share)


def test_tasks_running_and_wait_service_stable_read_the_service(ecs_service: Callable) -> None:
    target, _ = ecs_service(tasks=0, desired=2, running=2)

    assert ecs.tasks_running(target, "svc-portal") == 2
    result = ecs.wait_service_stable(target, "svc-portal", timeout_s=5)
    assert result["stable"] and result["desired"] == result["running"] == 2


def test_wait_service_stable_times_out_unstable(ecs_service: Callable) -> None:
    target, _ = ecs_service(tasks=0, desired=2, running=0)

    result = ecs.wait_service_stable(target, "svc-portal", timeout_s=0.3, poll_s=0.1)

    assert not result["stable"]
    assert (result["desired"], result["running"]) == (2, 0)
    assert result["waited_s"] >= 0.3


def test_tasks_running_missing_service_names_it(ecs_service: Callable) -> None:
    target, _ = ecs_service(tasks=0)
    with pytest.raises(
        ActivityFailed,
        match=r"ECS service svc-nope not found in cluster .*"
        r"\(ap-northeast-1\)",
    ):
        ecs.tasks_running(target, "svc-nope")


# ---------------------------------------------------------------- RDS


def test_failover_rds_instance_sends_force_failover(
    moto: Callable, make_target: Callable, wire: _Wire
) -> None:
    name = unique("mpac-smartpos")
    moto("rds").create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="mpac",
        MasterUserPassword="not-a-secret-1",
        MultiAZ=True,
    )
    target = make_target(**{"rds.smartpos.identifier": name})

    result = aws_rds.failover_rds(target, "smartpos")

    (sent,) = _bodies(wire, "RebootDBInstance")
    assert f"DBInstanceIdentifier={name}" in sent and "ForceFailover=true" in sent
    assert result["api_call"] == "reboot-db-instance --force-failover"
    assert result["runbook_call"] == "failover-db-cluster"
    assert result["runbook_call_correct"] is False
    assert result["primary_before"] and result["primary_before"]["instance"] == name
    # moto accepts ForceFailover but does not move the instance to another AZ
    assert result["primary_after"] == result["primary_before"]


def test_failover_rds_cluster_moves_the_writer(moto: Callable, make_target: Callable) -> None:
    rds, name = moto("rds"), unique("mpac-smartpos")
    rds.create_db_cluster(
        DBClusterIdentifier=name,
        Engine="aurora-postgresql",
        MasterUsername="mpac",
        MasterUserPassword="not-a-secret-1",
    )
    for suffix, zone in (("a", "ap-northeast-1a"), ("c", "ap-northeast-1c")):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{name}-{suffix}",
            DBClusterIdentifier=name,
            Engine="aurora-postgresql",
            DBInstanceClass="db.r6g.large",
            AvailabilityZone=zone,
        )
    target = make_target(**{"rds.smartpos.identifier": name, "rds.smartpos.type": "cluster"})

    result = aws_rds.failover_rds(target)

    assert result["api_call"] == result["runbook_call"] == "failover-db-cluster"
    assert result["runbook_call_correct"] is True
    before, after = result["primary_before"], result["primary_after"]
    assert before and after and before["instance"] == f"{name}-a"
    assert after["instance"] == f"{name}-c" and after["availability_zone"] == "ap-northeast-1c"
    assert aws_rds.rds_primary(target) == after


def test_failover_rds_missing_instance_is_one_line_naming_it(aws_target: Target) -> None:
    with pytest.raises(aws.AwsCallFailed) as caught:
        aws_rds.failover_rds(aws_target)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "rds DescribeDBInstances on DBInstanceIdentifier="
        "mpac-smartpos-staging in ap-northeast-1 failed: DBInstanceNotFound"
    )
    assert caught.value.code == "DBInstanceNotFound"


# ---------------------------------------------------------------- ElastiCache (Stubber)

_GROUP = {
    "ReplicationGroupId": "mpac-smartpos-staging",
    "Status": "available",
    "NodeGroups": [
        {
            "NodeGroupId": "0001",
            "NodeGroupMembers": [
                {"CacheClusterId": "mpac-smartpos-staging-001", "CurrentRole": "primary"},
                {"CacheClusterId": "mpac-smartpos-staging-002", "CurrentRole": "replica"},
            ],
        }
    ],
}


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[Stubber], None]], list]:
    """Route the backend's clients (built by the real factory) through a Stubber."""

    def install(arrange: Callable[[Stubber], None]) -> list[Stubber]:
        stubbers: list[Stubber] = []

        def factory(service: str, target: Target, **kwargs: Any) -> Any:
            made = aws.client(service, target, **kwargs)
            stubber = Stubber(made)
            arrange(stubber)
            stubber.activate()
            stubbers.append(stubber)
            return made

        monkeypatch.setattr(elasticache, "client", factory)
        return stubbers

    return install


def test_failover_elasticache_sends_test_failover_for_the_node_group(
    aws_target: Target, stubbed: Callable
) -> None:
    group = {"ReplicationGroupId": "mpac-smartpos-staging"}

    def arrange(stub: Stubber) -> None:
        stub.add_response("describe_replication_groups", {"ReplicationGroups": [_GROUP]}, group)
        stub.add_response(
            "test_failover",
            {"ReplicationGroup": {**group, "Status": "modifying"}},
            {**group, "NodeGroupId": "0001"},
        )

    stubbers = stubbed(arrange)

    result = elasticache.failover_elasticache(aws_target)

    (stubber,) = stubbers
    stubber.assert_no_pending_responses()
    assert result == {
        "replication_group": "mpac-smartpos-staging",
        "node_group": "0001",
        "region": REGION,
        "primary_before": "mpac-smartpos-staging-001",
        "status": "modifying",
        "dry_run": False,
    }


def test_failover_elasticache_client_error_names_group_and_region(
    aws_target: Target, stubbed: Callable
) -> None:
    def arrange(stub: Stubber) -> None:
        stub.add_response("describe_replication_groups", {"ReplicationGroups": [_GROUP]})
        stub.add_client_error(
            "test_failover",
            "TestFailoverNotAvailableFault",
            "Test failover is not available\nfor this group",
            400,
        )

    stubbed(arrange)

    with pytest.raises(ActivityFailed) as caught:
        elasticache.failover_elasticache(aws_target)
    assert str(caught.value) == (
        "elasticache TestFailover on ReplicationGroupId=mpac-smartpos-staging NodeGroupId=0001 "
        "in ap-northeast-1 failed: TestFailoverNotAvailableFault: Test failover is not "
        "available for this group"
    )


def test_failover_elasticache_unknown_node_group_refused(
    make_target: Callable, stubbed: Callable
) -> None:
    stubbed(
        lambda stub: stub.add_response(
            "describe_replication_groups", {"ReplicationGroups": [_GROUP]}
        )
    )
    with pytest.raises(ActivityFailed, match="has no node group 0002"):
        elasticache.failover_elasticache(make_target(**{"elasticache.node_group": "0002"}))


# ---------------------------------------------------------------- CloudWatch, STS


def test_alarms_in_alarm_returns_only_firing_alarms(moto: Callable, aws_target: Target) -> None:
    cloudwatch, names = moto("cloudwatch"), [unique("alarm") for _ in range(3)]
    for name in names:
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="RunningTaskCount",
            Namespace="ECS/ContainerInsights",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="LessThanThreshold",
        )
    cloudwatch.set_alarm_state(AlarmName=names[1], StateValue="ALARM", StateReason="drill")

    assert alarms.alarms_in_alarm(aws_target, names) == [names[1]]
    assert alarms.alarms_in_alarm(aws_target, []) == []


def test_account_id_from_sts(aws_target: Target) -> None:
    assert alarms.account_id(aws_target) == "123456789012"  # moto's default account


def test_role_arn_is_assumed_through_the_endpoint(
    write_target: Callable, moto_url: str, wire: _Wire
) -> None:
    target = write_target(
        endpoint_url=moto_url, role_arn="arn:aws:iam::123456789012:role/mpac-drill"
    )

    assert alarms.account_id(target) == "123456789012"
    (sent,) = _bodies(wire, "AssumeRole")
    assert "RoleSessionName=mpac-drill-staging" in sent
    assert all(r["url"].startswith(moto_url) for r in wire.requests)


# ---------------------------------------------------------------- dry run


@pytest.mark.parametrize("endpoint", [UNROUTABLE, None])
@pytest.mark.usefixtures("no_credentials")
def test_dry_run_records_calls_and_makes_none(
    write_target: Callable, loopback_only: list, endpoint: str | None
) -> None:
    target = write_target(
        endpoint_url=endpoint,
        profile="absent-profile",
        role_arn="arn:aws:iam::222222222222:role/never-assumed",
    )
    task = "arn:aws:ecs:ap-northeast-1:111111111111:task/mpac-smartpos-staging/abc"
    dry = aws.DryRun(responses={"ecs.ListTasks": {"taskArns": [task]}})

    stopped = ecs.stop_tasks(target, "svc-portal", dry_run=dry)
    failed_over = aws_rds.failover_rds(target, dry_run=dry)
    cache = elasticache.failover_elasticache(target, dry_run=dry)
    assert alarms.alarms_in_alarm(target, ["ECS-TaskCount-Low"], dry_run=dry) == []
    assert ecs.tasks_running(target, "svc-portal", dry_run=dry) == 0

    assert loopback_only == []  # not one connection, not even to loopback
    assert stopped["stopped"] == [task] and stopped["dry_run"]
    assert failed_over["dry_run"] and failed_over["primary_before"] is None
    assert cache["node_group"] == "0001" and cache["primary_before"] is None
    assert [(c["service"], c["operation"]) for c in dry.calls] == [
        ("ecs", "ListTasks"),
        ("ecs", "StopTask"),
        ("rds", "DescribeDBInstances"),
        ("rds", "RebootDBInstance"),
        ("rds", "DescribeDBInstances"),
        ("elasticache", "DescribeReplicationGroups"),
        ("elasticache", "TestFailover"),
        ("cloudwatch", "DescribeAlarms"),
        ("ecs", "DescribeServices"),
    ]
    assert dry.calls[3] == {
        "service": "rds",
        "operation": "RebootDBInstance",
        "region": REGION,
        "params": {"DBInstanceIdentifier": "mpac-smartpos-staging", "ForceFailover": True},
    }
    assert dry.render()[1] == (
        "dry-run ecs StopTask (ap-northeast-1) cluster=mpac-smartpos-staging "
        f'task={task} reason="mpac-drill ecs-task-failure"'
    )


def test_dry_run_redacts_secret_parameters(aws_target: Target) -> None:
    dry = aws.DryRun()
    ssm = aws.client("ssm", aws_target, region="us-east-1", dry_run=dry)

    ssm.put_parameter(
        Name="/mpac-smartpos/staging/DATABASE_URL",
        Value="postgresql://u:pw@h/db",
        Type="SecureString",
        Overwrite=True,
    )

    assert dry.calls[0]["region"] == "us-east-1"
    assert dry.calls[0]["params"]["Value"] == "***"
    assert "pw@" not in "\n".join(dry.render())


# ---------------------------------------------------------------- errors at the boundary


def test_client_error_is_one_line_activity_failed_naming_cluster(aws_target: Target) -> None:
    with pytest.raises(ActivityFailed) as caught:
        ecs.stop_tasks(aws_target, "svc-portal")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "ecs ListTasks on cluster=mpac-smartpos-staging "
        "serviceName=svc-portal in ap-northeast-1 failed: "
        "ClusterNotFoundException"
    )


@pytest.mark.usefixtures("no_credentials")
def test_no_credentials_is_one_clear_line(aws_target: Target) -> None:
    with pytest.raises(ActivityFailed) as caught:
        ecs.tasks_running(aws_target, "svc-portal")
    assert str(caught.value) == "no AWS credentials found for target staging (profile default)"


def test_missing_profile_is_one_clear_line(write_target: Callable, moto_url: str) -> None:
    target = write_target(endpoint_url=moto_url, profile="mpac-staging")
    with pytest.raises(
        ActivityFailed,
        match=r"^AWS profile 'mpac-staging' of target staging "
        r"is not in the AWS config files$",
    ):
        aws.client("ecs", target)


def test_unreachable_endpoint_is_one_line_naming_region(write_target: Callable) -> None:
    target = write_target(endpoint_url=UNROUTABLE, max_attempts=1)
    with pytest.raises(aws.AwsCallFailed) as caught:
        alarms.alarms_in_alarm(target, ["ECS-TaskCount-Low"])
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "cloudwatch DescribeAlarms on AlarmNames=ECS-TaskCount-Low "
        "in ap-northeast-1 failed: EndpointConnectionError"
    )
    assert UNROUTABLE in message


def test_sandbox_target_is_refused() -> None:
    with pytest.raises(UsageError, match="not an aws one"):
        aws.client("ecs", load_target("sandbox"))


def test_dry_run_shows_what_is_not_secret_and_masks_what_is(aws_target: Target) -> None:
    dry = aws.DryRun()
    route53 = aws.client("route53", aws_target, dry_run=dry)
    route53.change_resource_record_sets(
        HostedZoneId="Z1",
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
            "Name": "api.staging.example.com", "Type": "CNAME", "TTL": 60,
            "ResourceRecords": [{"Value": "dr-alb.us-east-1.elb.amazonaws.com"}]}}]},
    )  # fmt: skip
    ssm = aws.client("ssm", aws_target, dry_run=dry)
    ssm.put_parameter(Name="/x/PGW_BASE_URL", Value="https://pgw-dr.example.com", Type="String")
    ssm.put_parameter(Name="/x/URL", Value="https://svc:hunter2@pgw.example.com/", Type="String")
    ssm.add_tags_to_resource(
        ResourceType="Parameter", ResourceId="/x/URL", Tags=[{"Key": "owner", "Value": "sre-team"}]
    )

    rendered = "\n".join(dry.render())
    assert "dr-alb.us-east-1.elb.amazonaws.com" in rendered  # where traffic would go
    assert "https://pgw-dr.example.com" in rendered and "sre-team" in rendered
    assert "hunter2" not in rendered and "https://svc:***@pgw.example.com/" in rendered

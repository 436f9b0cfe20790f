"""Region-level DR on AWS (runbook §1.4, §1.5), against the moto server of conftest."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from chaoslib.exceptions import ActivityFailed

from mpac_drill import aws
from mpac_drill.config import Target, load_target
from mpac_drill.errors import UsageError
from mpac_drill.platform.aws import dr as aws_dr
from mpac_drill.platform.aws import dr_rds as aws_dr_rds
from tests.aws.test_aws_backend import wire  # noqa: F401 - the wire fixture

pytestmark = pytest.mark.aws
PRIMARY, DR = "ap-northeast-1", "us-east-1"  # staging's aws.region, aws.dr_region


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def dr(moto_url: str) -> Callable[..., Any]:
    """``dr("rds")``: a plain boto3 client on moto in the DR region (``region=`` for others)."""
    return lambda service, region=DR: boto3.client(
        service,
        region_name=region,
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _db(rds: Any, name: str) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="mpac",
        MasterUserPassword="not-a-secret-1",
    )


def _snapshot(rds: Any, name: str, snapshot: str) -> dict[str, Any]:
    return rds.create_db_snapshot(DBInstanceIdentifier=name, DBSnapshotIdentifier=snapshot)[
        "DBSnapshot"
    ]


# ---------------------------------------------------------------- RDS


def test_latest_snapshot_is_the_newest_the_dr_region_holds_for_that_instance(
    dr: Callable, make_target: Callable
) -> None:
    name, other = unique("mpac-smartpos"), unique("other")
    _db(dr("rds"), name)  # moto also takes an automated snapshot now
    _snapshot(dr("rds"), name, f"z-older-{name}")
    newest = _snapshot(dr("rds"), name, f"a-newer-{name}")  # names sort the other way
    _db(dr("rds"), other)
    _snapshot(dr("rds"), other, f"later-{other}")  # another instance's, taken after
    _db(dr("rds", PRIMARY), name)  # the primary region's own, taken last
    in_primary = _snapshot(dr("rds", PRIMARY), name, f"primary-{name}")
    target = make_target(**{"rds.smartpos.identifier": name})

    found = aws_dr.latest_snapshot(target)

    assert found is not None
    assert (found["snapshot_id"], found["region"], found["source_instance"]) == (
        f"a-newer-{name}",
        DR,
        name,
    )
    assert found["snapshot_type"] == "manual"
    created = newest["SnapshotCreateTime"].astimezone(UTC)
    assert datetime.fromisoformat(found["data_as_of"].replace("Z", "+00:00")) == created
    assert found["snapshot_create_time"] == found["data_as_of"]
    json.dumps(found)
    again = aws_dr.latest_snapshot(target, region=PRIMARY)
    assert again is not None and again["snapshot_id"] == in_primary["DBSnapshotIdentifier"]
    assert (
        aws_dr.latest_snapshot(make_target(**{"rds.smartpos.identifier": unique("none")})) is None
    )


def test_latest_snapshot_orders_copies_by_the_time_of_their_data(make_target: Callable) -> None:
    t = datetime(2027, 1, 1, 12, tzinfo=UTC)
    copy_of_old = {
        "DBSnapshotIdentifier": "copy-of-10h",
        "DBInstanceIdentifier": "mpac-smartpos-staging",
        "Status": "available",
        "SnapshotType": "manual",
        "SnapshotCreateTime": t,
        "OriginalSnapshotCreateTime": t - timedelta(hours=2),
    }
    newer = {
        **copy_of_old,
        "DBSnapshotIdentifier": "copy-of-11h",
        "SnapshotCreateTime": t - timedelta(minutes=30),
        "OriginalSnapshotCreateTime": t - timedelta(hours=1),
    }
    copying = {
        **newer,
        "DBSnapshotIdentifier": "still-copying",
        "Status": "creating",
        "OriginalSnapshotCreateTime": t,
    }
    dry = aws.DryRun(
        responses={"rds.DescribeDBSnapshots": {"DBSnapshots": [copy_of_old, newer, copying]}}
    )

    found = aws_dr.latest_snapshot(make_target(), dry_run=dry)

    assert found is not None and found["snapshot_id"] == "copy-of-11h"
    assert found["data_as_of"] == "2027-01-01T11:00:00.000000Z"
    assert found["snapshot_create_time"] == "2027-01-01T11:30:00.000000Z"
    assert dry.calls[0]["region"] == DR


def test_restore_from_snapshot_creates_the_instance_in_the_dr_region_only(
    dr: Callable, make_target: Callable, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique("mpac-smartpos")
    _db(dr("rds"), name)
    _snapshot(dr("rds"), name, f"snap-{name}")
    target = make_target(**{"rds.smartpos.identifier": name})
    caplog.set_level(logging.INFO, logger="mpac_drill")

    result = aws_dr.restore_from_snapshot(
        target, "smartpos", f"snap-{name}", timeout_s=30, poll_s=0.1
    )

    new_id = result["identifier"]
    assert re.fullmatch(rf"{name}-dr-\d{{14}}", new_id)
    assert result["region"] == DR and result["available"] and not result["dry_run"]
    assert result["instance_class"] == "db.r6g.large"
    assert result["endpoint_address"] and DR in result["endpoint_address"]
    assert result["endpoint_port"] == 5432
    made = dr("rds").describe_db_instances(DBInstanceIdentifier=new_id)["DBInstances"][0]
    assert (made["DBInstanceClass"], made["DBInstanceStatus"]) == ("db.r6g.large", "available")
    in_primary = {
        i["DBInstanceIdentifier"] for i in dr("rds", PRIMARY).describe_db_instances()["DBInstances"]
    }
    assert new_id not in in_primary and name not in in_primary
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert f"snap-{name} -> {new_id}" in line and DR in line


def _stub_restore(monkeypatch: pytest.MonkeyPatch, statuses: list[str]) -> list[Stubber]:
    """RDS clients of the real factory, answering the restore with ``statuses[0]`` and
    each following DescribeDBInstances with the next status (the last one with an endpoint)."""
    stubbers: list[Stubber] = []

    def factory(service: str, target: Target, **kwargs: Any) -> Any:
        made = aws.client(service, target, **kwargs)
        stubber = Stubber(made)
        inst = {"DBInstanceIdentifier": "mpac-smartpos-staging-dr-1"}
        stubber.add_response(
            "restore_db_instance_from_db_snapshot",
            {"DBInstance": {**inst, "DBInstanceStatus": statuses[0]}},
        )
        for status in statuses[1:]:
            endpoint = {"Endpoint": {"Address": "dr.us-east-1.rds.example", "Port": 5432}}
            stubber.add_response(
                "describe_db_instances",
                {"DBInstances": [{**inst, "DBInstanceStatus": status, **endpoint}]},
            )
        stubber.activate()
        stubbers.append(stubber)
        return made

    monkeypatch.setattr(aws_dr_rds, "client", factory)  # the restore's module
    return stubbers


def test_restore_polls_until_available(aws_target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    stubbers = _stub_restore(monkeypatch, ["creating", "creating", "available"])

    result = aws_dr.restore_from_snapshot(
        aws_target, "smartpos", "snap", poll_s=0.01, new_identifier="mpac-smartpos-staging-dr-1"
    )

    (stubber,) = stubbers
    stubber.assert_no_pending_responses()  # the restore call, then two polls
    assert result["available"] and result["status"] == "available"
    assert (result["endpoint_address"], result["endpoint_port"]) == (
        "dr.us-east-1.rds.example",
        5432,
    )


def test_restore_stops_at_a_failed_state_and_at_the_timeout(
    aws_target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stub_restore(monkeypatch, ["creating", "incompatible-restore"])
    with pytest.raises(ActivityFailed, match=r"snap .*\(us-east-1\) ended incompatible-restore"):
        aws_dr.restore_from_snapshot(aws_target, "smartpos", "snap", poll_s=0.01)

    _stub_restore(monkeypatch, ["creating", "creating", "creating"])
    late = aws_dr.restore_from_snapshot(aws_target, "smartpos", "snap", timeout_s=0.05, poll_s=0.03)
    assert not late["available"] and late["status"] == "creating"
    assert late["waited_s"] >= 0.05


# ---------------------------------------------------------------- Route53, SSM, ECS


def test_switch_record_upserts_the_record_and_keeps_the_old_value(
    dr: Callable, make_target: Callable
) -> None:
    route53 = dr("route53")
    zone = route53.create_hosted_zone(Name="mpac-cloud.com", CallerReference=unique("ref"))
    zid = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
    route53.change_resource_record_sets(
        HostedZoneId=zid,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": "api.staging.mpac-cloud.com",
                        "Type": "CNAME",
                        "TTL": 300,
                        "ResourceRecords": [{"Value": "primary.ap-northeast-1.elb.amazonaws.com"}],
                    },
                }
            ]
        },
    )
    target = make_target(
        **{"route53.hosted_zone_id": zid, "route53.record": "api.staging.mpac-cloud.com"}
    )

    change = aws_dr.switch_record(target, to_dns_name="dr.us-east-1.elb.amazonaws.com")

    assert change["previous"] == ["primary.ap-northeast-1.elb.amazonaws.com"]
    assert change["change_id"] and change["status"] in ("PENDING", "INSYNC")
    assert (change["hosted_zone_id"], change["record"], change["ttl"]) == (
        zid,
        "api.staging.mpac-cloud.com",
        60,
    )
    records = route53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"]
    (cname,) = [r for r in records if r["Type"] == "CNAME"]
    assert cname["Name"].rstrip(".") == "api.staging.mpac-cloud.com" and cname["TTL"] == 60
    assert cname["ResourceRecords"] == [{"Value": "dr.us-east-1.elb.amazonaws.com"}]


def test_put_parameter_stores_a_secure_string_in_the_dr_region_and_never_shows_it(
    dr: Callable, make_target: Callable, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"/mpac-smartpos/{unique('staging')}/DATABASE_URL"
    secret = f"postgresql://mpac:{uuid.uuid4().hex}@db.us-east-1.example/smartpos"
    target = make_target(**{"ssm.database_url": name})
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="mpac_drill")

    result = aws_dr.put_parameter(target, "database_url", secret)

    stored = dr("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert (stored["Type"], stored["Value"]) == ("SecureString", secret)
    with pytest.raises(ClientError, match="ParameterNotFound"):
        dr("ssm", PRIMARY).get_parameter(Name=name)
    assert (result["name"], result["region"], result["type"], result["version"]) == (
        name,
        DR,
        "SecureString",
        1,
    )
    assert secret not in json.dumps(result)
    assert secret not in caplog.text
    assert any(name in r.getMessage() for r in caplog.records if r.name == "mpac_drill")
    assert aws_dr.put_parameter(target, "database_url", secret)["version"] == 2  # overwrite


def test_force_new_deployment_sends_the_flag_and_ecs_starts_a_deployment(
    dr: Callable,
    make_target: Callable,
    wire,  # noqa: F811
) -> None:
    ecs, cluster = dr("ecs"), unique("mpac-smartpos")
    ecs.create_cluster(clusterName=cluster)
    definition = ecs.register_task_definition(
        family="svc-portal",
        containerDefinitions=[{"name": "app", "image": "svc-portal:1", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=cluster, serviceName="svc-portal", taskDefinition=definition, desiredCount=1
    )
    before = ecs.describe_services(cluster=cluster, services=["svc-portal"])
    target = make_target(**{"ecs.cluster": cluster})

    result = aws_dr.force_new_deployment(target, "svc-portal")

    (sent,) = [
        json.loads(r["body"])
        for r in wire.requests
        if r["headers"].get("X-Amz-Target", b"").endswith(b".UpdateService")
    ]
    assert sent == {"cluster": cluster, "service": "svc-portal", "forceNewDeployment": True}
    after = ecs.describe_services(cluster=cluster, services=["svc-portal"])
    old_id = before["services"][0]["deployments"][0]["id"]
    new_id = after["services"][0]["deployments"][0]["id"]
    assert new_id != old_id and result["deployment_id"] == new_id
    assert (result["cluster"], result["service"], result["region"]) == (cluster, "svc-portal", DR)


def test_put_parameter_of_an_unknown_key_is_a_usage_error(make_target: Callable) -> None:
    with pytest.raises(UsageError, match="ssm.nope"):
        aws_dr.put_parameter(make_target(), "nope", "x")


# ---------------------------------------------------------------- the plan


@pytest.mark.usefixtures("no_credentials")
def test_plan_smartpos_lists_every_step_in_the_dr_region_and_connects_nowhere(
    write_target: Callable, loopback_only: list
) -> None:
    target = write_target(endpoint_url=None, profile="absent-profile")
    taken = datetime(2027, 1, 1, 11, tzinfo=UTC)
    snaps = [
        {
            "DBSnapshotIdentifier": s,
            "DBInstanceIdentifier": "mpac-smartpos-staging",
            "Status": "available",
            "SnapshotCreateTime": when,
        }
        for s, when in (("old", taken - timedelta(hours=1)), ("new", taken))
    ]
    dry = aws.DryRun(responses={"rds.DescribeDBSnapshots": {"DBSnapshots": snaps}})

    steps = aws_dr.plan_region_failover(target, dry_run=dry)

    assert loopback_only == []  # not one connection, not even to loopback
    assert [(s["service"], s["operation"]) for s in steps] == [
        ("rds", "DescribeDBSnapshots"),
        ("rds", "RestoreDBInstanceFromDBSnapshot"),
        ("ssm", "PutParameter"),
        ("ecs", "UpdateService"),
        ("ecs", "UpdateService"),
        ("route53", "ListResourceRecordSets"),
        ("route53", "ChangeResourceRecordSets"),
    ]
    assert [s["region"] for s in steps] == [DR] * 5 + ["aws-global"] * 2  # Route53: global
    assert PRIMARY not in json.dumps(steps, default=str)
    restore = steps[1]["params"]
    assert (restore["DBSnapshotIdentifier"], restore["DBInstanceClass"]) == ("new", "db.r6g.large")
    assert steps[2]["params"]["Name"] == "/mpac-smartpos/staging/DATABASE_URL"
    assert steps[2]["params"]["Value"] == "***"
    assert [s["params"]["service"] for s in steps[3:5]] == ["svc-portal", "svc-smarttab"]
    assert all(s["params"]["forceNewDeployment"] for s in steps[3:5])
    change = steps[6]["params"]
    assert change["HostedZoneId"] == "UNSET.route53.hosted_zone_id"  # staging names none
    assert change["ChangeBatch"]["Changes"][0]["ResourceRecordSet"]["Name"] == (
        "UNSET.route53.record"
    )
    assert change["ChangeBatch"]["Changes"][0]["Action"] == "UPSERT"
    assert all(s["name"] for s in steps)


def test_plan_pgw_restores_the_pgw_snapshot_and_sets_pgw_base_url(
    aws_target: Target, make_target: Callable, loopback_only: list
) -> None:
    steps = aws_dr.plan_region_failover(aws_target, system="pgw", dry_run=aws.DryRun())

    assert loopback_only == []
    assert [s["operation"] for s in steps] == [
        "DescribeDBSnapshots",
        "RestoreDBInstanceFromDBSnapshot",
        "PutParameter",
        "UpdateService",
        "UpdateService",
        "ListResourceRecordSets",
        "ChangeResourceRecordSets",
    ]
    assert {s["region"] for s in steps[:5]} == {DR}  # Route53: its global endpoint
    assert steps[0]["params"]["DBInstanceIdentifier"] == "mpac-pgw-staging"
    assert steps[1]["params"]["DBInstanceIdentifier"].startswith("mpac-pgw-staging-dr-")
    assert steps[2]["params"]["Name"] == "/mpac-smartpos/staging/PGW_BASE_URL"
    # with the DR PGW's database parameter named, the plan points it at the restore (F13)
    named = make_target(**{"ssm.pgw_database_url": "/mpac-pgw/staging/DATABASE_URL"})
    plan = aws_dr.plan_region_failover(named, system="pgw", dry_run=aws.DryRun())
    assert [s["params"].get("Name") for s in plan if s["operation"] == "PutParameter"] == [
        "/mpac-smartpos/staging/PGW_BASE_URL",
        "/mpac-pgw/staging/DATABASE_URL",
    ]
    with pytest.raises(UsageError, match="system must be one of"):
        aws_dr.plan_region_failover(aws_target, system="obs", dry_run=aws.DryRun())


# ---------------------------------------------------------------- finding F1


def test_runbook_region_findings_name_the_failed_and_the_dr_region() -> None:
    findings = aws_dr.runbook_region_findings(load_target("staging"))

    assert [(f["section"], f["step"]) for f in findings] == [
        ("1.4", "2"),
        ("1.4", "3"),
        ("1.4", "4"),
        ("1.4", "4"),
        ("1.4", "5"),
    ]
    for f in findings:
        assert f["id"] == "F1"
        assert (f["runbook_region"], f["primary_region"], f["dr_region"]) == (PRIMARY, PRIMARY, DR)
        assert PRIMARY in f["evidence"] and DR in f["evidence"]
    assert "--region ap-northeast-1" in findings[3]["command"]
    assert "restore-db-instance-from-db-snapshot" in findings[3]["command"]
    assert "put-parameter" in findings[4]["command"]


def test_runbook_region_findings_follow_the_target_dr_region() -> None:
    target = load_target("staging", {"aws.dr_region": "eu-west-1"})

    findings = aws_dr.runbook_region_findings(target)

    assert len(findings) == len(aws_dr.RUNBOOK_REGION_STEPS)  # §1.5's us-east-1 too
    assert "neither" in findings[-1]["evidence"] and "eu-west-1" in findings[-1]["evidence"]


def test_restore_record_puts_back_the_whole_record_set_ttl_included(
    dr: Callable, make_target: Callable
) -> None:
    route53 = dr("route53")
    zid = route53.create_hosted_zone(Name="example.com", CallerReference=unique("ref"))[
        "HostedZone"
    ]["Id"].rsplit("/", 1)[-1]
    original = {
        "Name": "api.staging.example.com.",
        "Type": "CNAME",
        "TTL": 300,
        "ResourceRecords": [{"Value": "primary.ap-northeast-1.elb.amazonaws.com"}],
    }
    route53.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": original}]})  # fmt: skip
    target = make_target(**{"route53.hosted_zone_id": zid,
                            "route53.record": "api.staging.example.com"})  # fmt: skip

    change = aws_dr.switch_record(target, to_dns_name="dr.us-east-1.elb.amazonaws.com")
    switched = route53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"]
    assert [r["TTL"] for r in switched if r["Type"] == "CNAME"] == [60]
    assert aws_dr.restore_record(target, change) == "restored as it was"

    after = route53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"]
    assert [r for r in after if r["Type"] == "CNAME"] == [original]


def test_restore_record_deletes_a_record_that_was_absent(
    dr: Callable, make_target: Callable
) -> None:
    route53 = dr("route53")
    zid = route53.create_hosted_zone(Name="example.org", CallerReference=unique("ref"))[
        "HostedZone"
    ]["Id"].rsplit("/", 1)[-1]
    target = make_target(**{"route53.hosted_zone_id": zid,
                            "route53.record": "api.staging.example.org"})  # fmt: skip
    change = aws_dr.switch_record(target, to_dns_name="dr.us-east-1.elb.amazonaws.com")
    assert aws_dr.restore_record(target, change) == "deleted (absent before)"
    left = route53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"]
    assert [r for r in left if r["Type"] == "CNAME"] == []


def test_parameter_written_back_keeps_type_key_tier_and_description(
    dr: Callable, make_target: Callable
) -> None:
    ssm = dr("ssm")
    name = f"/mpac-smartpos/{unique('t')}/PGW_BASE_URL"
    ssm.put_parameter(
        Name=name,
        Value="https://pgw.primary.example.com",
        Type="String",
        Description="the PGW mpac-smartpos calls",
        Tier="Standard",
    )
    target = make_target(**{"ssm.pgw_base_url": name})
    skip = {"Version", "LastModifiedDate", "LastModifiedUser"}

    def described() -> dict[str, Any]:
        (meta,) = ssm.describe_parameters(
            ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}]
        )["Parameters"]
        value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        return {k: v for k, v in meta.items() if k not in skip} | {"Value": value}

    before = described()
    old, shape = aws_dr.describe_parameter(target, "pgw_base_url")
    assert old == "https://pgw.primary.example.com" and shape and shape["type"] == "String"
    aws_dr.put_parameter(target, "pgw_base_url", "https://pgw-dr.example.com", like=shape)
    assert described()["Type"] == "String"  # not turned into a SecureString
    aws_dr.put_parameter(target, "pgw_base_url", old, like=shape)
    assert described() == before

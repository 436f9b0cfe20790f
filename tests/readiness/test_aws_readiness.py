"""``mpac-drill check`` on moto: every AWS check with a passing and a failing case."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mpac_drill.config import Target
from tests.aws.conftest import REGION, fargate_service
from tests.readiness.conftest import rows_of, unique

pytestmark = pytest.mark.aws
DR = "us-east-1"


def _db(moto: Callable[[str], Any], *, multi_az: bool = True, retention: int = 7) -> str:
    name = unique("mpac-smartpos")
    moto("rds").create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="mpac",
        MasterUserPassword="not-a-secret-1",
        MultiAZ=multi_az,
        BackupRetentionPeriod=retention,
        PreferredBackupWindow="02:00-03:00",
    )
    return name


# ---------------------------------------------------------------- §1.1


@pytest.mark.parametrize(
    ("desired", "running", "status"), [(2, 2, "pass"), (1, 1, "fail"), (2, 1, "fail")]
)
def test_ecs_tasks_desired_and_running_judged(
    staging: Callable[..., Target],
    moto: Callable[[str], Any],
    ecs_network: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    desired: int,
    running: int,
    status: str,
) -> None:
    cluster = unique("mpac-smartpos")
    fargate_service(
        moto("ecs"),
        ecs_network,
        monkeypatch,
        cluster=cluster,
        service="svc-portal",
        tasks=0,
        desired=desired,
        running=running,
    )
    rows = rows_of(staging(**{"ecs.cluster": cluster}), "ecs-task-failure")
    portal = rows["ecs.svc-portal.tasks"]
    assert portal["status"] == status
    assert portal["measured"] == f"{running} of {desired} running"
    assert "runningCount" in portal["evidence"]
    assert rows["ecs.svc-smarttab.tasks"]["status"] == "fail"  # no such service in moto
    assert rows["ecs.svc-portal.alb_azs"]["status"] == "not checked"


@pytest.mark.parametrize(("zones", "status"), [(["a", "c"], "pass"), (["a", "a"], "fail")])
def test_alb_healthy_targets_counted_by_az(
    staging: Callable[..., Target], moto: Callable[[str], Any], zones: list[str], status: str
) -> None:
    ec2, elb = moto("ec2"), moto("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    instances = []
    for i, zone in enumerate(zones):
        subnet = ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{REGION}{zone}"
        )["Subnet"]["SubnetId"]
        instances += [
            i["InstanceId"]
            for i in ec2.run_instances(
                ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet
            )["Instances"]
        ]
    group = elb.create_target_group(
        Name=unique("tg"), Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": i} for i in instances])
    target = staging(
        **{"ecs.cluster": unique("none"), "ecs.services.svc-portal.target_groups": [group]}
    )
    row = rows_of(target, "ecs-task-failure")["ecs.svc-portal.alb_azs"]
    assert row["status"] == status, row
    assert row["value"] == len(set(zones))


# ---------------------------------------------------------------- §1.2, §2.1


@pytest.mark.parametrize(("multi_az", "status"), [(True, "pass"), (False, "fail")])
def test_rds_multi_az_judged_and_runbook_call_flagged(
    staging: Callable[..., Target], moto: Callable[[str], Any], multi_az: bool, status: str
) -> None:
    name = _db(moto, multi_az=multi_az)
    rows = rows_of(staging(**{"rds.smartpos.identifier": name}), "rds-failover")
    assert rows["rds.smartpos.multi_az"]["status"] == status
    assert rows["rds.smartpos.multi_az"]["evidence"].endswith("MultiAZ")
    call = rows["rds.smartpos.failover_call"]  # F4: the runbook's call is for clusters
    assert call["status"] == "warn" and "reboot-db-instance" in (call["fix"] or "")


def test_rds_missing_instance_fails_naming_it(
    staging: Callable[..., Target], moto: Callable[[str], Any]
) -> None:
    name = unique("gone")
    row = rows_of(staging(**{"rds.smartpos.identifier": name}), "rds-failover")[
        "rds.smartpos.multi_az"
    ]
    assert row["status"] == "fail" and row["component"] == name and not row["error"]


@pytest.mark.parametrize(("retention", "status"), [(7, "pass"), (1, "fail"), (0, "fail")])
def test_rds_backups_retention_and_pitr_lag(
    staging: Callable[..., Target], moto: Callable[[str], Any], retention: int, status: str
) -> None:
    name = _db(moto, retention=retention)
    rows = rows_of(staging(**{"rds.smartpos.identifier": name}), "rds-pitr")
    assert rows["rds.smartpos.retention"]["status"] == status
    assert rows["rds.smartpos.backup_window"]["status"] == "pass"
    pitr = rows["rds.smartpos.pitr_lag"]
    assert pitr["status"] == ("fail" if retention == 0 else "pass"), pitr
    if retention:
        assert pitr["value"] is not None and pitr["value"] < 300


def test_rds_pitr_lag_over_threshold_fails(
    staging: Callable[..., Target], moto: Callable[[str], Any]
) -> None:
    name = _db(moto)  # moto's LatestRestorableTime is "now" when described: any lag > 0
    target = staging(**{"rds.smartpos.identifier": name, "readiness.pitr_lag_s": 0})
    assert rows_of(target, "rds-pitr")["rds.smartpos.pitr_lag"]["status"] == "fail"


# ---------------------------------------------------------------- §1.3


def test_cache_with_failover_multi_az_and_replica_passes(
    staging: Callable[..., Target], moto: Callable[[str], Any]
) -> None:
    group = unique("rg")
    moto("elasticache").create_replication_group(
        ReplicationGroupId=group,
        ReplicationGroupDescription="t",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        AutomaticFailoverEnabled=True,
        MultiAZEnabled=True,
        NumNodeGroups=1,
        ReplicasPerNodeGroup=1,
    )
    rows = rows_of(staging(**{"elasticache.replication_group": group}), "redis-failover")
    assert [rows[f"elasticache.{k}"]["status"] for k in ("failover", "multi_az", "replicas")] == [
        "pass"
    ] * 3


def test_cache_without_failover_or_replica_fails(
    staging: Callable[..., Target], moto: Callable[[str], Any]
) -> None:
    group = unique("rg")
    moto("elasticache").create_replication_group(
        ReplicationGroupId=group,
        ReplicationGroupDescription="t",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        AutomaticFailoverEnabled=False,
        NumCacheClusters=1,
    )
    rows = rows_of(staging(**{"elasticache.replication_group": group}), "redis-failover")
    assert [rows[f"elasticache.{k}"]["status"] for k in ("failover", "multi_az", "replicas")] == [
        "fail"
    ] * 3
    assert rows["elasticache.replicas"]["value"] == 0


# ---------------------------------------------------------------- §1.4/§1.5 RPO readiness


def _copy_to_dr(moto: Callable[[str], Any], name: str) -> None:
    source = moto("rds")
    snap = source.create_db_snapshot(DBInstanceIdentifier=name, DBSnapshotIdentifier=f"{name}-s")
    import boto3

    dr = boto3.client(
        "rds",
        region_name=DR,
        endpoint_url=source.meta.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    dr.copy_db_snapshot(
        SourceDBSnapshotIdentifier=snap["DBSnapshot"]["DBSnapshotArn"],
        TargetDBSnapshotIdentifier=f"{name}-dr",
        SourceRegion=REGION,
    )


def test_dr_data_age_of_a_fresh_copy_passes(
    staging: Callable[..., Target], moto: Callable[[str], Any]
) -> None:
    name = _db(moto)
    _copy_to_dr(moto, name)
    row = rows_of(staging(**{"rds.smartpos.identifier": name}), "region-failover")[
        "dr.smartpos.data_age"
    ]
    assert row["status"] == "pass", row
    assert row["value"] is not None and row["value"] < 60
    assert row["threshold"] == "≤ 15.0 min"  # region-failover's rpo_s in the catalog
    assert f"{name}-dr" in row["evidence"] and DR in row["component"]


def test_dr_data_age_without_a_copy_fails(
    staging: Callable[..., Target], moto: Callable[[str], Any]
) -> None:
    name = _db(moto)
    moto("rds").create_db_snapshot(DBInstanceIdentifier=name, DBSnapshotIdentifier=f"{name}-p")
    row = rows_of(staging(**{"rds.smartpos.identifier": name}), "region-failover")[
        "dr.smartpos.data_age"
    ]
    assert row["status"] == "fail" and row["measured"] == "no data in the DR region"


def test_dr_data_older_than_the_rpo_fails(
    staging: Callable[..., Target], moto: Callable[[str], Any]
) -> None:
    name = _db(moto)
    _copy_to_dr(moto, name)
    time.sleep(0.05)
    target = staging(**{"rds.smartpos.identifier": name, "readiness.dr_data_age_s": 0.01})
    row = rows_of(target, "region-failover")["dr.smartpos.data_age"]
    assert row["status"] == "fail" and row["value"] is not None and row["value"] > 0.01


# ---------------------------------------------------------------- SSM, Route53, alarms


def test_dr_parameters_found_and_missing(
    staging: Callable[..., Target], moto: Callable[[str], Any]
) -> None:
    import boto3

    base = unique("/mpac")
    ssm = boto3.client(
        "ssm",
        region_name=DR,
        endpoint_url=moto("ssm").meta.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    ssm.put_parameter(Name=f"{base}/DATABASE_URL", Value="x", Type="String")
    target = staging(
        **{"ssm.database_url": f"{base}/DATABASE_URL", "ssm.pgw_base_url": f"{base}/PGW_BASE_URL"}
    )
    rows = rows_of(target, "region-failover", "pgw-region-failover")
    assert rows["ssm.database_url"]["status"] == "pass"
    assert rows["ssm.pgw_base_url"]["status"] == "fail"
    assert rows["ssm.pgw_database_url"]["status"] == "not checked"  # null in staging


def test_route53_record_found_missing_and_unset(
    staging: Callable[..., Target], moto: Callable[[str], Any]
) -> None:
    r53 = moto("route53")
    zone = r53.create_hosted_zone(Name="staging.example.", CallerReference=unique("z"))[
        "HostedZone"
    ]["Id"].rsplit("/", 1)[-1]
    r53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": "api.staging.example.",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "10.0.0.1"}],
                    },
                }
            ]
        },
    )
    found = staging(**{"route53.hosted_zone_id": zone, "route53.record": "api.staging.example"})
    missing = staging(**{"route53.hosted_zone_id": zone, "route53.record": "x.staging.example"})
    assert rows_of(found, "region-failover")["route53.record"]["status"] == "pass"
    assert rows_of(missing, "region-failover")["route53.record"]["status"] == "fail"
    assert rows_of(staging(), "region-failover")["route53.record"]["status"] == "not checked"


def test_alarms_exist_with_actions_or_not(
    staging: Callable[..., Target], moto: Callable[[str], Any]
) -> None:
    cw, paged, silent, gone = moto("cloudwatch"), unique("p"), unique("s"), unique("g")
    for name, actions in (
        (paged, ["arn:aws:sns:ap-northeast-1:123456789012:oncall"]),
        (silent, []),
    ):
        cw.put_metric_alarm(
            AlarmName=name,
            MetricName="RunningTaskCount",
            Namespace="ECS",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="LessThanThreshold",
            AlarmActions=actions,
        )
    target = staging(**{"readiness.detection_alarms": [paged, silent, gone]})
    rows = rows_of(target, "ecs-task-failure")
    assert [rows[f"alarm.{n}"]["status"] for n in (paged, silent, gone)] == ["pass", "warn", "fail"]


def test_a_route53_alarm_is_looked_for_where_route53_publishes(
    staging: Callable[..., Target], moto_url: str
) -> None:
    """Route53's health-check metrics, and so alarms on them, live in us-east-1
    (``detection.route53_region``; here a region no other test uses): the same alarm in the
    drills' own region does not count."""
    import boto3

    def cw(region: str) -> Any:
        return boto3.client(
            "cloudwatch",
            region_name=region,
            endpoint_url=moto_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    name, where = "Route53-HealthCheck-Failed", "eu-west-3"
    alarm = {
        "AlarmName": name,
        "MetricName": "HealthCheckStatus",
        "Namespace": "AWS/Route53",
        "Statistic": "Minimum",
        "Period": 60,
        "EvaluationPeriods": 5,
        "Threshold": 1,
        "ComparisonOperator": "LessThanThreshold",
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:oncall"],
    }
    cw(REGION).put_metric_alarm(**alarm)
    target = staging(**{"detection.route53_region": where})
    row = rows_of(target, "region-failover")[f"alarm.{name}"]
    assert row["status"] == "fail" and row["measured"] == "missing"
    assert row["evidence"].endswith(f"(in {where})")
    cw(where).put_metric_alarm(**alarm)
    assert rows_of(target, "region-failover")[f"alarm.{name}"]["status"] == "pass"


# ---------------------------------------------------------------- §1.6, permissions


def test_obs_buckets_readable_or_missing(
    staging: Callable[..., Target], moto: Callable[[str], Any]
) -> None:
    loki, tempo = unique("loki"), unique("tempo")
    moto("s3").create_bucket(Bucket=loki, CreateBucketConfiguration={"LocationConstraint": REGION})
    rows = rows_of(staging(**{"obs.buckets.loki": loki, "obs.buckets.tempo": tempo}), "obs-failure")
    assert rows["obs.loki"]["status"] == "pass"
    assert rows["obs.tempo"]["status"] == "fail" and rows["obs.tempo"]["measured"] == "NoSuchBucket"


def test_permissions_not_simulated_are_not_checked_never_pass(
    staging: Callable[..., Target],
) -> None:
    row = rows_of(staging(), "ecs-task-failure")["permissions"]
    assert row["status"] == "not checked"  # moto has no SimulatePrincipalPolicy
    assert "SimulatePrincipalPolicy" in row["evidence"]


def test_grafana_dashboards_provisioned_or_missing(
    staging: Callable[..., Target], tmp_path: Path
) -> None:
    """§1.6 on a Grafana (played by the sandbox's mpac-obs, which answers Grafana's
    dashboard API): every repo dashboard there passes; one renamed fails, named."""
    import json
    import shutil

    from mpac_drill.grafana import DASHBOARDS_DIR
    from mpac_drill.sandbox.obs import create_obs_app
    from tests.sandbox.obs_server import serve

    assert rows_of(staging(), "obs-failure")["obs.dashboards"]["status"] == "not checked"
    dashboards = tmp_path / "dashboards"
    shutil.copytree(DASHBOARDS_DIR, dashboards)
    with serve(
        create_obs_app(bucket=tmp_path / "b", dashboards_dir=dashboards, api_token="")
    ) as url:
        row = rows_of(staging(**{"obs.grafana_url": url}), "obs-failure")["obs.dashboards"]
    assert row["status"] == "pass" and row["measured"].startswith(f"{row['value']:g} of")
    renamed = sorted(dashboards.glob("*.json"))[0]
    doc = json.loads(renamed.read_text())
    doc["title"] = "renamed"
    renamed.write_text(json.dumps(doc))
    with serve(
        create_obs_app(bucket=tmp_path / "b", dashboards_dir=dashboards, api_token="")
    ) as url:
        row = rows_of(staging(**{"obs.grafana_url": url}), "obs-failure")["obs.dashboards"]
    assert row["status"] == "fail" and doc["uid"] in row["fix"]

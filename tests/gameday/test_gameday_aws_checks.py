"""An AWS game day's checks on moto: a scripted operator performs the runbook's manual
steps (Route53 record, SSM parameter, restored RDS instance) at known delays; the checks,
read through the project's client factory, see each effect after it happened and soon after,
and nothing before."""

from __future__ import annotations

import threading
import time

import boto3
import pytest

from mpac_drill.config import load_target
from mpac_drill.gameday.aws_checks import AwsChecks

moto = pytest.importorskip("moto")

DR_DNS = "dr-alb-123.us-east-1.elb.amazonaws.com"
RECORD = "api.staging-drill.example"


@pytest.fixture
def aws(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    with moto.mock_aws():
        r53 = boto3.client("route53", region_name="us-east-1")
        zone = r53.create_hosted_zone(Name="staging-drill.example.", CallerReference="t")
        zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
        _upsert(r53, zone_id, "primary-alb.ap-northeast-1.elb.amazonaws.com")
        ssm = boto3.client("ssm", region_name="us-east-1")
        ssm.put_parameter(
            Name="/mpac-smartpos/staging/DATABASE_URL",
            Value="postgresql://primary.ap-northeast-1/smartpos",
            Type="SecureString",
        )
        target = load_target(
            "staging",
            {
                "route53.hosted_zone_id": zone_id,
                "route53.record": RECORD,
                "route53.dr_dns_name": DR_DNS,
            },
        )
        yield target, r53, zone_id


def _upsert(r53, zone_id: str, value: str) -> None:
    r53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": RECORD,
                        "Type": "CNAME",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": value}],
                    },
                }  # fmt: skip
            ]
        },
    )


def test_checks_see_each_manual_step_after_the_operator_did_it(aws):
    target, r53, zone_id = aws
    checks = AwsChecks(target)
    checks.start()
    kinds = [("dr_event", "dr: rds restored"), ("parameter", "DATABASE_URL"),
             ("front_door_region", "")]  # fmt: skip
    assert [checks.seen(k, a) for k, a in kinds] == [None, None, None]  # nothing done yet
    assert checks.seen("users_served") is None  # not checked on AWS

    done: dict[str, float] = {}

    def operator() -> None:  # the AWS CLI commands of the plan, at known delays
        time.sleep(0.5)
        done["dr_event"] = time.time()  # the effect cannot be seen before the call starts
        boto3.client("rds", region_name="us-east-1").create_db_instance(
            DBInstanceIdentifier="mpac-smartpos-staging-dr", DBInstanceClass="db.r6g.large",
            Engine="postgres", MasterUsername="app", MasterUserPassword="not-a-secret-123",
            AllocatedStorage=20,
        )  # fmt: skip
        time.sleep(0.5)
        done["parameter"] = time.time()
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name="/mpac-smartpos/staging/DATABASE_URL",
            Value="postgresql://mpac-smartpos-staging-dr.us-east-1/smartpos",
            Type="SecureString", Overwrite=True,
        )  # fmt: skip
        time.sleep(0.5)
        done["front_door_region"] = time.time()
        _upsert(r53, zone_id, DR_DNS)

    started = time.time()
    th = threading.Thread(target=operator)
    th.start()
    seen: dict[str, float] = {}
    while len(seen) < 3 and time.time() < started + 30:
        for kind, arg in kinds:
            at = checks.seen(kind, arg)
            if at is not None:
                seen.setdefault(kind, at)
        time.sleep(0.05)
    th.join()
    assert set(seen) == {"dr_event", "parameter", "front_door_region"}
    for kind, at in seen.items():
        assert done[kind] <= at <= done[kind] + 2.5, (kind, at - done[kind])
    assert seen["dr_event"] < seen["parameter"] < seen["front_door_region"]
    assert checks.seen("front_door_region") == seen["front_door_region"]  # first seen kept

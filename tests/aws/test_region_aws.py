"""region-failover on AWS (moto): the runbook §1.4 procedure for real in the DR region.

The primary region is declared lost (nothing in it is touched); the DR steps run against
moto's us-east-1, the health endpoints are the sandbox's services on loopback. Afterwards
fail_back has put the record and the parameter back and deleted the restored instance.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from mpac_drill.drill.runner import run_drill
from mpac_drill.errors import ExitCode
from tests.aws.conftest import target_with
from tests.aws.dr_world import dr_region

pytestmark = [pytest.mark.aws, pytest.mark.sandbox]
DR = "us-east-1"
OLD_URL = "postgresql://app:{secret}@mpac-smartpos-staging.old.rds.amazonaws.com:5432/smartpos"


def _c(service: str, url: str, region: str = DR) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=url)


def _dr_region(
    moto_url: str,
    sandbox,
    folder: Path,
    *,
    db_ident: str,
    param_name: str,
    param_value: str,
    **overrides: Any,
):
    """In moto's DR region: a DB instance with a snapshot, the SSM parameter, an ECS cluster
    with the services, a hosted zone whose record points at the primary. Returns the staging
    target wired to all of it (health endpoints: the sandbox's services) and the zone id."""
    tag = uuid.uuid4().hex[:6]
    world = dr_region(
        moto_url,
        tag,
        db_ident=db_ident,
        param_name=param_name,
        param_value=param_value,
        Description="DATABASE_URL of the services",
    )
    cluster, zid = world["cluster"], world["zid"]
    services = sandbox.require("ecs.services")
    target = target_with(
        "staging",
        folder,
        {
            "aws.endpoint_url": moto_url,
            "account_id": "123456789012",
            "ecs.cluster": cluster,
            "route53.hosted_zone_id": zid,
            "route53.record": "api.staging.mpac-cloud.com",
            "route53.dr_dns_name": "dr-alb.us-east-1.elb.amazonaws.com",
            **{
                f"endpoints.{n}": f"http://127.0.0.1:{services[n]['port']}/health"
                for n in ("svc-portal", "svc-smarttab", "pgw")
            },
            "drill.warmup_s": 1,
            "drill.cooldown_s": 0.5,
            "drill.observer_interval_s": 0.1,
            **overrides,
        },
    )
    return target, zid


def _touched(moto_url: str, zid: str, ssm_name: str) -> dict[str, Any]:
    """Every field of the record set and of the parameter a region drill changes, but the
    parameter's version and modification stamps (a write back is a new version)."""
    r53, ssm = _c("route53", moto_url), _c("ssm", moto_url)
    records = r53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"]
    (meta,) = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [ssm_name]}]
    )["Parameters"]
    value = ssm.get_parameter(Name=ssm_name, WithDecryption=True)["Parameter"]["Value"]
    skip = {"Version", "LastModifiedDate", "LastModifiedUser"}
    return {
        "records": sorted(records, key=lambda r: (r["Name"], r["Type"])),
        "parameter": {k: v for k, v in meta.items() if k not in skip} | {"Value": value},
    }


def test_region_failover_runs_dr_steps_in_dr_region_and_fails_back(sandbox, moto_url, tmp_path):
    tag = uuid.uuid4().hex[:6]
    ident = f"mpac-smartpos-{tag}"
    secret = f"pw{tag}DoNotWrite"
    ssm_name = f"/mpac-smartpos/{tag}/DATABASE_URL"
    target, zid = _dr_region(
        moto_url,
        sandbox,
        tmp_path,
        db_ident=ident,
        param_name=ssm_name,
        param_value=OLD_URL.format(secret=secret),
        **{"rds.smartpos.identifier": ident, "ssm.database_url": ssm_name},
    )
    rds, r53 = _c("rds", moto_url), _c("route53", moto_url)
    before = _touched(moto_url, zid, ssm_name)

    outcome = run_drill("region-failover", target, runs_dir=tmp_path / "runs", users=2)
    r = outcome.result
    assert r["status"] == "completed", r.get("reason")
    assert outcome.exit_code == ExitCode.OK
    names = [s["name"] for s in r["steps"]]
    assert names == [
        "find the newest snapshot in the DR region",
        "restore snapshot",
        "update DATABASE_URL (SSM)",
        "restart services",
        "switch Route53 record",
        "verify health",
    ]
    assert all(s["ok"] for s in r["steps"])
    total = sum(s["duration_s"] for s in r["steps"])
    assert r["measurements"]["rto_s"] >= total  # the procedure is the outage
    found = {f["id"]: f for f in r["findings"]}
    assert set(found) >= {"F1", "F12"}
    # 1.4 never wrote PGW_BASE_URL in us-east-1: mpac-smartpos there has no PGW to call
    assert r["qr_path"]["to_dr_pgw"] is False and "missing there" in found["F12"]["evidence"]
    # fail_back: record and parameter back exactly as they were, restored instance deleted
    assert _touched(moto_url, zid, ssm_name) == before  # field by field
    rec = r53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"]
    cname = next(x for x in rec if x["Type"] == "CNAME")
    assert cname["ResourceRecords"][0]["Value"].startswith("primary-alb")
    value = _c("ssm", moto_url).get_parameter(Name=ssm_name, WithDecryption=True)
    assert value["Parameter"]["Value"] == OLD_URL.format(secret=secret)
    dbs = [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]]
    assert not [d for d in dbs if d.startswith(f"{ident}-dr-")]
    # nothing in the primary region was touched, and the password is nowhere on disk
    primary = _c("rds", moto_url, "ap-northeast-1").describe_db_instances()["DBInstances"]
    assert not [d for d in primary if d["DBInstanceIdentifier"].startswith(ident)]
    for path in outcome.run_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    journal = json.loads((outcome.run_dir / "journal.json").read_text())
    assert journal["rollbacks"]


def test_pgw_region_failover_points_pgw_base_url_at_dr_and_fails_back(sandbox, moto_url, tmp_path):
    tag = uuid.uuid4().hex[:6]
    ident = f"mpac-pgw-{tag}"
    name = f"/mpac-smartpos/{tag}/PGW_BASE_URL"
    db_name = f"/mpac-pgw/{tag}/DATABASE_URL"
    old = "https://pgw.ap-northeast-1.example.internal"
    old_db = f"postgresql://pgw:pw{tag}Secret@mpac-pgw.old.rds.amazonaws.com:5432/pgw"
    target, _ = _dr_region(
        moto_url,
        sandbox,
        tmp_path,
        db_ident=ident,
        param_name=name,
        param_value=old,
        **{
            "rds.pgw.identifier": ident,
            "ssm.pgw_base_url": name,
            "ssm.pgw_database_url": db_name,
            "pgw.dr_base_url": "https://pgw.us-east-1.example.internal",
        },
    )
    ssm = _c("ssm", moto_url)
    ssm.put_parameter(Name=db_name, Value=old_db, Type="SecureString")
    seen: dict[str, str] = {}

    def listener(ctx: Any) -> None:  # the DR PGW's DATABASE_URL while failed over
        if ctx.current_phase == "awaiting recovery" and "db" not in seen:
            seen["db"] = ssm.get_parameter(Name=db_name, WithDecryption=True)["Parameter"]["Value"]

    rds = _c("rds", moto_url)
    outcome = run_drill(
        "pgw-region-failover", target, runs_dir=tmp_path / "runs", users=2, listeners=[listener]
    )
    r = outcome.result
    assert r["status"] == "completed", r.get("reason")
    steps = {s["name"]: s for s in r["steps"]}
    assert "update PGW_BASE_URL (SSM)" in steps and all(s["ok"] for s in r["steps"])
    assert r["qr_path"]["to_dr_pgw"] and r["qr_path"]["pgw_base_url"] == (
        "https://pgw.us-east-1.example.internal"
    )
    assert "restore snapshot" in steps and ident in steps["restore snapshot"]["detail"]
    # fail_back put the old PGW_BASE_URL back and deleted the restored pgw instance
    value = _c("ssm", moto_url).get_parameter(Name=name, WithDecryption=True)
    assert value["Parameter"]["Value"] == old
    # F13: the drill pointed the DR PGW at the restored instance (credentials kept), and
    # put the old value back afterwards; the password is nowhere in the run folder
    step = steps["update the DR PGW's DATABASE_URL (SSM; not in the runbook)"]
    assert step["ok"] and f"{ident}-dr-" in step["detail"]
    assert seen.get("db", "").startswith(f"postgresql://pgw:pw{tag}Secret@{ident}-dr-")
    assert ssm.get_parameter(Name=db_name, WithDecryption=True)["Parameter"]["Value"] == old_db
    found = {f["id"]: f for f in r["findings"]}
    assert "F13" in found
    # F14: §1.5 switches PGW_BASE_URL before the restore; the drill did it after, and says
    # how long the runbook's order leaves the DR PGW without its database
    window = sum(
        steps[n]["duration_s"]
        for n in (
            "find the newest snapshot in the DR region",
            "restore snapshot",
            "update PGW_BASE_URL (SSM)",
            "update the DR PGW's DATABASE_URL (SSM; not in the runbook)",
            "restart services",
        )
    )
    assert found["F14"]["section"] == "1.5"
    assert f"took {window:.2f} s" in found["F14"]["evidence"]
    for path in outcome.run_dir.rglob("*"):
        if path.is_file():
            assert f"pw{tag}Secret".encode() not in path.read_bytes(), path
    dbs = [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]]
    assert not [d for d in dbs if d.startswith(f"{ident}-dr-")]

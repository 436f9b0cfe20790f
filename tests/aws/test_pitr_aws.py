"""Point-in-time restore on AWS (runbook §2.3), against the moto server of conftest."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from mpac_drill import aws
from mpac_drill.config import Target, load_catalog, load_target
from mpac_drill.drill import context as drill_context
from mpac_drill.drill.context import DrillContext
from mpac_drill.drill.runner import run_drill
from mpac_drill.errors import UsageError
from mpac_drill.platform.aws import pitr as backend
from tests.aws.test_aws_backend import _bodies, wire  # noqa: F401 - the wire fixture

pytestmark = pytest.mark.aws
REGION = "ap-northeast-1"


@pytest.fixture
def source(moto: Callable, make_target: Callable) -> tuple[Target, str]:
    """A fresh source DB instance in moto and a staging target naming it."""
    name = f"mpac-smartpos-{uuid.uuid4().hex[:8]}"
    moto("rds").create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="mpac",
        MasterUserPassword="not-a-secret-1",
        MultiAZ=True,
    )
    return make_target(**{"rds.smartpos.identifier": name}), name


def test_restore_sends_source_new_pitr_identifier_and_restore_time(
    source,
    moto: Callable,
    wire,  # noqa: F811
) -> None:
    target, name = source
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)

    result = backend.restore_db_instance_to_point_in_time(
        target, "smartpos", when, timeout_s=30, poll_s=0.1
    )

    (sent,) = _bodies(wire, "RestoreDBInstanceToPointInTime")
    form = parse_qs(sent)
    new_id = result["target_identifier"]
    assert form["SourceDBInstanceIdentifier"] == [name]
    assert form["TargetDBInstanceIdentifier"] == [new_id]
    assert re.fullmatch(rf"{name}-pitr-\d{{14}}", new_id)
    assert datetime.fromisoformat(form["RestoreTime"][0].replace("Z", "+00:00")) == when
    assert (
        result["restore_time"]
        == result["requested_restore_time"]
        == (when.isoformat(timespec="microseconds").replace("+00:00", "Z"))
    )
    assert result["available"] and result["status"] == "available"
    assert [s["name"] for s in result["steps"]] == [
        "check source",
        "restore call",
        "wait until available",
    ]
    assert all(s["ok"] for s in result["steps"])
    made = moto("rds").describe_db_instances(DBInstanceIdentifier=new_id)["DBInstances"][0]
    assert made["Engine"] == "postgres" and made["DBInstanceStatus"] == "available"


def test_pitr_identifier_fits_rds_limits() -> None:
    at = datetime(2027, 4, 1, 2, 3, 4, tzinfo=UTC)
    assert backend.pitr_identifier("mpac-smartpos-prod", at) == (
        "mpac-smartpos-prod-pitr-20270401020304"
    )  # runbook §2.3's name, to the second
    long = backend.pitr_identifier("a" * 50 + "-b", at)
    assert len(long) == 63 and long.endswith("-pitr-20270401020304") and "--" not in long


def test_delete_restored_removes_only_the_copy(source, moto: Callable) -> None:
    target, name = source
    restored = backend.restore_db_instance_to_point_in_time(
        target, "smartpos", datetime.now(UTC) - timedelta(minutes=1), timeout_s=30, poll_s=0.1
    )
    new_id = restored["target_identifier"]

    out = backend.delete_restored_db_instance(target, new_id, db="smartpos")

    assert out["identifier"] == new_id and not out["dry_run"]
    left = {i["DBInstanceIdentifier"] for i in moto("rds").describe_db_instances()["DBInstances"]}
    assert name in left and new_id not in left
    again = backend.delete_restored_db_instance(target, new_id, db="smartpos")
    assert again["status"] == "not found"  # idempotent
    for wrong in (name, f"{name}-copy", "other-pitr-20270401020304"):
        with pytest.raises(UsageError, match="refusing to delete"):
            backend.delete_restored_db_instance(target, wrong, db="smartpos")


def test_restore_of_a_db_cluster_is_refused(make_target: Callable) -> None:
    target = make_target(**{"rds.smartpos.type": "cluster"})
    with pytest.raises(UsageError, match="DB instances only"):
        backend.restore_db_instance_to_point_in_time(
            target, "smartpos", datetime.now(UTC), timeout_s=1
        )


def test_dry_run_lists_the_restore_and_delete_and_makes_no_call(
    write_target: Callable, loopback_only: list
) -> None:
    target = write_target(endpoint_url=None, profile="absent-profile")
    dry = aws.DryRun()
    when = datetime(2027, 4, 1, 2, 0, tzinfo=UTC)

    result = backend.restore_db_instance_to_point_in_time(
        target, "smartpos", when, timeout_s=30, dry_run=dry
    )
    backend.delete_restored_db_instance(target, result["target_identifier"], dry_run=dry)

    assert loopback_only == []  # not one connection
    assert result["dry_run"] and not result["available"]
    assert [(c["service"], c["operation"]) for c in dry.calls] == [
        ("rds", "DescribeDBInstances"),
        ("rds", "RestoreDBInstanceToPointInTime"),
        ("rds", "DeleteDBInstance"),
    ]
    params = dry.calls[1]["params"]
    assert params["SourceDBInstanceIdentifier"] == "mpac-smartpos-staging"
    assert params["TargetDBInstanceIdentifier"] == result["target_identifier"]
    assert params["RestoreTime"] == when
    assert dry.calls[2]["params"]["DBInstanceIdentifier"] == result["target_identifier"]


def test_actions_restore_then_delete_measure_the_restore_on_moto(
    source, moto: Callable, tmp_path: Path
) -> None:
    from actions.rds import delete_restored_instance, restore_point_in_time

    target, name = source
    catalog = load_catalog()
    ctx = DrillContext(
        target=target,
        scenario=catalog.get("rds-pitr"),
        catalog=catalog,
        run_dir=tmp_path / "run",
        users=0,
        load_workers=0,
    )
    drill_context.register(ctx)
    config = {"mpac_run_dir": str(ctx.run_dir)}
    try:
        out = restore_point_in_time(restore_age_s=300, configuration=config)
        assert ctx.fault["action"] == "rds:RestoreDBInstanceToPointInTime"
        assert ctx.fault["resources"] == [name]
        assert ctx.injected_utc is not None
        sent = datetime.fromisoformat(out["restore_time"].replace("Z", "+00:00"))
        assert abs((ctx.injected_utc - sent).total_seconds() - 300) < 1e-3
        assert ctx.measurements["rto_s"] >= sum(s["duration_s"] for s in ctx.record.steps)
        assert (ctx.record.pitr or {})["target_identifier"] == out["target_identifier"]
        gone = delete_restored_instance(configuration=config)
        assert gone["identifier"] == out["target_identifier"]
        assert delete_restored_instance(configuration=config) == {"deleted": None}
        (cleanup,) = ctx.record.cleanup  # result.json's cleanup: what went, once
        assert cleanup["resource"] == out["target_identifier"]
        assert cleanup["what"] == "restored DB instance" and "status" in cleanup["outcome"]
        left = {
            i["DBInstanceIdentifier"] for i in moto("rds").describe_db_instances()["DBInstances"]
        }
        assert out["target_identifier"] not in left and name in left
    finally:
        drill_context.forget(ctx)


def test_rds_pitr_dry_run_on_staging_plans_restore_and_delete(
    tmp_path: Path, loopback_only: list
) -> None:
    outcome = run_drill("rds-pitr", load_target("staging"), runs_dir=tmp_path, dry_run=True)

    assert loopback_only == []
    ops = [c["operation"] for c in outcome.result["planned_calls"]]
    assert ops == [
        "DescribeDBInstances",  # the preflight: the source instance looked up, read-only
        "DescribeDBInstances",
        "RestoreDBInstanceToPointInTime",
        "DeleteDBInstance",
    ]
    assert [c["what"] for c in outcome.result["preflight"]] == ["RDS DB instance"]
    assert outcome.result["status"] == "completed" and outcome.result["dry_run"]
    assert [s["name"] for s in outcome.result["steps"]] == [
        "check source",
        "restore call",
        "wait until available",
    ]

"""The RDS side of the region-level DR drills (runbook §1.4, §1.5): the newest snapshot the
DR region holds (finding F3) and a restore of it into a new instance, with a bounded wait.

Plain functions taking an ``aws`` target first, building their clients through
:func:`mpac_drill.aws.client` in the target's DR region (``aws.dr_region``) unless told
otherwise. Re-exported by :mod:`mpac_drill.platform.aws.dr`.

Optional target keys: ``rds.dr_subnet_group`` and ``rds.dr_security_group_ids`` (the DR VPC
of a restored instance).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any, TypedDict

from mpac_drill.aws import DryRun, client
from mpac_drill.aws import dry_note as _dry
from mpac_drill.config import Target
from mpac_drill.platform.aws.pitr import wait_available
from mpac_drill.timefmt import iso

logger = logging.getLogger("mpac_drill")


class SnapshotInfo(TypedDict):
    db: str
    source_instance: str
    snapshot_id: str
    snapshot_arn: str | None
    region: str
    snapshot_type: str | None
    snapshot_create_time: str | None  # of this copy: a cross-region copy's own time
    original_snapshot_create_time: str | None  # when the source snapshot was taken
    snapshot_database_time: str | None  # the newest transaction in the snapshot
    data_as_of: str  # the data-loss bound: the first of the three above that RDS reports


class RestoreResult(TypedDict):
    db: str
    snapshot_id: str
    identifier: str
    region: str
    instance_class: str
    status: str | None
    available: bool
    waited_s: float
    endpoint_address: str | None
    endpoint_port: int | None
    dry_run: bool


def latest_snapshot(
    target: Target,
    db: str = "smartpos",
    region: str | None = None,
    dry_run: DryRun | None = None,
) -> SnapshotInfo | None:
    """The newest available DB snapshot of ``rds.<db>.identifier`` held in ``region``.

    Runbook finding F3: automated backups are regional, so what bounds the data lost with
    a region is the newest snapshot the DR region actually holds (manual, automated, or
    copied there). Snapshots are ordered by the time of their data: SnapshotDatabaseTime,
    else OriginalSnapshotCreateTime (a copy keeps it), else SnapshotCreateTime (which, for
    a copy, is when it was copied). Reads only.

    :param db: a key of ``rds`` in the target: ``smartpos`` or ``pgw``.
    :param region: where to look; default the target's ``aws.dr_region``.
    :returns: ``None`` when the region holds no available snapshot of the instance.
    """
    source = str(target.require(f"rds.{db}.identifier"))
    rds = client("rds", target, region=_dr_region(target, region), dry_run=dry_run)
    pages = rds.get_paginator("describe_db_snapshots").paginate(DBInstanceIdentifier=source)
    found = [
        (when, s)
        for page in pages
        for s in page.get("DBSnapshots", [])
        if s.get("Status") == "available"
        and s.get("DBInstanceIdentifier") == source
        and (when := _data_time(s)) is not None
    ]
    if not found:
        return None
    data_as_of, newest = max(found, key=lambda pair: pair[0])
    return SnapshotInfo(
        db=db,
        source_instance=source,
        snapshot_id=str(newest["DBSnapshotIdentifier"]),
        snapshot_arn=newest.get("DBSnapshotArn"),
        region=rds.meta.region_name,
        snapshot_type=newest.get("SnapshotType"),
        snapshot_create_time=_iso(newest.get("SnapshotCreateTime")),
        original_snapshot_create_time=_iso(newest.get("OriginalSnapshotCreateTime")),
        snapshot_database_time=_iso(newest.get("SnapshotDatabaseTime")),
        data_as_of=str(_iso(data_as_of)),
    )


def restore_from_snapshot(
    target: Target,
    db: str,
    snapshot_id: str,
    *,
    region: str | None = None,
    new_identifier: str | None = None,
    timeout_s: float = 3600,
    poll_s: float = 15.0,
    dry_run: DryRun | None = None,
) -> RestoreResult:
    """Restore a snapshot into a new DB instance in the DR region (runbook §1.4 step 4,
    §1.5 step 3), class ``rds.dr_instance_class``, and poll DescribeDBInstances until it
    is ``available`` or ``timeout_s`` has passed (``available`` says which; no raise).

    Creates ``<identifier>-dr-<UTC stamp>`` unless ``new_identifier`` is given; undone by
    deleting that instance. Raises ``ActivityFailed`` when it lands in a failed state.

    :param db: a key of ``rds`` in the target: ``smartpos`` or ``pgw``.
    :param snapshot_id: the snapshot's identifier or ARN, in that region.
    :param region: default the target's ``aws.dr_region``.
    :param timeout_s: the longest wait for ``available``, in seconds.
    :param poll_s: seconds between two DescribeDBInstances calls.
    """
    source = str(target.require(f"rds.{db}.identifier"))
    instance_class = str(target.require("rds.dr_instance_class"))
    new_id = new_identifier or _dr_identifier(source, datetime.now(UTC))
    rds = client("rds", target, region=_dr_region(target, region), dry_run=dry_run)
    where = rds.meta.region_name
    params: dict[str, Any] = {
        "DBInstanceIdentifier": new_id,
        "DBSnapshotIdentifier": snapshot_id,
        "DBInstanceClass": instance_class,
        "DeletionProtection": False,
        "Tags": [{"Key": "mpac-drill", "Value": "region-failover"}],
    }
    if target.get("rds.dr_subnet_group"):
        params["DBSubnetGroupName"] = str(target.get("rds.dr_subnet_group"))
    if target.get("rds.dr_security_group_ids"):
        params["VpcSecurityGroupIds"] = list(target.get("rds.dr_security_group_ids"))
    logger.info(
        "rds RestoreDBInstanceFromDBSnapshot %s -> %s (%s, %s)%s",
        snapshot_id,
        new_id,
        instance_class,
        where,
        _dry(dry_run),
    )
    inst = rds.restore_db_instance_from_db_snapshot(**params).get("DBInstance") or {}
    status = inst.get("DBInstanceStatus")
    t0 = time.monotonic()
    if dry_run is None and status != "available":
        inst, _ = wait_available(
            rds,
            new_id,
            inst,
            where=where,
            what=f"of {snapshot_id} into {new_id}",
            timeout_s=timeout_s,
            poll_s=poll_s,
        )
        status = inst.get("DBInstanceStatus", status)
    endpoint = inst.get("Endpoint") or {}
    port = endpoint.get("Port")
    return RestoreResult(
        db=db,
        snapshot_id=snapshot_id,
        identifier=new_id,
        region=where,
        instance_class=instance_class,
        status=status,
        available=status == "available",
        waited_s=round(time.monotonic() - t0, 3),
        endpoint_address=endpoint.get("Address"),
        endpoint_port=int(port) if port is not None else None,
        dry_run=dry_run is not None,
    )


# ---------------------------------------------------------------- helpers


def _dr_region(target: Target, region: str | None) -> str:
    """``region``, else the target's ``aws.dr_region`` (shared with ``aws_dr_cutover``)."""
    return str(region or target.require("aws.dr_region"))


def _dr_identifier(source: str, at: datetime) -> str:
    """``<source>-dr-<UTC yyyymmddHHMMSS>``, cut to RDS's 63 characters."""
    suffix = f"-dr-{at.astimezone(UTC).strftime('%Y%m%d%H%M%S')}"
    return source[: 63 - len(suffix)].rstrip("-") + suffix


#: The name a DR restore gets (public: the region drill records it before the restore call).
dr_identifier = _dr_identifier


def _data_time(snapshot: dict[str, Any]) -> datetime | None:
    for key in ("SnapshotDatabaseTime", "OriginalSnapshotCreateTime", "SnapshotCreateTime"):
        if isinstance(snapshot.get(key), datetime):
            return snapshot[key]  # type: ignore[no-any-return]
    return None


def _iso(dt: Any) -> str | None:
    if not isinstance(dt, datetime):
        return None
    return iso(dt)


__all__ = ["SnapshotInfo", "RestoreResult", "latest_snapshot", "restore_from_snapshot"]

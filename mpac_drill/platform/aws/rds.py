"""RDS failover on AWS (runbook §1.2): the calls behind ``actions/rds.py::failover_primary``
(point-in-time restore is ``pitr.py``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypedDict

from botocore.client import BaseClient

from mpac_drill.aws import DryRun, client
from mpac_drill.aws import dry_note as _dry
from mpac_drill.config import Target
from mpac_drill.errors import UsageError

#: The call runbook §1.2 gives for a manual RDS failover.
RUNBOOK_RDS_CALL = "failover-db-cluster"
_RDS_CALLS = {"instance": "reboot-db-instance --force-failover", "cluster": RUNBOOK_RDS_CALL}

logger = logging.getLogger("mpac_drill")


class RdsPrimary(TypedDict):
    instance: str | None
    availability_zone: str | None
    standby_availability_zone: str | None
    status: str | None


class RdsFailoverResult(TypedDict):
    db: str
    identifier: str
    type: str
    region: str
    api_call: str
    runbook_call: str
    runbook_call_correct: bool
    primary_before: RdsPrimary | None
    primary_after: RdsPrimary | None
    dry_run: bool


def failover_rds(
    target: Target,
    db: str = "smartpos",
    dry_run: DryRun | None = None,
    before_failover: Callable[[str], None] | None = None,
) -> RdsFailoverResult:
    """Fail the RDS primary over to its standby (runbook §1.2); RDS promotes the standby.

    ``rds.<db>.type`` picks the call: ``instance`` (Multi-AZ DB instance) →
    RebootDBInstance with ForceFailover; ``cluster`` (Aurora / Multi-AZ DB cluster) →
    FailoverDBCluster. The result records the primary seen just before and just after the
    call (an instance reboot moves it minutes later: see :func:`rds_primary`) and whether
    the runbook's ``failover-db-cluster`` is the right call for this database (findings
    F4/F6: it is not for a DB instance).

    :param db: a key of ``rds`` in the target: ``smartpos`` or ``pgw``.
    :param before_failover: called with ``rds:<API call>`` after the reads, immediately
        before the failover call.
    """
    identifier, kind = rds_settings(target, db)
    rds = client("rds", target, dry_run=dry_run)
    region = rds.meta.region_name
    before = _rds_primary(rds, identifier, kind)
    if before_failover is not None:  # the drill's injection instant: right before the call
        before_failover(f"rds:{_RDS_CALLS[kind]}")
    logger.info("rds %s %s (%s)%s", _RDS_CALLS[kind], identifier, region, _dry(dry_run))
    if kind == "instance":
        rds.reboot_db_instance(DBInstanceIdentifier=identifier, ForceFailover=True)
    else:
        rds.failover_db_cluster(DBClusterIdentifier=identifier)
    after = _rds_primary(rds, identifier, kind)
    return RdsFailoverResult(
        db=db,
        identifier=identifier,
        type=kind,
        region=region,
        api_call=_RDS_CALLS[kind],
        runbook_call=RUNBOOK_RDS_CALL,
        runbook_call_correct=_RDS_CALLS[kind] == RUNBOOK_RDS_CALL,
        primary_before=before,
        primary_after=after,
        dry_run=dry_run is not None,
    )


def rds_primary(
    target: Target, db: str = "smartpos", dry_run: DryRun | None = None
) -> RdsPrimary | None:
    """Where the primary of ``rds.<db>`` is now (``None`` only in a dry run).

    :param db: a key of ``rds`` in the target: ``smartpos`` or ``pgw``.
    :param before_failover: called with ``rds:<API call>`` after the reads, immediately
        before the failover call.
    """
    identifier, kind = rds_settings(target, db)
    return _rds_primary(client("rds", target, dry_run=dry_run), identifier, kind)


class RdsEvent(TypedDict):
    date: str
    message: str


def failover_events(target: Target, db: str, *, since: datetime) -> list[RdsEvent]:
    """RDS events of the ``failover`` category for ``rds.<db>`` since ``since``
    (DescribeEvents): "Multi-AZ instance failover completed", ..."""
    identifier, kind = rds_settings(target, db)
    found = client("rds", target).describe_events(
        SourceIdentifier=identifier,
        SourceType="db-instance" if kind == "instance" else "db-cluster",
        StartTime=since,
        EventCategories=["failover"],
    )
    out = []
    for e in found.get("Events", []):  # AWS filters; checked again, never trusted blindly
        date = e.get("Date")
        if isinstance(date, datetime) and date.tzinfo is None:
            date = date.replace(tzinfo=UTC)
        if isinstance(date, datetime) and date < since:
            continue
        categories = e.get("EventCategories")
        if categories is not None and "failover" not in categories:
            continue
        out.append(RdsEvent(date=str(e.get("Date")), message=str(e.get("Message", ""))))
    return out


def rds_settings(target: Target, db: str) -> tuple[str, str]:
    identifier = str(target.require(f"rds.{db}.identifier"))
    kind = str(target.require(f"rds.{db}.type"))
    if kind not in _RDS_CALLS:
        raise UsageError(
            f"target {target.name!r}: rds.{db}.type must be instance or cluster, not {kind!r}"
        )
    return identifier, kind


def _rds_primary(rds: BaseClient, identifier: str, kind: str) -> RdsPrimary | None:
    if kind == "cluster":
        clusters = rds.describe_db_clusters(DBClusterIdentifier=identifier).get("DBClusters", [])
        if not clusters:
            return None
        writers = [
            m["DBInstanceIdentifier"]
            for m in clusters[0].get("DBClusterMembers", [])
            if m.get("IsClusterWriter")
        ]
        if not writers:
            return RdsPrimary(
                instance=None,
                availability_zone=None,
                standby_availability_zone=None,
                status=clusters[0].get("Status"),
            )
        identifier = writers[0]
    found = rds.describe_db_instances(DBInstanceIdentifier=identifier).get("DBInstances", [])
    if not found:
        return None
    inst = found[0]
    return RdsPrimary(
        instance=identifier,
        availability_zone=inst.get("AvailabilityZone"),
        standby_availability_zone=inst.get("SecondaryAvailabilityZone"),
        status=inst.get("DBInstanceStatus"),
    )


__all__ = [
    "RUNBOOK_RDS_CALL",
    "RdsPrimary",
    "RdsFailoverResult",
    "failover_rds",
    "rds_primary",
    "rds_settings",
    "RdsEvent",
    "failover_events",
]

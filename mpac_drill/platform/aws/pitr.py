"""RDS point-in-time restore on AWS (runbook §2.3): the calls behind ``actions/rds.py``'s
``restore_point_in_time`` and its cleanup.

The restore goes to a new instance ``<source>-pitr-<UTC stamp>`` and is waited for with a
bound; only such an instance may be deleted again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypedDict

from botocore.client import BaseClient
from chaoslib.exceptions import ActivityFailed

from mpac_drill.aws import AwsCallFailed, DryRun, client
from mpac_drill.aws import dry_note as _dry
from mpac_drill.config import Target
from mpac_drill.errors import UsageError
from mpac_drill.platform.aws.rds import rds_settings
from mpac_drill.timefmt import iso

logger = logging.getLogger("mpac_drill")


class PitrStep(TypedDict):
    name: str
    started_at: str
    duration_s: float
    ok: bool
    detail: str


class PitrRestoreResult(TypedDict):
    db: str
    source: str
    target_identifier: str
    region: str
    requested_restore_time: str
    restore_time: str  # what was sent: the requested time, or LatestRestorableTime if earlier
    latest_restorable_time: str | None
    status: str | None
    available: bool
    waited_s: float
    endpoint: str | None
    steps: list[PitrStep]
    dry_run: bool


class PitrDeleteResult(TypedDict):
    identifier: str
    region: str
    status: str
    dry_run: bool


#: DB instance states a restore does not come back from.
RESTORE_FAILED = frozenset(
    {
        "failed",
        "incompatible-restore",
        "incompatible-parameters",
        "incompatible-network",
        "storage-full",
        "inaccessible-encryption-credentials",
    }
)


def wait_available(
    rds: BaseClient,
    identifier: str,
    answered: dict[str, Any],
    *,
    where: str,
    what: str,
    timeout_s: float,
    poll_s: float,
) -> tuple[dict[str, Any], bool]:
    """Poll DescribeDBInstances on a restored instance until it is ``available`` →
    ``(instance, True)``; past ``timeout_s`` a warning and ``(last seen, False)``.

    :param answered: the ``DBInstance`` the restore call answered (the starting point).
    :param what: names the restore in the error.
    :raises ActivityFailed: a state a restore does not come back from (``RESTORE_FAILED``).
    """
    t0, inst = time.monotonic(), answered
    status = inst.get("DBInstanceStatus")
    while True:
        if status == "available":
            return inst, True
        if status in RESTORE_FAILED:
            raise ActivityFailed(f"RDS restore {what} ({where}) ended {status}")
        waited = time.monotonic() - t0
        if waited >= timeout_s:
            logger.warning(
                "RDS restore %s (%s) not available after %.0f s: %s",
                identifier,
                where,
                waited,
                status,
            )
            return inst, False
        time.sleep(min(poll_s, timeout_s - waited))
        found = rds.describe_db_instances(DBInstanceIdentifier=identifier).get("DBInstances", [])
        inst = found[0] if found else inst
        status = inst.get("DBInstanceStatus", status)


def pitr_identifier(source: str, at: datetime) -> str:
    """``<source>-pitr-<UTC yyyymmddHHMMSS>``, cut to RDS's 63 characters (runbook §2.3)."""
    suffix = f"-pitr-{at.astimezone(UTC).strftime('%Y%m%d%H%M%S')}"
    return source[: 63 - len(suffix)].rstrip("-") + suffix


def _iso(dt: datetime) -> str:
    return iso(dt)


def _step(name: str, started: datetime, t0: float, detail: str, ok: bool = True) -> PitrStep:
    return PitrStep(
        name=name,
        started_at=_iso(started),
        duration_s=round(time.monotonic() - t0, 4),
        ok=ok,
        detail=detail,
    )


def restore_db_instance_to_point_in_time(
    target: Target,
    db: str,
    restore_time: datetime,
    *,
    timeout_s: float,
    poll_s: float = 15.0,
    dry_run: DryRun | None = None,
    before_restore: Callable[[str], None] | None = None,
) -> PitrRestoreResult:
    """Restore ``rds.<db>.identifier`` to ``restore_time`` into a new DB instance
    ``<identifier>-pitr-<stamp>`` (RestoreDBInstanceToPointInTime, runbook §2.3) and poll
    DescribeDBInstances until it is ``available``: a waiter bounded by ``timeout_s``.

    A restore time later than the source's LatestRestorableTime is moved back to it (RDS
    refuses later times) and both are reported. Does not raise on timeout (``available``
    says); raises ``ActivityFailed`` when the new instance lands in a failed state. Undone
    by :func:`delete_restored_db_instance`. Multi-AZ DB clusters are not supported yet.

    :param db: a key of ``rds`` in the target: ``smartpos`` or ``pgw``.
    :param restore_time: the point in time (timezone-aware).
    :param timeout_s: the longest wait for ``available``, in seconds.
    :param poll_s: seconds between two DescribeDBInstances calls.
    :param before_restore: called with the new instance's identifier right before the
        restore call (the write-ahead record of what to delete).
    """
    source, kind = rds_settings(target, db)
    if kind != "instance":
        raise UsageError(
            f"target {target.name!r}: rds.{db} is a DB cluster; point-in-time "
            "restore is implemented for DB instances only"
        )
    rds = client("rds", target, dry_run=dry_run)
    region = rds.meta.region_name
    new_id = pitr_identifier(source, datetime.now(UTC))
    steps: list[PitrStep] = []
    started, t0 = datetime.now(UTC), time.monotonic()
    found = rds.describe_db_instances(DBInstanceIdentifier=source).get("DBInstances", [])
    if not found and dry_run is None:
        raise ActivityFailed(f"RDS instance {source} not found in {region}")
    latest = found[0].get("LatestRestorableTime") if found else None
    when = min(restore_time, latest) if latest is not None else restore_time
    steps.append(
        _step(
            "check source",
            started,
            t0,
            f"{source} in {region}; latest restorable time {_iso(latest) if latest else 'unknown'}",
        )
    )
    params: dict[str, Any] = {
        "SourceDBInstanceIdentifier": source,
        "TargetDBInstanceIdentifier": new_id,
        "RestoreTime": when,
        "DeletionProtection": False,
        "Tags": [{"Key": "mpac-drill", "Value": "rds-pitr"}],
    }
    if target.get(f"rds.{db}.pitr_instance_class"):
        params["DBInstanceClass"] = str(target.get(f"rds.{db}.pitr_instance_class"))
    started, t0 = datetime.now(UTC), time.monotonic()
    logger.info(
        "rds RestoreDBInstanceToPointInTime %s -> %s at %s (%s)%s",
        source,
        new_id,
        _iso(when),
        region,
        _dry(dry_run),
    )
    if before_restore is not None:
        before_restore(new_id)
    answer = rds.restore_db_instance_to_point_in_time(**params)
    status = (answer.get("DBInstance") or {}).get("DBInstanceStatus")
    steps.append(_step("restore call", started, t0, f"{new_id} to {_iso(when)}: {status}"))
    started, t0 = datetime.now(UTC), time.monotonic()
    endpoint, available = None, False
    if dry_run is None:
        try:
            inst, available = wait_available(
                rds,
                new_id,
                answer.get("DBInstance") or {},
                where=region,
                what=new_id,
                timeout_s=timeout_s,
                poll_s=poll_s,
            )
        except ActivityFailed as exc:
            steps.append(_step("wait until available", started, t0, str(exc), ok=False))
            raise
        status = inst.get("DBInstanceStatus", status)
        endpoint = (inst.get("Endpoint") or {}).get("Address") if available else None
    waited = round(time.monotonic() - t0, 4)
    steps.append(
        _step(
            "wait until available",
            started,
            t0,
            f"{status} after {waited} s",
            ok=available or dry_run is not None,
        )
    )
    return PitrRestoreResult(
        db=db,
        source=source,
        target_identifier=new_id,
        region=region,
        requested_restore_time=_iso(restore_time),
        restore_time=_iso(when),
        latest_restorable_time=_iso(latest) if latest else None,
        status=status,
        available=available,
        waited_s=waited,
        endpoint=endpoint,
        steps=steps,
        dry_run=dry_run is not None,
    )


def delete_restored_db_instance(
    target: Target,
    identifier: str,
    *,
    db: str = "smartpos",
    timeout_s: float = 1800,
    poll_s: float = 15.0,
    dry_run: DryRun | None = None,
) -> PitrDeleteResult:
    """Delete a DB instance made by :func:`restore_db_instance_to_point_in_time`
    (DeleteDBInstance, no final snapshot, automated backups deleted). Refuses any name that
    is not ``<source>-pitr-...`` of ``rds.<db>``; retries while RDS says the instance is
    still busy (creating), for at most ``timeout_s``; a missing instance is already deleted.

    :param identifier: the restored instance's identifier.
    :param db: a key of ``rds`` in the target: ``smartpos`` or ``pgw``.
    """
    source, _ = rds_settings(target, db)
    prefix = pitr_identifier(source, datetime.now(UTC))[:-14]  # "<source>-pitr-"
    if not (identifier.startswith(prefix) and identifier[len(prefix) :].isdigit()):
        raise UsageError(f"refusing to delete {identifier}: not a point-in-time copy of {source}")
    rds = client("rds", target, dry_run=dry_run)
    region = rds.meta.region_name
    logger.info("rds DeleteDBInstance %s (%s)%s", identifier, region, _dry(dry_run))
    t0 = time.monotonic()
    while True:
        try:
            answer = rds.delete_db_instance(
                DBInstanceIdentifier=identifier, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
            )
            status = str((answer.get("DBInstance") or {}).get("DBInstanceStatus", "deleting"))
            break
        except AwsCallFailed as exc:
            if exc.code == "DBInstanceNotFound":
                status = "not found"
                break
            if exc.code != "InvalidDBInstanceState" or time.monotonic() - t0 >= timeout_s:
                raise
            time.sleep(poll_s)
    return PitrDeleteResult(
        identifier=identifier, region=region, status=status, dry_run=dry_run is not None
    )


__all__ = [
    "PitrStep",
    "PitrRestoreResult",
    "PitrDeleteResult",
    "RESTORE_FAILED",
    "wait_available",
    "pitr_identifier",
    "restore_db_instance_to_point_in_time",
    "delete_restored_db_instance",
]

"""RDS faults (runbook 1.2): fail over the primary; point-in-time restore drill (runbook 2.3).

AWS: a Multi-AZ DB *instance* fails over with ``RebootDBInstance(ForceFailover=True)``; a
Multi-AZ DB *cluster* (or Aurora) with ``FailoverDBCluster`` (the target's ``rds.<db>.type``
picks; runbook finding F4). Sandbox: the PostgreSQL primary crashes and the failover
controller promotes the standby after ``rds.failover_delay_s``.

Point-in-time restore: AWS ``RestoreDBInstanceToPointInTime`` into a new instance; sandbox:
the newest base backup before the restore time plus the archived WAL into a new PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from mpac_drill.drill.context import current
from mpac_drill.drill.platforms import platform_for

__all__ = [
    "failover_primary",
    "await_available",
    "restore_point_in_time",
    "delete_restored_instance",
]


def failover_primary(
    db: str = "smartpos",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Fail over the primary of database ``db`` (``smartpos`` or ``pgw``).

    Undone by RDS itself (the standby is promoted); the rollback ``await_available`` waits
    until the pair is whole again.

    :param db: which database of the target (``rds.<db>``)

    ::

        - type: action
          name: failover-rds
          provider: {type: python, module: actions.rds, func: failover_primary,
                     arguments: {db: smartpos}}
    """
    ctx = current(configuration)
    ctx.phase("failing over the RDS primary")
    return dict(platform_for(ctx).failover_database(db))


def await_available(
    db: str = "smartpos",
    timeout_s: float = 900,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Rollback: wait until the database has a primary and a standby again (bounded)."""
    ctx = current(configuration)
    out = platform_for(ctx).await_database(db, timeout_s)
    ctx.record.primary_after = out["primary_after"]
    return dict(out)


def restore_point_in_time(
    db: str = "smartpos",
    restore_age_s: float = 5.0,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Restore database ``db`` to T = now − ``restore_age_s`` into a NEW instance (runbook
    §2.3) and measure the restore: RTO is its wall time from the start of the restore.

    Breaks nothing: the source keeps serving. Undone by ``delete_restored_instance``.
    Sandbox: verified against the canary (every write acknowledged before T present, none
    written after T). AWS: ``<identifier>-pitr-<stamp>``, waited for until available
    (bounded by ``drill.recovery_bound_s``); the data is not verified (no canary there).

    :param db: which database of the target (``rds.<db>``)
    :param restore_age_s: how far back T lies, in seconds

    ::

        - type: action
          name: restore-point-in-time
          provider: {type: python, module: actions.rds, func: restore_point_in_time,
                     arguments: {db: smartpos, restore_age_s: 5}}
    """
    ctx = current(configuration)
    ctx.phase("restoring to a point in time")
    return platform_for(ctx).restore_point_in_time(db, float(restore_age_s))


def delete_restored_instance(
    db: str = "smartpos",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Rollback: stop and delete the instance ``restore_point_in_time`` created (idempotent;
    nothing to do when none was created). Never touches the source instance.

    ::

        - type: action
          name: delete-restored-instance
          provider: {type: python, module: actions.rds, func: delete_restored_instance}
    """
    return platform_for(current(configuration)).delete_restored(db)

"""RDS faults (runbook 1.2): fail over the primary; point-in-time restore drill (runbook 2.3).

AWS: a Multi-AZ DB *instance* fails over with ``RebootDBInstance(ForceFailover=True)``; a
Multi-AZ DB *cluster* (or Aurora) with ``FailoverDBCluster`` (the target's ``rds.<db>.type``
picks; runbook finding F4). Sandbox: the PostgreSQL primary crashes and the failover
controller promotes the standby after ``rds.failover_delay_s``.

Point-in-time restore: AWS ``RestoreDBInstanceToPointInTime`` into a new instance; sandbox:
the newest base backup before the restore time plus the archived WAL into a new PostgreSQL.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from chaoslib.types import Configuration, Secrets

from mpac_drill.backends import backend_for
from mpac_drill.drill.context import current

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
    backend = backend_for(ctx.target)
    if ctx.is_sandbox:
        if ctx.dry_run:
            return ctx.plan("crash the PostgreSQL primary (controller promotes the standby)", db=db)
        return backend.failover_rds(ctx, db)
    ident = str(ctx.setting(f"rds.{db}.identifier"))
    ctx.mark_injected("rds:failover", [ident], db=db)
    result = backend.failover_rds(ctx.target, db, dry_run=ctx.dry_run_recorder)
    ctx.fault["action"] = f"rds:{result['api_call']}"
    if not result["runbook_call_correct"]:
        ctx.extras.setdefault("findings", []).append(
            {
                "id": "F4",
                "section": "1.2",
                "summary": f"runbook names {result['runbook_call']}; a Multi-AZ DB "
                f"{result['type']} fails over with {result['api_call']}",
                "evidence": f"{ident} is a DB {result['type']} in {result['region']}",
            }
        )
    return dict(result)


def await_available(
    db: str = "smartpos",
    timeout_s: float = 900,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Rollback: wait until the database has a primary and a standby again (bounded)."""
    ctx = current(configuration)
    backend = backend_for(ctx.target)
    if ctx.is_sandbox:
        if ctx.dry_run:
            return ctx.plan("wait until primary and standby are whole again", db=db)
        out = backend.wait_healthy(ctx, timeout_s=min(timeout_s, 120))
        out["primary_after"] = backend.primary_after(ctx, "rds")
        ctx.extras["primary_after"] = out["primary_after"]
        return out
    primary = backend.rds_primary(ctx.target, db, dry_run=ctx.dry_run_recorder)
    return {"primary_after": dict(primary) if primary else None}


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
    backend = backend_for(ctx.target)
    if ctx.is_sandbox:
        if ctx.dry_run:
            return {"dry_run": True, "db": db, "restore_age_s": restore_age_s}
        return backend.restore_point_in_time(
            ctx, db, float(restore_age_s), timeout_s=ctx.recovery_bound_s()
        )
    ident = str(ctx.setting(f"rds.{db}.identifier"))
    ctx.mark_injected(
        "rds:RestoreDBInstanceToPointInTime", [ident], db=db, restore_age_s=restore_age_s
    )
    assert ctx.injected_utc is not None and ctx.injected_mono is not None
    restore_time = ctx.injected_utc - timedelta(seconds=float(restore_age_s))
    result = backend.restore_db_instance_to_point_in_time(
        ctx.target, db, restore_time, timeout_s=ctx.recovery_bound_s(), dry_run=ctx.dry_run_recorder
    )
    ctx.extras["_pitr_instance"] = {"identifier": result["target_identifier"], "db": db}
    ctx.extras["steps"] = [dict(s) for s in result["steps"]]
    ctx.fault.update(
        target_identifier=result["target_identifier"], restore_time=result["restore_time"]
    )
    if result["available"] and not result["dry_run"]:
        ctx.measurements["rto_s"] = round(time.monotonic() - ctx.injected_mono, 4)
    ctx.extras["pitr"] = {k: v for k, v in result.items() if k != "steps"}
    if not result["dry_run"]:
        ctx.note("restored data not verified: no canary on this target")
    return dict(result)


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
    ctx = current(configuration)
    backend = backend_for(ctx.target)
    if ctx.is_sandbox:
        return backend.delete_restored_instance(ctx)
    handle = ctx.extras.get("_pitr_instance")
    if not handle or handle.get("deleted"):
        return {"deleted": None}
    out = backend.delete_restored_db_instance(
        ctx.target, handle["identifier"], db=handle.get("db", db), dry_run=ctx.dry_run_recorder
    )
    handle["deleted"] = True
    return dict(out)

"""RDS faults (runbook 1.2): fail over the primary.

AWS: a Multi-AZ DB *instance* fails over with ``RebootDBInstance(ForceFailover=True)``; a
Multi-AZ DB *cluster* (or Aurora) with ``FailoverDBCluster`` (the target's ``rds.<db>.type``
picks; runbook finding F4). Sandbox: the PostgreSQL primary crashes and the failover
controller promotes the standby after ``rds.failover_delay_s``.
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from mpac_drill.backends import backend_for
from mpac_drill.drill.context import current

__all__ = ["failover_primary", "await_available"]


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
        return backend.failover_rds(ctx, db)
    ident = str(ctx.setting(f"rds.{db}.identifier"))
    ctx.mark_injected("rds:failover", [ident], db=db)
    result = backend.failover_rds(ctx.target, db, dry_run=ctx.dry_run_recorder)
    ctx.fault["action"] = f"rds:{result['api_call']}"
    if not result["runbook_call_correct"]:
        ctx.extras.setdefault("findings", []).append({
            "id": "F4", "section": "1.2",
            "summary": f"runbook names {result['runbook_call']}; a Multi-AZ DB "
                       f"{result['type']} fails over with {result['api_call']}",
            "evidence": f"{ident} is a DB {result['type']} in {result['region']}"})
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
        out = backend.wait_healthy(ctx, timeout_s=min(timeout_s, 120))
        out["primary_after"] = backend.primary_after(ctx, "rds")
        return out
    primary = backend.rds_primary(ctx.target, db, dry_run=ctx.dry_run_recorder)
    return {"primary_after": dict(primary) if primary else None}

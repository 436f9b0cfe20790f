"""ElastiCache faults (runbook 1.3): fail the Redis primary.

AWS: ``TestFailover`` on the replication group's node group. Sandbox: the Redis primary
crashes and the Sentinels promote the replica after ``redis.down_after_ms``.
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from mpac_drill.backends import backend_for
from mpac_drill.drill.context import current

__all__ = ["failover_primary", "await_available"]


def failover_primary(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Fail the cache primary; the replica is promoted.

    ::

        - type: action
          name: failover-redis
          provider: {type: python, module: actions.elasticache, func: failover_primary}
    """
    ctx = current(configuration)
    ctx.phase("failing the Redis primary")
    backend = backend_for(ctx.target)
    if ctx.is_sandbox:
        if ctx.dry_run:
            return ctx.plan("crash the Redis primary (Sentinel promotes the replica)")
        return backend.failover_elasticache(ctx)
    group = str(ctx.setting("elasticache.replication_group"))
    ctx.mark_injected("elasticache:TestFailover", [group])
    return dict(backend.failover_elasticache(ctx.target, dry_run=ctx.dry_run_recorder))


def await_available(
    timeout_s: float = 600,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Rollback: wait until the cache has a primary and a replica again (bounded)."""
    ctx = current(configuration)
    backend = backend_for(ctx.target)
    if ctx.is_sandbox:
        if ctx.dry_run:
            return ctx.plan("wait until primary and replica are whole again")
        out = backend.wait_healthy(ctx, timeout_s=min(timeout_s, 120))
        out["primary_after"] = backend.primary_after(ctx, "elasticache")
        return out
    return {"primary_after": backend.cache_primary(ctx.target, dry_run=ctx.dry_run_recorder)}

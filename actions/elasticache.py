"""ElastiCache faults (runbook 1.3): fail the Redis primary.

AWS: ``TestFailover`` on the replication group's node group. Sandbox: the Redis primary
crashes and the Sentinels promote the replica after ``redis.down_after_ms``.
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from mpac_drill.drill.context import current
from mpac_drill.drill.platforms import platform_for

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
    return dict(platform_for(ctx).failover_cache())


def await_available(
    timeout_s: float = 600,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Rollback: wait until the cache has a primary and a replica again (bounded)."""
    ctx = current(configuration)
    return dict(platform_for(ctx).await_cache(timeout_s))

"""ElastiCache on the sandbox (runbook §1.3): the Redis primary crashes (SIGKILL) and the
three Sentinels promote the replica after ``redis.down_after_ms``."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any

from mpac_drill.platform.sandbox.effect import processes_gone
from mpac_drill.sandbox import control
from mpac_drill.sandbox.procs import kill_tree

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext


def failover_elasticache(ctx: DrillContext) -> dict[str, Any]:
    """Crash the Redis primary; the Sentinels promote the replica."""
    view = control.view(ctx.target)
    primary = view.by_role("elasticache", "primary")
    if not primary or not primary[0]["pid"]:
        raise ctx.failed("the sandbox has no running Redis primary")
    p = primary[0]
    ctx.record.ground_truth.update(down_after_ms=ctx.setting("redis.down_after_ms"))
    ctx.mark_injected("elasticache:TestFailover", [p["name"]], primary_before=p["name"])
    kill_tree(int(p["pid"]), signal.SIGKILL)
    alive = processes_gone([int(p["pid"])])
    ctx.fault_took_effect(
        not alive,
        primary_before=p["name"],
        evidence="Redis primary process gone after SIGKILL" if not alive else "still alive",
    )
    return {"primary_before": p["name"]}


__all__ = ["failover_elasticache"]

"""Faults on the local sandbox: real processes killed, a real standby detached.

Each function reads the sandbox's current state (roles change after every failover), marks
the injection instant on the drill context immediately before the destructive call, and
returns a JSON-able record. The sandbox daemon does the recovery, as AWS would.
"""

from __future__ import annotations

import math
import signal
import time
from typing import Any

import psycopg

from mpac_drill.drill.context import DrillContext
from mpac_drill.errors import UsageError
from mpac_drill.sandbox import control
from mpac_drill.sandbox.postgres import conninfo
from mpac_drill.sandbox.procs import kill_tree


def _fresh(ctx: DrillContext) -> control.SandboxView:
    return control.view(ctx.target)


def _pick(names: list[str], count: int | None, percent: float | None) -> list[str]:
    if count is not None and percent is not None:
        raise UsageError("give either count or percent, not both")
    if count is not None:
        if count < 1:
            raise UsageError(f"count must be at least 1, not {count}")
        return names[:count]
    if percent is not None:
        if not 0 < percent <= 100:
            raise UsageError(f"percent must be in (0, 100], not {percent}")
        return names[:max(1, math.ceil(len(names) * percent / 100))]
    return names


def stop_tasks(ctx: DrillContext, service: str, count: int | None = None,
               percent: float | None = None) -> dict[str, Any]:
    """Kill (SIGKILL, a crash) all, ``count`` or ``percent`` of a service's tasks."""
    view = _fresh(ctx)
    tasks = [c for c in view.state["components"]
             if c["kind"] == "ecs" and c["name"].startswith(f"{service}/") and c["pid"]]
    if not tasks:
        known = sorted({c["name"].split("/")[0] for c in view.state["components"]
                        if c["kind"] == "ecs"})
        raise UsageError(f"sandbox has no running task of service {service!r} "
                         f"(services: {', '.join(known)})")
    chosen = [t for t in tasks if t["name"] in _pick([t["name"] for t in tasks], count, percent)]
    ctx.extras.setdefault("ground_truth", {})["task_start_delay_s"] = ctx.setting(
        "ecs.task_start_delay_s")
    ctx.mark_injected("ecs:StopTask", [t["name"] for t in chosen], service=service)
    for t in chosen:
        kill_tree(int(t["pid"]), signal.SIGKILL)
    return {"service": service, "running_before": len(tasks),
            "stopped": [t["name"] for t in chosen]}


def _sql(port: int, password: str, *statements: str) -> None:
    with psycopg.connect(conninfo(port, password), autocommit=True) as conn:
        for s in statements:
            conn.execute(s)  # type: ignore[arg-type]


def failover_rds(ctx: DrillContext, db: str = "smartpos") -> dict[str, Any]:
    """Crash the PostgreSQL primary (postmaster and every child); the daemon promotes.

    With ``rds.replication_lag_s`` = L > 0, the standby first stops receiving WAL (and the
    primary stops waiting for it), L seconds pass, then the primary crashes: the writes of
    those L seconds are acknowledged but lost: a known RPO to check the canary against.
    """
    view = _fresh(ctx)
    primary = view.by_role("rds", "primary")
    standby = view.by_role("rds", "standby")
    if not primary or not primary[0]["pid"]:
        raise ctx.failed("the sandbox has no running RDS primary")
    p = primary[0]
    lag = float(ctx.setting("rds.replication_lag_s"))
    pw = view.secrets["db_password"]
    ctx.extras.setdefault("ground_truth", {}).update(
        failover_delay_s=ctx.setting("rds.failover_delay_s"), replication_lag_s=lag)
    detached_at = None
    if lag > 0 and standby:
        s_port = int(standby[0]["address"].rsplit(":", 1)[1])
        p_port = int(p["address"].rsplit(":", 1)[1])
        _sql(p_port, pw, "ALTER SYSTEM SET synchronous_standby_names = ''",
             "SELECT pg_reload_conf()")
        _sql(s_port, pw, "ALTER SYSTEM SET primary_conninfo = ''", "SELECT pg_reload_conf()")
        detached_at = time.monotonic()
        ctx.phase(f"standby detached; primary crashes in {lag:g} s")
        while time.monotonic() - detached_at < lag:  # the configured loss window
            time.sleep(0.005)
    ctx.mark_injected("rds:RebootDBInstance(ForceFailover)", [p["name"]], db=db,
                      primary_before=p["name"], standby=standby[0]["name"] if standby else None)
    if detached_at is not None and ctx.injected_mono is not None:
        ctx.fault["standby_detached_s_before"] = round(ctx.injected_mono - detached_at, 4)
    kill_tree(int(p["pid"]), signal.SIGKILL)
    return {"db": db, "primary_before": p["name"], "api_call": "sandbox: kill primary",
            "replication_lag_s": lag}


def failover_elasticache(ctx: DrillContext) -> dict[str, Any]:
    """Crash the Redis primary; the Sentinels promote the replica."""
    view = _fresh(ctx)
    primary = view.by_role("elasticache", "primary")
    if not primary or not primary[0]["pid"]:
        raise ctx.failed("the sandbox has no running Redis primary")
    p = primary[0]
    ctx.extras.setdefault("ground_truth", {}).update(
        down_after_ms=ctx.setting("redis.down_after_ms"))
    ctx.mark_injected("elasticache:TestFailover", [p["name"]], primary_before=p["name"])
    kill_tree(int(p["pid"]), signal.SIGKILL)
    return {"primary_before": p["name"]}


def wait_healthy(ctx: DrillContext, timeout_s: float = 60) -> dict[str, Any]:
    """Rollback helper: wait until every sandbox component is healthy again."""
    started = time.monotonic()
    control.wait_healthy(ctx.target, timeout_s=timeout_s)
    return {"healthy": True, "waited_s": round(time.monotonic() - started, 3)}


def primary_after(ctx: DrillContext, kind: str) -> str | None:
    view = _fresh(ctx)
    p = view.by_role(kind, "primary")
    return p[0]["name"] if p else None

"""ECS on the sandbox (runbook §1.1): a service's tasks are real processes, killed outright
(SIGKILL, a crash); the sandbox's supervisor replaces them after ``ecs.task_start_delay_s``."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any

from mpac_drill.errors import UsageError
from mpac_drill.platform import tasks_to_stop
from mpac_drill.platform.sandbox.effect import processes_gone
from mpac_drill.sandbox import control
from mpac_drill.sandbox.procs import kill_tree

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext


def stop_tasks(
    ctx: DrillContext, service: str, count: int | None = None, percent: float | None = None
) -> dict[str, Any]:
    """Kill (SIGKILL, a crash) all, ``count`` or ``percent`` of a service's tasks."""
    view = control.view(ctx.target)
    tasks = [
        c
        for c in view.state["components"]
        if c["kind"] == "ecs" and c["name"].startswith(f"{service}/") and c["pid"]
    ]
    if not tasks:
        known = sorted(
            {c["name"].split("/")[0] for c in view.state["components"] if c["kind"] == "ecs"}
        )
        raise UsageError(
            f"sandbox has no running task of service {service!r} (services: {', '.join(known)})"
        )
    chosen = tasks[: tasks_to_stop(len(tasks), count, percent)]
    ctx.record.ground_truth["task_start_delay_s"] = ctx.setting("ecs.task_start_delay_s")
    ctx.mark_injected("ecs:StopTask", [t["name"] for t in chosen], service=service)
    for t in chosen:
        kill_tree(int(t["pid"]), signal.SIGKILL)
    alive = processes_gone([int(t["pid"]) for t in chosen])
    ctx.fault_took_effect(
        not alive,
        stopped=[t["name"] for t in chosen],
        evidence="task processes gone after SIGKILL"
        if not alive
        else f"pids {alive} still alive after SIGKILL",
    )
    return {
        "service": service,
        "running_before": len(tasks),
        "stopped": [t["name"] for t in chosen],
    }


__all__ = ["stop_tasks"]

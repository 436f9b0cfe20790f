"""ECS faults (runbook 1.1): stop the tasks of a service.

On the sandbox the tasks are real processes killed outright; on AWS each task gets
``ecs:StopTask``. Either way ECS (or the sandbox's supervisor) starts replacements, and the
observer measures how long the ALB answered 503.
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from mpac_drill.drill.context import current
from mpac_drill.drill.platforms import platform_for

__all__ = ["stop_tasks", "await_service_healthy"]


def stop_tasks(
    service: str = "svc-portal",
    count: int | None = None,
    percent: float | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Stop all tasks of ``service``, or ``count`` of them, or ``percent`` of them.

    Undone by ECS itself (replacement tasks); the rollback ``await_service_healthy`` waits
    for it.

    :param service: a service name of the target (``ecs.services`` key)
    :param count: stop this many tasks
    :param percent: stop this share of the tasks (rounded up, at least one)

    ::

        - type: action
          name: stop-portal-tasks
          provider:
            type: python
            module: actions.ecs
            func: stop_tasks
            arguments: {service: svc-portal}
    """
    ctx = current(configuration)
    ctx.phase(f"stopping tasks of {service}")
    return dict(platform_for(ctx).stop_tasks(service, count=count, percent=percent))


def await_service_healthy(
    service: str = "svc-portal",
    timeout_s: float = 600,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Rollback: wait until the service runs its desired count again (bounded).

    :param service: a service name of the target
    :param timeout_s: give up after this long
    """
    ctx = current(configuration)
    return dict(platform_for(ctx).await_service(service, timeout_s))

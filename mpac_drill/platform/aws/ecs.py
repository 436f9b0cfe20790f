"""ECS on AWS (runbook §1.1): the calls behind ``actions/ecs.py``.

Like every module of ``mpac_drill.platform.aws``, each function takes an ``aws`` target
first, builds its clients through :func:`mpac_drill.aws.client` (so ``aws.endpoint_url``
points it at moto in tests, and a :class:`~mpac_drill.aws.DryRun` records instead of
calling), and returns a JSON-able ``TypedDict``. Failed calls raise ``ActivityFailed``
naming the resource and region.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypedDict

from botocore.client import BaseClient
from chaoslib.exceptions import ActivityFailed

from mpac_drill.aws import DryRun, client
from mpac_drill.aws import dry_note as _dry
from mpac_drill.config import Target
from mpac_drill.errors import UsageError
from mpac_drill.platform import tasks_to_stop

logger = logging.getLogger("mpac_drill")

#: The ECS service key of mpac-obs, which runs in its own stack (target section ``obs``).
OBS_SERVICE = "mpac-obs"


class StopTasksResult(TypedDict):
    cluster: str
    service: str
    region: str
    running_before: int
    stopped: list[str]
    reason: str
    dry_run: bool


class ServiceStableResult(TypedDict):
    cluster: str
    service: str
    region: str
    stable: bool
    desired: int
    running: int
    waited_s: float


# ---------------------------------------------------------------- ECS


def stop_tasks(
    target: Target,
    service: str,
    *,
    count: int | None = None,
    percent: float | None = None,
    reason: str = "mpac-drill ecs-task-failure",
    dry_run: DryRun | None = None,
    before_stop: Callable[[list[str]], None] | None = None,
) -> StopTasksResult:
    """Stop running tasks of one ECS service (runbook §1.1); ECS itself starts new ones.

    Lists the service's tasks whose desired status is RUNNING (ListTasks, paginated) and
    calls StopTask on all of them, on the first ``count``, or on ``percent`` % of them
    (rounded up, at least one). Undone by the ECS scheduler; :func:`wait_service_stable`
    waits for it.

    :param service: a key of ``ecs.services`` in the target, or an ECS service name.
    :param count: how many tasks to stop; ``None`` with ``percent`` ``None`` stops all.
    :param percent: share of the running tasks to stop, ``0 < percent <= 100``.
    :param reason: the stop reason ECS records on each task.
    :param before_stop: called with the chosen task ARNs after ListTasks, immediately before
        the first StopTask: where the drill marks its injection instant.
    :raises ActivityFailed: when the service has no task to stop (outside a dry run).
    """
    tasks_to_stop(0, count, percent)  # refuses a bad share before any call
    cluster, name = ecs_location(target, service, dry=dry_run is not None)
    ecs = client("ecs", target, dry_run=dry_run)
    region = ecs.meta.region_name
    pages = ecs.get_paginator("list_tasks").paginate(
        cluster=cluster, serviceName=name, desiredStatus="RUNNING"
    )
    running = [arn for page in pages for arn in page.get("taskArns", [])]
    if not running and dry_run is None:
        raise ActivityFailed(
            f"ECS service {name} in cluster {cluster} ({region}) has no running task to stop"
        )
    chosen = running[: tasks_to_stop(len(running), count, percent)]
    if before_stop is not None:
        before_stop(list(chosen))
    for done, arn in enumerate(chosen):
        logger.info(
            "ecs StopTask %s (service %s, cluster %s, %s)%s",
            arn,
            name,
            cluster,
            region,
            _dry(dry_run),
        )
        try:
            ecs.stop_task(cluster=cluster, task=arn, reason=reason)
        except ActivityFailed as exc:
            raise ActivityFailed(f"{exc} (after stopping {done} of {len(chosen)})") from exc
    return StopTasksResult(
        cluster=cluster,
        service=name,
        region=region,
        running_before=len(running),
        stopped=chosen,
        reason=reason,
        dry_run=dry_run is not None,
    )


class TaskState(TypedDict):
    last_status: str
    desired_status: str
    stopped_reason: str | None


def wait_tasks_left_running(
    target: Target,
    service: str,
    arns: list[str],
    *,
    timeout_s: float = 60.0,
    poll_s: float = 1.0,
) -> dict[str, TaskState]:
    """DescribeTasks until every task of ``arns`` has left RUNNING (ECS is draining or has
    stopped it), or ``timeout_s``: each task's last state, the fault's evidence."""
    cluster, _ = ecs_location(target, service)
    ecs = client("ecs", target)
    deadline = time.monotonic() + timeout_s
    while True:
        states: dict[str, TaskState] = {}
        for start in range(0, len(arns), 100):  # DescribeTasks takes at most 100
            found = ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100])
            for task in found.get("tasks", []):
                states[task["taskArn"]] = TaskState(
                    last_status=str(task.get("lastStatus", "?")),
                    desired_status=str(task.get("desiredStatus", "?")),
                    stopped_reason=task.get("stoppedReason"),
                )
        done = all(st["last_status"] != "RUNNING" for st in states.values())
        if (done and len(states) == len(arns)) or time.monotonic() >= deadline:
            return states
        time.sleep(poll_s)


def running_tasks(target: Target, service: str, *, exclude: list[str]) -> list[str]:
    """The service's RUNNING tasks now, but ``exclude``: the replacements ECS started."""
    cluster, name = ecs_location(target, service)
    ecs = client("ecs", target)
    pages = ecs.get_paginator("list_tasks").paginate(
        cluster=cluster, serviceName=name, desiredStatus="RUNNING"
    )
    return [a for page in pages for a in page.get("taskArns", []) if a not in set(exclude)]


def tasks_running(target: Target, service: str, dry_run: DryRun | None = None) -> int:
    """How many tasks of the service ECS counts as RUNNING (DescribeServices runningCount).

    :param service: a key of ``ecs.services`` in the target, or an ECS service name.
    """
    ecs = client("ecs", target, dry_run=dry_run)
    return _service_state(ecs, target, service, dry_run is not None)["running"]


def wait_service_stable(
    target: Target,
    service: str,
    timeout_s: float,
    *,
    poll_s: float = 5.0,
    dry_run: DryRun | None = None,
) -> ServiceStableResult:
    """Poll DescribeServices until running == desired, or until ``timeout_s`` has passed.

    Does not raise on timeout: ``stable`` says whether the service got there.

    :param service: a key of ``ecs.services`` in the target, or an ECS service name.
    :param timeout_s: the longest wait, in seconds.
    :param poll_s: seconds between two DescribeServices calls.
    """
    ecs = client("ecs", target, dry_run=dry_run)
    started = time.monotonic()
    while True:
        state = _service_state(ecs, target, service, dry_run is not None)
        state["waited_s"] = round(time.monotonic() - started, 3)
        if state["stable"] or state["waited_s"] >= timeout_s or dry_run is not None:
            break
        time.sleep(min(poll_s, max(timeout_s - state["waited_s"], 0.0)))
    if not state["stable"]:
        logger.warning(
            "ECS service %s (%s) not stable after %.1f s: %d of %d running",
            state["service"],
            state["region"],
            state["waited_s"],
            state["running"],
            state["desired"],
        )
    return state


def _service_state(ecs: BaseClient, target: Target, service: str, dry: bool) -> ServiceStableResult:
    cluster, name = ecs_location(target, service, dry=dry)
    region = ecs.meta.region_name
    found = ecs.describe_services(cluster=cluster, services=[name])
    services = found.get("services", [])
    if not services and not dry:
        why = "; ".join(f.get("reason", "?") for f in found.get("failures", [])) or "missing"
        raise ActivityFailed(f"ECS service {name} not found in cluster {cluster} ({region}): {why}")
    desired = int(services[0]["desiredCount"]) if services else 0
    running = int(services[0]["runningCount"]) if services else 0
    return ServiceStableResult(
        cluster=cluster,
        service=name,
        region=region,
        stable=desired == running,
        desired=desired,
        running=running,
        waited_s=0.0,
    )


def _ecs_service(target: Target, service: str) -> str:
    return str(target.get(f"ecs.services.{service}.service", service))


def ecs_location(target: Target, service: str, *, dry: bool = False) -> tuple[str, str]:
    """``(cluster, ECS service name)`` of ``service``.

    ``mpac-obs`` runs in its own stack (runbook §1.6): ``obs.cluster`` and ``obs.service``
    of the target, when it has an ``obs`` section; an unset one is a usage error, or the
    placeholder ``UNSET.obs.<key>`` in a dry run's plan. Any other service is in
    ``ecs.cluster``, named by ``ecs.services.<service>.service`` (else ``service`` itself).
    """
    if service != OBS_SERVICE or not isinstance(target.get("obs"), dict):
        return str(target.require("ecs.cluster")), _ecs_service(target, service)
    names = []
    for key in ("obs.cluster", "obs.service"):
        value = target.get(key)
        if not value and not dry:
            raise UsageError(f"target {target.name!r} ({target.path}) does not set {key}")
        names.append(str(value or f"UNSET.{key}"))
    return names[0], names[1]


__all__ = [
    "OBS_SERVICE",
    "ServiceStableResult",
    "StopTasksResult",
    "ecs_location",
    "stop_tasks",
    "TaskState",
    "running_tasks",
    "wait_tasks_left_running",
    "tasks_running",
    "wait_service_stable",
]

"""The AWS backend: the calls behind ``actions/ecs.py``, ``actions/rds.py`` and friends.

Each function takes an ``aws`` target first, builds its clients through
:func:`mpac_drill.aws.client` (so ``aws.endpoint_url`` points it at moto in tests, and a
:class:`~mpac_drill.aws.DryRun` records instead of calling), and returns a JSON-able
``TypedDict``. Failed calls raise ``ActivityFailed`` naming the resource and region.
ECS, ElastiCache, CloudWatch and STS are here; RDS failover (``aws_rds.py``) and
point-in-time restore (``aws_pitr.py``) are re-exported from their modules.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, TypedDict

from botocore.client import BaseClient
from chaoslib.exceptions import ActivityFailed

from mpac_drill.aws import DryRun, client
from mpac_drill.aws import dry_note as _dry
from mpac_drill.backends.aws_pitr import (
    PitrDeleteResult,
    PitrRestoreResult,
    PitrStep,
    delete_restored_db_instance,
    pitr_identifier,
    restore_db_instance_to_point_in_time,
)
from mpac_drill.backends.aws_rds import (
    RUNBOOK_RDS_CALL,
    RdsFailoverResult,
    RdsPrimary,
    failover_rds,
    rds_primary,
)
from mpac_drill.config import Target
from mpac_drill.errors import UsageError

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


class CacheFailoverResult(TypedDict):
    replication_group: str
    node_group: str
    region: str
    primary_before: str | None
    status: str | None
    dry_run: bool


# ---------------------------------------------------------------- ECS


def stop_tasks(
    target: Target,
    service: str,
    *,
    count: int | None = None,
    percent: float | None = None,
    reason: str = "mpac-drill ecs-task-failure",
    dry_run: DryRun | None = None,
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
    :raises ActivityFailed: when the service has no task to stop (outside a dry run).
    """
    _check_share(count, percent)
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
    chosen = running[: _how_many(len(running), count, percent)]
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


def _check_share(count: int | None, percent: float | None) -> None:
    if count is not None and percent is not None:
        raise UsageError("stop_tasks: give count or percent, not both")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise UsageError(f"stop_tasks: count must be a whole number >= 1, not {count!r}")
    if percent is not None and (
        isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 < percent <= 100
    ):
        raise UsageError(f"stop_tasks: percent must be in (0, 100], not {percent!r}")


def _how_many(running: int, count: int | None, percent: float | None) -> int:
    if count is not None:
        return min(count, running)
    if percent is not None:
        return min(running, max(1, math.ceil(running * percent / 100)))
    return running


# ---------------------------------------------------------------- ElastiCache


def failover_elasticache(target: Target, dry_run: DryRun | None = None) -> CacheFailoverResult:
    """Fail the primary node of the replication group (runbook §1.3) with TestFailover.

    ElastiCache promotes a replica (Multi-AZ) and replaces the old primary; nothing to
    undo. Uses ``elasticache.replication_group`` and ``elasticache.node_group`` (default:
    the group's only node group).
    """
    group = str(target.require("elasticache.replication_group"))
    cache = client("elasticache", target, dry_run=dry_run)
    region = cache.meta.region_name
    found = _replication_group(cache, group)
    node_group = _node_group(target, group, found, region)
    before = _cache_primary(found, node_group)
    logger.info(
        "elasticache TestFailover %s node group %s (%s)%s", group, node_group, region, _dry(dry_run)
    )
    answer = cache.test_failover(ReplicationGroupId=group, NodeGroupId=node_group)
    return CacheFailoverResult(
        replication_group=group,
        node_group=node_group,
        region=region,
        primary_before=before,
        status=answer.get("ReplicationGroup", {}).get("Status"),
        dry_run=dry_run is not None,
    )


def cache_primary(target: Target, dry_run: DryRun | None = None) -> str | None:
    """The cache cluster id of the node group's primary (``None`` when ElastiCache does not
    say: cluster mode enabled, or a dry run)."""
    group = str(target.require("elasticache.replication_group"))
    cache = client("elasticache", target, dry_run=dry_run)
    found = _replication_group(cache, group)
    return _cache_primary(found, _node_group(target, group, found, cache.meta.region_name))


def _replication_group(cache: BaseClient, group: str) -> dict[str, Any] | None:
    found = cache.describe_replication_groups(ReplicationGroupId=group)
    return (found.get("ReplicationGroups") or [None])[0]


def _node_group(target: Target, group: str, found: dict | None, region: str) -> str:
    known = [ng["NodeGroupId"] for ng in (found or {}).get("NodeGroups", [])]
    wanted = target.get("elasticache.node_group")
    if wanted is None:
        if len(known) != 1:
            raise UsageError(
                f"target {target.name!r}: set elasticache.node_group "
                f"(replication group {group} has {known or 'no node groups'})"
            )
        return known[0]
    if found is not None and str(wanted) not in known:
        raise ActivityFailed(
            f"ElastiCache replication group {group} ({region}) has no node "
            f"group {wanted} (has {', '.join(known) or 'none'})"
        )
    return str(wanted)


def _cache_primary(found: dict | None, node_group: str) -> str | None:
    for ng in (found or {}).get("NodeGroups", []):
        if ng.get("NodeGroupId") == node_group:
            for member in ng.get("NodeGroupMembers", []):
                if member.get("CurrentRole") == "primary":
                    return str(member["CacheClusterId"])
    return None


# ---------------------------------------------------------------- CloudWatch, STS


def alarms_in_alarm(target: Target, names: list[str], dry_run: DryRun | None = None) -> list[str]:
    """Which of the named CloudWatch alarms (metric or composite) are in ALARM now.

    For stop conditions: a drill aborts when this is not empty.

    :param names: alarm names, as in ``stop.cloudwatch_alarms`` of the target.
    """
    if not names:
        return []
    cloudwatch = client("cloudwatch", target, dry_run=dry_run)
    firing: list[str] = []
    for start in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
        for page in cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNames=list(names[start : start + 100]),
            StateValue="ALARM",
            AlarmTypes=["MetricAlarm", "CompositeAlarm"],
        ):
            # StateValue checked again: moto ignores it when AlarmNames is given
            for kind in ("MetricAlarms", "CompositeAlarms"):
                firing += [
                    a["AlarmName"] for a in page.get(kind, []) if a.get("StateValue") == "ALARM"
                ]
    return firing


def account_id(target: Target) -> str:
    """The AWS account the target's credentials act in (STS GetCallerIdentity).

    For the production guard: compare with the target's ``account_id``.
    """
    return str(client("sts", target).get_caller_identity()["Account"])


# ---------------------------------------------------------------- helpers


__all__ = [
    "StopTasksResult",
    "ServiceStableResult",
    "RdsPrimary",
    "RdsFailoverResult",
    "CacheFailoverResult",
    "RUNBOOK_RDS_CALL",
    "OBS_SERVICE",
    "ecs_location",
    "stop_tasks",
    "tasks_running",
    "wait_service_stable",
    "failover_rds",
    "rds_primary",
    "failover_elasticache",
    "cache_primary",
    "alarms_in_alarm",
    "account_id",
    "PitrStep",
    "PitrRestoreResult",
    "PitrDeleteResult",
    "pitr_identifier",
    "restore_db_instance_to_point_in_time",
    "delete_restored_db_instance",
]

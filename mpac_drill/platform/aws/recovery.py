"""Where recovery time goes, on AWS: the platform's own records of recovery after a fault.

- ECS: the service's tasks that started after the fault (``ListTasks`` + ``DescribeTasks``,
  field ``startedAt``; a task with no ``startedAt`` has not started and is not an event);
- RDS: the failover events of the database (``DescribeEvents``, category ``failover``, a
  message naming the failover as completed), at their ``Date``;
- ElastiCache: the replication group's events (``DescribeEvents``) naming a failover to a
  new primary as complete, at their ``Date``.

What AWS does not report is absent, never inferred (moto 5.2.5 gives tasks no
``startedAt``, emits no RDS failover event and does not implement ElastiCache's
``DescribeEvents``: on moto these phases are "not seen"; tests/aws/test_phases_aws.py
extends moto, in the test only, to report tasks' ``startedAt`` and RDS failover events).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from chaoslib.exceptions import ActivityFailed

from mpac_drill.aws import client
from mpac_drill.config import Target
from mpac_drill.platform import RecoveryEvent
from mpac_drill.platform.aws.ecs import ecs_location
from mpac_drill.platform.aws.rds import rds_settings
from mpac_drill.timefmt import iso

logger = logging.getLogger("mpac_drill")


def _utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def ecs_task_events(
    target: Target, service: str, since: datetime, exclude: list[str]
) -> list[RecoveryEvent]:
    """Tasks of ``service`` that started at or after ``since`` (the replacements), each
    with resource ``<service>/<task ARN>``: the drill's service first, as the sandbox's
    ``<service>/<task>`` (``measure.phases.platform_milestone`` keeps the fault's service's
    events by that prefix; a bare task ARN, holding ``/`` too, matched no service)."""
    cluster, name = ecs_location(target, service)
    ecs = client("ecs", target)
    pages = ecs.get_paginator("list_tasks").paginate(
        cluster=cluster, serviceName=name, desiredStatus="RUNNING"
    )
    arns = [a for page in pages for a in page.get("taskArns", []) if a not in set(exclude)]
    out: list[RecoveryEvent] = []
    for start in range(0, len(arns), 100):
        found = ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100])
        for task in found.get("tasks", []):
            group = str(task.get("group", ""))
            if group and group != f"service:{name}":  # ListTasks may return the whole cluster
                continue
            started = _utc(task.get("startedAt"))
            if started is None or started < since:
                continue
            health = task.get("healthStatus", "UNKNOWN")
            out.append(
                RecoveryEvent(
                    at=iso(started),
                    kind="task_running",
                    resource=f"{service}/{task['taskArn']}",
                    evidence=f"ECS DescribeTasks {cluster}: startedAt {iso(started)}, "
                    f"lastStatus {task.get('lastStatus')}, healthStatus {health}",
                )
            )
    return out


def rds_failover_events(target: Target, db: str, since: datetime) -> list[RecoveryEvent]:
    """The RDS failover events of ``rds.<db>`` at or after ``since`` that say it completed."""
    identifier, kind = rds_settings(target, db)
    found = client("rds", target).describe_events(
        SourceIdentifier=identifier,
        SourceType="db-instance" if kind == "instance" else "db-cluster",
        StartTime=since,
        EventCategories=["failover"],
    )
    return _completed_failovers(found, since, "database_promoted", "RDS", identifier)


def cache_failover_events(target: Target, since: datetime) -> list[RecoveryEvent]:
    """ElastiCache events of the replication group at or after ``since`` naming a
    completed failover (``Failover to replica node ... completed``)."""
    group = str(target.require("elasticache.replication_group"))
    try:
        found = client("elasticache", target).describe_events(
            SourceIdentifier=group, SourceType="replication-group", StartTime=since
        )
    except ActivityFailed as exc:  # moto: not implemented
        logger.info("elasticache DescribeEvents %s: %s", group, exc)
        return []
    return _completed_failovers(found, since, "cache_promoted", "ElastiCache", group)


def _completed_failovers(
    found: dict[str, Any], since: datetime, kind: str, service: str, resource: str
) -> list[RecoveryEvent]:
    """The events of a ``DescribeEvents`` answer at or after ``since`` whose message says a
    failover completed (RDS and ElastiCache word it alike), as recovery events."""
    out: list[RecoveryEvent] = []
    for event in found.get("Events", []):
        at, message = _utc(event.get("Date")), str(event.get("Message", ""))
        words = message.lower()
        if at is None or at < since or "failover" not in words or "complete" not in words:
            continue
        out.append(
            RecoveryEvent(
                at=iso(at),
                kind=kind,
                resource=resource,
                evidence=f"{service} DescribeEvents {resource} {iso(at)}: {message}",
            )
        )
    return out


__all__ = ["cache_failover_events", "ecs_task_events", "rds_failover_events"]

"""ElastiCache on AWS (runbook §1.3): the calls behind ``actions/elasticache.py``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypedDict

from botocore.client import BaseClient
from chaoslib.exceptions import ActivityFailed

from mpac_drill.aws import DryRun, client
from mpac_drill.aws import dry_note as _dry
from mpac_drill.config import Target
from mpac_drill.errors import UsageError

logger = logging.getLogger("mpac_drill")


class CacheFailoverResult(TypedDict):
    replication_group: str
    node_group: str
    region: str
    primary_before: str | None
    status: str | None
    dry_run: bool


# ---------------------------------------------------------------- ElastiCache


def failover_elasticache(
    target: Target,
    dry_run: DryRun | None = None,
    before_failover: Callable[[], None] | None = None,
) -> CacheFailoverResult:
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
    if before_failover is not None:  # the drill's injection instant: right before the call
        before_failover()
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
    groups: list[dict[str, Any]] = found.get("ReplicationGroups") or []
    return groups[0] if groups else None


def _node_group(target: Target, group: str, found: dict[str, Any] | None, region: str) -> str:
    known = [ng["NodeGroupId"] for ng in (found or {}).get("NodeGroups", [])]
    wanted = target.get("elasticache.node_group")
    if wanted is None:
        if len(known) != 1:
            raise UsageError(
                f"target {target.name!r}: set elasticache.node_group "
                f"(replication group {group} has {known or 'no node groups'})"
            )
        return str(known[0])
    if found is not None and str(wanted) not in known:
        raise ActivityFailed(
            f"ElastiCache replication group {group} ({region}) has no node "
            f"group {wanted} (has {', '.join(known) or 'none'})"
        )
    return str(wanted)


def _cache_primary(found: dict[str, Any] | None, node_group: str) -> str | None:
    for ng in (found or {}).get("NodeGroups", []):
        if ng.get("NodeGroupId") == node_group:
            for member in ng.get("NodeGroupMembers", []):
                if member.get("CurrentRole") == "primary":
                    return str(member["CacheClusterId"])
    return None


__all__ = ["CacheFailoverResult", "cache_primary", "failover_elasticache"]

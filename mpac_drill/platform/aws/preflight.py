"""Preflight on AWS: read-only checks that a drill can run, before any load or fault.

Every resource the chosen drill will act on or read is looked up in the target's account
and region: the ECS cluster and service (with running tasks), the RDS instance (available,
Multi-AZ) or cluster (two members or more), the ElastiCache replication group (a replica),
the canary's SSM parameter, the stop-condition alarms. A resource that does not exist is a
usage error (the target names it wrong: exit 2, one line with the name and region); one that
exists but is not ready is a harness error (exit 3). A dry run records the same read calls
and judges nothing.

Example::

    checks = preflight(target, "rds-failover", dry_run=None)  # raises on the first problem
"""

from __future__ import annotations

from typing import Any, TypedDict

from mpac_drill.aws import AwsCallFailed, DryRun, client
from mpac_drill.config import Target
from mpac_drill.errors import HarnessError, UsageError
from mpac_drill.grafana import grafana_health
from mpac_drill.platform.aws.ecs import OBS_SERVICE, ecs_location
from mpac_drill.platform.aws.obs import history_buckets
from mpac_drill.platform.aws.rds import rds_settings


class Check(TypedDict):
    """One preflight check: what was looked up, where, and what was found."""

    what: str
    resource: str
    region: str
    ok: bool
    detail: str


#: Which systems each drill acts on or reads (the region drills act in the DR region and
#: check their own names; their preflight is the DB they restore from).
_NEEDS: dict[str, tuple[str, ...]] = {
    "ecs-task-failure": ("ecs",),
    "rds-failover": ("rds", "canary"),
    "redis-failover": ("elasticache",),
    "obs-failure": ("obs",),
    "rds-pitr": ("rds-any",),
    # the primary region is declared lost: what must exist is in the DR region and Route53
    "region-failover": ("dr-ssm:database_url", "route53"),
    "pgw-region-failover": ("dr-ssm:pgw_base_url", "dr-ssm:pgw_database_url", "route53"),
}


def preflight(target: Target, scenario_id: str, *, dry_run: DryRun | None) -> list[Check]:
    """Run the read-only checks ``scenario_id`` needs on ``target``; return them all.

    :raises UsageError: a resource the target names does not exist (exit 2).
    :raises HarnessError: a resource is not in the state the drill needs (exit 3).
    """
    checks: list[Check] = []
    for need in _NEEDS.get(scenario_id, ()):
        if need == "ecs":
            checks.append(_ecs(target, "svc-portal", dry_run))
        elif need == "obs":
            checks.append(_ecs(target, OBS_SERVICE, dry_run))
            buckets = history_buckets(target, dry=dry_run is not None)
            checks += [_bucket(target, role, name, dry_run) for role, name in buckets.items()]
            checks.append(_grafana(target, dry_run))
        elif need == "rds":
            checks.append(_rds(target, "smartpos", dry_run, multi_az=True))
        elif need == "rds-any":
            checks.append(_rds(target, "smartpos", dry_run, multi_az=False))
        elif need == "rds-any-pgw":
            checks.append(_rds(target, "pgw", dry_run, multi_az=False))
        elif need == "elasticache":
            checks.append(_cache(target, dry_run))
        elif need.startswith("dr-ssm:"):
            name = target.get(f"ssm.{need.split(':', 1)[1]}")
            if name:
                region = str(target.get("aws.dr_region") or target.get("aws.region"))
                checks.append(_parameter(target, str(name), dry_run, region=region))
        elif need == "route53":
            checks.append(_zone(target, dry_run))
        elif need == "canary" and target.get("database.dsn_ssm_parameter"):
            checks.append(
                _parameter(target, str(target.get("database.dsn_ssm_parameter")), dry_run)
            )
    for alarm in target.get("stop.cloudwatch_alarms") or []:
        checks.append(_alarm(target, str(alarm), dry_run))
    return checks


def _with(check: Check, *, ok: bool | None = None, detail: str | None = None) -> Check:
    return Check(
        what=check["what"],
        resource=check["resource"],
        region=check["region"],
        ok=check["ok"] if ok is None else ok,
        detail=check["detail"] if detail is None else detail,
    )


def _fail(missing: bool, check: Check, target: Target) -> None:
    text = f"preflight on target {target.name!r}: {check['what']} {check['resource']} "
    text += f"({check['region']}): {check['detail']}"
    if missing:
        raise UsageError(text + ": check the name in " + str(target.path))
    raise HarnessError(text + ": not ready for the drill; nothing was injected")


def _ecs(target: Target, service: str, dry: DryRun | None) -> Check:
    cluster, name = ecs_location(target, service, dry=dry is not None)
    ecs = client("ecs", target, dry_run=dry)
    region = ecs.meta.region_name
    found = ecs.describe_clusters(clusters=[cluster]).get("clusters", [])
    active = [c for c in found if c.get("status") == "ACTIVE"]
    check = Check(what="ECS cluster", resource=cluster, region=region, ok=True, detail="")
    if dry is not None:
        ecs.describe_services(cluster=cluster, services=[name])
        return _with(check, detail="planned")
    if not active:
        _fail(True, _with(check, ok=False, detail="does not exist"), target)
    services = ecs.describe_services(cluster=cluster, services=[name]).get("services", [])
    live = [s for s in services if s.get("status") == "ACTIVE"]
    check = Check(
        what="ECS service", resource=f"{cluster}/{name}", region=region, ok=True, detail=""
    )
    if not live:
        _fail(True, _with(check, ok=False, detail="does not exist"), target)
    running = int(live[0].get("runningCount", 0))
    desired = int(live[0].get("desiredCount", 0))
    check["detail"] = f"{running} of {desired} task(s) running"
    if running < 1 and not _has_running_task(ecs, cluster, name):
        _fail(False, _with(check, ok=False, detail="no running task to stop"), target)
    return check


def _has_running_task(ecs: Any, cluster: str, name: str) -> bool:
    found = ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus="RUNNING")
    return bool(found.get("taskArns"))


def _rds(target: Target, db: str, dry: DryRun | None, *, multi_az: bool) -> Check:
    identifier, kind = rds_settings(target, db)
    rds = client("rds", target, dry_run=dry)
    region = rds.meta.region_name
    what = "RDS DB instance" if kind == "instance" else "RDS DB cluster"
    check = Check(what=what, resource=identifier, region=region, ok=True, detail="")
    try:
        if kind == "instance":
            found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
        else:
            found = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"]
    except Exception as exc:  # noqa: BLE001 - AwsCallFailed: not found, or no access
        if dry is not None:
            return _with(check, detail="planned")
        if "NotFound" in str(getattr(exc, "code", "")) or "not found" in str(exc).lower():
            _fail(True, _with(check, ok=False, detail="does not exist"), target)
        raise
    if dry is not None:
        return _with(check, detail="planned")
    if not found:
        _fail(True, _with(check, ok=False, detail="does not exist"), target)
    item = found[0]
    status = str(item.get("DBInstanceStatus") or item.get("Status") or "?")
    if kind == "instance":
        ha = bool(item.get("MultiAZ"))
        check["detail"] = f"{status}, Multi-AZ {'on' if ha else 'off'}"
    else:
        members = item.get("DBClusterMembers", [])
        ha = len(members) >= 2
        check["detail"] = f"{status}, {len(members)} member(s)"
    if status != "available":
        _fail(False, _with(check, ok=False), target)
    if multi_az and not ha:
        what_ha = "not Multi-AZ" if kind == "instance" else "fewer than two members"
        _fail(
            False,
            _with(check, ok=False, detail=f"{check['detail']}: {what_ha}, nothing to fail over to"),
            target,
        )
    return check


def _cache(target: Target, dry: DryRun | None) -> Check:
    group = str(target.require("elasticache.replication_group"))
    cache = client("elasticache", target, dry_run=dry)
    region = cache.meta.region_name
    check = Check(what="ElastiCache replication group", resource=group, region=region, ok=True,
                  detail="")  # fmt: skip
    try:
        found = cache.describe_replication_groups(ReplicationGroupId=group)
    except Exception as exc:  # noqa: BLE001 - AwsCallFailed
        if "NotFound" in str(getattr(exc, "code", "")):
            _fail(True, _with(check, ok=False, detail="does not exist"), target)
        raise
    if dry is not None:
        return _with(check, detail="planned")
    groups = found.get("ReplicationGroups", [])
    if not groups:
        _fail(True, _with(check, ok=False, detail="does not exist"), target)
    members = [m for ng in groups[0].get("NodeGroups", []) for m in ng.get("NodeGroupMembers", [])]
    replicas = [m for m in members if m.get("CurrentRole") == "replica"]
    check["detail"] = f"{groups[0].get('Status', '?')}, {len(replicas)} replica(s)"
    if groups[0].get("Status") != "available" or not replicas:
        _fail(False, _with(check, ok=False), target)
    return check


def _zone(target: Target, dry: DryRun | None) -> Check:
    zone = str(target.get("route53.hosted_zone_id") or "UNSET.route53.hosted_zone_id")
    zone = zone.rsplit("/", 1)[-1]
    route53 = client("route53", target, dry_run=dry)
    check = Check(what="Route53 hosted zone", resource=zone, region="global", ok=True, detail="")
    try:
        found = route53.get_hosted_zone(Id=zone)
    except Exception as exc:  # noqa: BLE001 - AwsCallFailed
        if "NoSuchHostedZone" in str(getattr(exc, "code", "")):
            _fail(True, _with(check, ok=False, detail="does not exist"), target)
        raise
    if dry is not None:
        return _with(check, detail="planned")
    check["detail"] = str(found.get("HostedZone", {}).get("Name", "?"))
    return check


def _parameter(
    target: Target, name: str, dry: DryRun | None, *, region: str | None = None
) -> Check:
    ssm = client("ssm", target, region=region, dry_run=dry)
    region = ssm.meta.region_name
    found = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}]
    ).get("Parameters", [])
    check = Check(what="SSM parameter", resource=name, region=region, ok=True, detail="")
    if dry is not None:
        return _with(check, detail="planned")
    if not found:
        _fail(True, _with(check, ok=False, detail="does not exist"), target)
    check["detail"] = str(found[0].get("Type", "?"))
    return check


def _bucket(target: Target, role: str, name: str, dry: DryRun | None) -> Check:
    """One history bucket of mpac-obs: it exists and the drill may read it (HeadBucket)."""
    s3 = client("s3", target, dry_run=dry)
    region = s3.meta.region_name
    check = Check(what=f"S3 bucket ({role})", resource=name, region=region, ok=True, detail="")
    try:
        s3.head_bucket(Bucket=name)
    except AwsCallFailed as exc:
        if exc.code in ("404", "NoSuchBucket", "NotFound"):
            _fail(True, _with(check, ok=False, detail="does not exist"), target)
        if exc.code in ("403", "AccessDenied", "Forbidden"):
            _fail(False, _with(check, ok=False, detail="not readable (403)"), target)
        raise
    return _with(check, detail="planned" if dry is not None else "readable")


def _grafana(target: Target, dry: DryRun | None) -> Check:
    """Grafana at ``obs.grafana_url`` answers ``/api/health`` (a dry run only plans it)."""
    url = str(target.get("obs.grafana_url") or "UNSET.obs.grafana_url")
    check = Check(what="Grafana", resource=url, region="-", ok=True, detail="")
    if dry is not None:
        return _with(check, detail="planned: GET /api/health")
    problem = grafana_health(url)
    if problem:
        _fail(False, _with(check, ok=False, detail=problem), target)
    return _with(check, detail="GET /api/health: database ok")


def _alarm(target: Target, name: str, dry: DryRun | None) -> Check:
    cloudwatch = client("cloudwatch", target, dry_run=dry)
    region = cloudwatch.meta.region_name
    found = cloudwatch.describe_alarms(
        AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
    )
    alarms = found.get("MetricAlarms", []) + found.get("CompositeAlarms", [])
    check = Check(what="CloudWatch alarm", resource=name, region=region, ok=True, detail="")
    if dry is not None:
        return _with(check, detail="planned")
    if not alarms:
        _fail(
            True, _with(check, ok=False, detail="does not exist (stop.cloudwatch_alarms)"), target
        )
    check["detail"] = str(alarms[0].get("StateValue", "?"))
    return check


__all__ = ["Check", "preflight"]

"""DR readiness on AWS between drills (``mpac-drill check``): read-only checks, no fault.

Each check reads the resource a drill (and the runbook's recovery) depends on and judges
one figure against the catalog's ``readiness`` thresholds: §1.1 the services' desired and
running tasks and their ALB targets' AZs, §1.2 Multi-AZ and the runbook's failover call
(finding F4), §1.3 the replication group's failover, Multi-AZ and replicas, §2.1 automated
backups, retention, window and PITR lag; the DR-side checks (§1.4/§1.5 the age of the data
the DR region holds, SSM, Route53, alarms, §1.6 buckets, permissions) are in
``readiness_dr.py``.

Every call goes through :func:`mpac_drill.aws.client` (one client per service and region,
counted), so ``--dry-run`` records the calls and sends none, and moto answers in tests. A
call that fails makes its rows "not checked" (``error``), never "pass".

Example::

    rows, calls = check(target, thresholds, {"rds-failover"}, dry_run=None)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from botocore.client import BaseClient

from mpac_drill.aws import AwsCallFailed, DryRun, client
from mpac_drill.config import Target
from mpac_drill.platform.aws.ecs import ecs_location
from mpac_drill.platform.aws.rds import RUNBOOK_RDS_CALL, rds_settings
from mpac_drill.readiness.rows import CheckRow, Thresholds, judge_max, row


class Clients:
    """One client per (service, region), built through the one factory; calls counted."""

    def __init__(self, target: Target, dry_run: DryRun | None) -> None:
        self.target = target
        self.dry_run = dry_run
        self.calls = 0
        self._made: dict[tuple[str, str | None], BaseClient] = {}

    def __call__(self, service: str, region: str | None = None) -> BaseClient:
        key = (service, region)
        if key not in self._made:
            made = client(service, self.target, region=region, dry_run=self.dry_run)
            made.meta.events.register("before-call", self._count)
            self._made[key] = made
        return self._made[key]

    def _count(self, **_: Any) -> None:
        self.calls += 1

    @property
    def dr_region(self) -> str:
        return str(self.target.get("aws.dr_region") or self.target.require("aws.region"))


Group = Callable[[Clients, Thresholds, set[str]], list[CheckRow]]


def check(
    target: Target, thresholds: Thresholds, scenarios: set[str], *, dry_run: DryRun | None
) -> tuple[list[CheckRow], int]:
    """Every readiness check of ``scenarios`` on ``target``: (rows, AWS calls made)."""
    from mpac_drill.platform.aws import readiness_dr

    clients = Clients(target, dry_run)
    groups: list[tuple[str, set[str], str, Group]] = [
        ("ecs", {"ecs-task-failure"}, "1.1", _ecs),
        ("rds.smartpos", {"rds-failover", "rds-pitr"}, "1.2", _rds("smartpos")),
        ("rds.pgw", {"rds-failover", "rds-pitr"}, "1.2", _rds("pgw")),
        ("elasticache", {"redis-failover"}, "1.3", _cache),
        *readiness_dr.GROUPS,
    ]
    rows: list[CheckRow] = []
    for name, wanted, section, group in groups:
        if not (wanted & scenarios) and "all" not in wanted:
            continue
        try:
            found = group(clients, thresholds, scenarios)
        except AwsCallFailed as exc:
            scenario = sorted(wanted & scenarios)[0] if wanted & scenarios else "all"
            found = [could_not(name, scenario, section, name, str(exc))]
        rows += [r for r in found if r["scenario"] in scenarios or r["scenario"] == "all"]
    return rows, clients.calls


def could_not(id: str, scenario: str, section: str, component: str, why: str) -> CheckRow:
    """The row of a group whose calls failed: not checked, with the one-line reason."""
    return row(
        f"{id}.error",
        scenario,
        section,
        "readable with the check's credentials",
        component,
        "not checked",
        evidence=why,
        fix="give the check's role read access (see the dry-run's calls) and rerun",
        error=True,
    )


def age_s(when: Any) -> float | None:
    """Seconds from ``when`` (a datetime botocore parsed) to now."""
    if not isinstance(when, datetime):
        return None
    return max(0.0, (datetime.now(UTC) - when.astimezone(UTC)).total_seconds())


def chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---------------------------------------------------------------- §1.1 ECS


def _ecs(clients: Clients, th: Thresholds, scenarios: set[str]) -> list[CheckRow]:
    target, dry = clients.target, clients.dry_run is not None
    by_cluster: dict[str, list[tuple[str, str]]] = {}
    for key in target.get("ecs.services") or {}:
        cluster, name = ecs_location(target, str(key), dry=dry)
        by_cluster.setdefault(cluster, []).append((str(key), name))
    ecs = clients("ecs")
    rows: list[CheckRow] = []
    for cluster, services in by_cluster.items():
        found: dict[str, dict[str, Any]] = {}
        for part in chunks([n for _, n in services], 10):
            try:
                answer = ecs.describe_services(cluster=cluster, services=part)
            except AwsCallFailed as exc:
                if "ClusterNotFound" not in exc.code:
                    raise
                answer = {}  # every service of a missing cluster fails below
            found.update({s["serviceName"]: s for s in answer.get("services", [])})
        for key, name in services:
            rows.append(_ecs_tasks(cluster, key, name, found.get(name), th))
            rows.append(_alb_azs(clients, th, key, found.get(name)))
    return rows


def _ecs_tasks(
    cluster: str, key: str, name: str, service: dict[str, Any] | None, th: Thresholds
) -> CheckRow:
    where = f"ecs DescribeServices {cluster}/{name}"
    args = (f"ecs.{key}.tasks", "ecs-task-failure", "1.1", "desired ≥ min and running = desired")
    if service is None or service.get("status") != "ACTIVE":
        return row(
            *args,
            f"{cluster}/{name}",
            "fail",
            measured="no active service",
            threshold=f"desired ≥ {th.min_tasks}, running = desired",
            evidence=f"{where}: not in services[] (or status not ACTIVE)",
            fix=f"check ecs.cluster / ecs.services.{key}.service in the target",
        )
    desired, running = int(service.get("desiredCount", 0)), int(service.get("runningCount", 0))
    ok = desired >= th.min_tasks and running == desired
    fix = (
        f"aws ecs update-service --cluster {cluster} --service {name} "
        f"--desired-count {max(desired, th.min_tasks)}"
        if desired < th.min_tasks
        else f"see why tasks stop: aws ecs describe-services --cluster {cluster} --services {name}"
    )
    return row(
        *args,
        f"{cluster}/{name}",
        "pass" if ok else "fail",
        measured=f"{running} of {desired} running",
        value=running,
        threshold=f"desired ≥ {th.min_tasks}, running = desired",
        evidence=f"{where} desiredCount={desired} runningCount={running}",
        fix=fix,
    )


def _alb_azs(
    clients: Clients, th: Thresholds, key: str, service: dict[str, Any] | None
) -> CheckRow:
    groups = [
        lb["targetGroupArn"]
        for lb in (service or {}).get("loadBalancers", [])
        if lb.get("targetGroupArn")
    ]
    named = clients.target.get(f"ecs.services.{key}.target_groups") or []
    groups += [str(g) for g in named if str(g) not in groups]
    args = (f"ecs.{key}.alb_azs", "ecs-task-failure", "1.1", "healthy ALB targets in ≥ N AZs")
    limit = f"≥ {th.min_azs} AZs"
    if not groups:
        return row(
            *args,
            key,
            "not checked",
            threshold=limit,
            evidence="the service has no loadBalancers and the target names no "
            f"ecs.services.{key}.target_groups",
            fix=f"set ecs.services.{key}.target_groups to the ALB target group ARN(s)",
        )
    elb = clients("elbv2")
    healthy: list[dict[str, Any]] = []
    for arn in groups:
        described = elb.describe_target_health(TargetGroupArn=arn)
        healthy += [
            t["Target"]
            for t in described.get("TargetHealthDescriptions", [])
            if t.get("TargetHealth", {}).get("State") == "healthy"
        ]
    zones = _target_zones(clients, healthy)
    ok = len(zones) >= th.min_azs
    return row(
        *args,
        ",".join(g.rsplit("/", 2)[-2] if "/" in g else g for g in groups),
        "pass" if ok else "fail",
        measured=f"{len(healthy)} healthy in {len(zones)} AZ(s) {sorted(zones)}",
        value=len(zones),
        threshold=limit,
        evidence="elbv2 DescribeTargetHealth TargetHealth.State=healthy; AZ from "
        "Target.AvailabilityZone or ec2 DescribeInstances Placement.AvailabilityZone",
        fix="spread the service's subnets over ≥ 2 AZs and check its health check",
    )


def _target_zones(clients: Clients, targets: list[dict[str, Any]]) -> set[str]:
    zones = {str(t["AvailabilityZone"]) for t in targets if t.get("AvailabilityZone")}
    instances = [
        str(t["Id"])
        for t in targets
        if not t.get("AvailabilityZone") and str(t.get("Id", "")).startswith("i-")
    ]
    if instances:
        ec2 = clients("ec2")
        for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=instances):
            for reservation in page.get("Reservations", []):
                zones |= {
                    str(i.get("Placement", {}).get("AvailabilityZone"))
                    for i in reservation.get("Instances", [])
                }
    return zones - {"None", ""}


# ---------------------------------------------------------------- §1.2, §2.1 RDS


def _rds(db: str) -> Group:
    def group(clients: Clients, th: Thresholds, scenarios: set[str]) -> list[CheckRow]:
        return _rds_rows(clients, th, db)

    return group


def _rds_rows(clients: Clients, th: Thresholds, db: str) -> list[CheckRow]:
    if not clients.target.get(f"rds.{db}.identifier"):
        return []
    identifier, kind = rds_settings(clients.target, db)
    rds = clients("rds")
    api = "DescribeDBInstances" if kind == "instance" else "DescribeDBClusters"
    try:
        if kind == "instance":
            found = rds.describe_db_instances(DBInstanceIdentifier=identifier)
            item = (found.get("DBInstances") or [None])[0]
        else:
            found = rds.describe_db_clusters(DBClusterIdentifier=identifier)
            item = (found.get("DBClusters") or [None])[0]
    except AwsCallFailed as exc:
        if "NotFound" not in exc.code:
            raise
        item = None
    if item is None:
        return [
            row(
                f"rds.{db}.multi_az",
                "rds-failover",
                "1.2",
                "the database exists",
                identifier,
                "fail",
                measured="not found",
                evidence=f"rds {api} {identifier}: not found",
                fix=f"check rds.{db}.identifier and rds.{db}.type in the target",
            )
        ]
    rows = [_ha(clients, th, db, identifier, kind, item), _failover_call(db, identifier, kind)]
    return rows + _backups(th, db, identifier, api, item)


def _ha(
    clients: Clients, th: Thresholds, db: str, identifier: str, kind: str, item: dict[str, Any]
) -> CheckRow:
    args = (f"rds.{db}.multi_az", "rds-failover", "1.2")
    if kind == "instance":
        on = bool(item.get("MultiAZ"))
        where = f"{item.get('AvailabilityZone')} / standby {item.get('SecondaryAvailabilityZone')}"
        return row(
            *args,
            "DB instance is Multi-AZ",
            identifier,
            "pass" if on else "fail",
            measured=f"MultiAZ={str(on).lower()} ({where})",
            threshold="MultiAZ=true",
            evidence=f"rds DescribeDBInstances {identifier} MultiAZ",
            fix=f"aws rds modify-db-instance --db-instance-identifier {identifier} "
            "--multi-az --apply-immediately",
        )
    members = [str(m["DBInstanceIdentifier"]) for m in item.get("DBClusterMembers", [])]
    zones: set[str] = set()
    if members:
        described = clients("rds").describe_db_instances(
            Filters=[{"Name": "db-cluster-id", "Values": [identifier]}]
        )
        zones = {str(i.get("AvailabilityZone")) for i in described.get("DBInstances", [])}
    ok = len(members) >= 2 and len(zones) >= th.min_azs
    return row(
        *args,
        "DB cluster has ≥ 2 members in ≥ N AZs",
        identifier,
        "pass" if ok else "fail",
        measured=f"{len(members)} member(s) in {len(zones)} AZ(s)",
        value=len(members),
        threshold=f"≥ 2 members in ≥ {th.min_azs} AZs",
        evidence=f"rds DescribeDBClusters {identifier} DBClusterMembers; "
        "DescribeDBInstances AvailabilityZone",
        fix=f"add a reader in another AZ: aws rds create-db-instance --db-cluster-identifier "
        f"{identifier} ...",
    )


def _failover_call(db: str, identifier: str, kind: str) -> CheckRow:
    right = kind == "cluster"
    return row(
        f"rds.{db}.failover_call",
        "rds-failover",
        "1.2",
        "the runbook's manual failover call fits the resource (F4)",
        identifier,
        "pass" if right else "warn",
        measured=f"runbook: aws rds {RUNBOOK_RDS_CALL}; resource: DB {kind}",
        threshold="failover-db-cluster for a cluster, reboot-db-instance --force-failover "
        "for an instance",
        evidence=f"target rds.{db}.type={kind}; runbook §1.2 'Manual failover'",
        fix="runbook §1.2: use aws rds reboot-db-instance --db-instance-identifier "
        f"{identifier} --force-failover (finding F4)",
    )


def _backups(
    th: Thresholds, db: str, identifier: str, api: str, item: dict[str, Any]
) -> list[CheckRow]:
    retention = int(item.get("BackupRetentionPeriod") or 0)
    where = f"rds {api} {identifier}"
    rows = [
        row(
            f"rds.{db}.retention",
            "rds-pitr",
            "2.1",
            "automated backups on, retention",
            identifier,
            "pass" if retention >= th.backup_retention_days else "fail",
            measured="automated backups off" if retention == 0 else f"{retention} days",
            value=retention,
            threshold=f"≥ {th.backup_retention_days} days",
            evidence=f"{where} BackupRetentionPeriod={retention}",
            fix=f"aws rds modify-db-instance --db-instance-identifier {identifier} "
            f"--backup-retention-period {th.backup_retention_days} --apply-immediately",
        )
    ]
    window, wanted = item.get("PreferredBackupWindow"), th.backup_windows.get(db)
    if wanted:
        rows.append(
            row(
                f"rds.{db}.backup_window",
                "rds-pitr",
                "2.1",
                "backup window as the runbook's §2.1 table",
                identifier,
                "pass" if window == wanted else "warn",
                measured=str(window),
                threshold=wanted,
                evidence=f"{where} PreferredBackupWindow",
                fix=f"aws rds modify-db-instance --db-instance-identifier {identifier} "
                f"--preferred-backup-window {wanted} (or correct the runbook)",
            )
        )
    lag = None if retention == 0 else age_s(item.get("LatestRestorableTime"))
    status = (
        "fail"  # no automated backups: no point-in-time recovery at all
        if retention == 0
        else "not checked"
        if lag is None
        else judge_max(lag, th.pitr_lag_s, th.warn_share)
    )
    rows.append(
        row(
            f"rds.{db}.pitr_lag",
            "rds-pitr",
            "2.1",
            "PITR lag (LatestRestorableTime → now)",
            identifier,
            status,
            measured="no restorable time" if lag is None else f"{lag:.0f} s",
            value=lag,
            threshold=f"≤ {th.pitr_lag_s:.0f} s",
            evidence=f"{where} LatestRestorableTime",
            fix="turn automated backups on; a lag above 5 min means transaction logs "
            "are not being uploaded: open an AWS support case",
        )
    )
    return rows


# ---------------------------------------------------------------- §1.3 ElastiCache


def _cache(clients: Clients, th: Thresholds, scenarios: set[str]) -> list[CheckRow]:
    group = clients.target.get("elasticache.replication_group")
    if not group:
        return []
    cache = clients("elasticache")
    where = f"elasticache DescribeReplicationGroups {group}"
    try:
        found = (
            cache.describe_replication_groups(ReplicationGroupId=str(group)).get(
                "ReplicationGroups"
            )
            or [None]
        )[0]
    except AwsCallFailed as exc:
        if "NotFound" not in exc.code:
            raise
        found = None
    args = ("redis-failover", "1.3")
    if found is None:
        return [
            row(
                "elasticache.failover",
                *args,
                "the replication group exists",
                str(group),
                "fail",
                measured="not found",
                evidence=f"{where}: not found",
                fix="check elasticache.replication_group in the target",
            )
        ]
    members = [m for ng in found.get("NodeGroups", []) for m in ng.get("NodeGroupMembers", [])]
    replicas = [m for m in members if m.get("CurrentRole") == "replica"]
    auto, multi = found.get("AutomaticFailover"), found.get("MultiAZ")
    fix = (
        f"aws elasticache modify-replication-group --replication-group-id {group} "
        "--automatic-failover-enabled --multi-az-enabled --apply-immediately"
    )
    return [
        row(
            "elasticache.failover",
            *args,
            "automatic failover enabled",
            str(group),
            "pass" if auto == "enabled" else "fail",
            measured=str(auto),
            threshold="enabled",
            evidence=f"{where} AutomaticFailover",
            fix=fix,
        ),
        row(
            "elasticache.multi_az",
            *args,
            "Multi-AZ enabled",
            str(group),
            "pass" if multi == "enabled" else "fail",
            measured=str(multi),
            threshold="enabled",
            evidence=f"{where} MultiAZ",
            fix=fix,
        ),
        row(
            "elasticache.replicas",
            *args,
            "replicas to promote",
            str(group),
            "pass" if len(replicas) >= th.min_cache_replicas else "fail",
            measured=f"{len(replicas)} replica(s) in "
            f"{len({m.get('PreferredAvailabilityZone') for m in replicas})} AZ(s)",
            value=len(replicas),
            threshold=f"≥ {th.min_cache_replicas}",
            evidence=f"{where} NodeGroups[].NodeGroupMembers[].CurrentRole",
            fix=f"aws elasticache increase-replica-count --replication-group-id {group} "
            "--new-replica-count 1 --apply-immediately",
        ),
    ]


__all__ = ["Clients", "age_s", "check", "chunks", "could_not"]

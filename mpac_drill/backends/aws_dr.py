"""The AWS side of the region-level DR drills (runbook §1.4 smartpos, §1.5 pgw).

Plain functions, each taking an ``aws`` target first and building its clients through
:func:`mpac_drill.aws.client` in the target's DR region (``aws.dr_region``) unless told
otherwise: find the newest snapshot the DR region holds, restore it, point the SSM
parameters and the Route53 record at the DR stack, and redeploy the ECS services so they
read the new parameters. :func:`plan_region_failover` runs them against a
:class:`~mpac_drill.aws.DryRun`, so the plan it returns is the real call sequence.
:func:`runbook_region_findings` checks the regions the runbook's commands name against the
target (finding F1).

Optional target keys: ``route53.dr_dns_name`` (the DR load balancer, for the plan),
``pgw.dr_base_url`` (the DR PGW URL, for the plan), ``rds.dr_subnet_group`` and
``rds.dr_security_group_ids`` (the DR VPC of a restored instance).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any, TypedDict

from chaoslib.exceptions import ActivityFailed

from mpac_drill.aws import DryRun, client
from mpac_drill.config import Target
from mpac_drill.errors import UsageError

logger = logging.getLogger("mpac_drill")

SYSTEMS = ("smartpos", "pgw")

#: DB instance states a restore does not come back from.
_RESTORE_FAILED = frozenset({"failed", "incompatible-restore", "incompatible-parameters",
                             "incompatible-network", "storage-full",
                             "inaccessible-encryption-credentials"})


class SnapshotInfo(TypedDict):
    db: str
    source_instance: str
    snapshot_id: str
    snapshot_arn: str | None
    region: str
    snapshot_type: str | None
    snapshot_create_time: str | None  # of this copy: a cross-region copy's own time
    original_snapshot_create_time: str | None  # when the source snapshot was taken
    snapshot_database_time: str | None  # the newest transaction in the snapshot
    data_as_of: str  # the data-loss bound: the first of the three above that RDS reports


class RestoreResult(TypedDict):
    db: str
    snapshot_id: str
    identifier: str
    region: str
    instance_class: str
    status: str | None
    available: bool
    waited_s: float
    endpoint_address: str | None
    endpoint_port: int | None
    dry_run: bool


class RecordChange(TypedDict):
    hosted_zone_id: str
    record: str
    record_type: str
    ttl: int
    to_dns_name: str
    previous: list[str]  # the record's values before the change: what undoes it
    change_id: str | None
    status: str | None
    dry_run: bool


class ParameterResult(TypedDict):  # never the value: it is a secret
    name_key: str
    name: str
    region: str
    type: str
    version: int | None
    dry_run: bool


class DeploymentResult(TypedDict):
    cluster: str
    service: str
    region: str
    deployment_id: str | None
    rollout_state: str | None
    dry_run: bool


class PlannedStep(TypedDict):
    name: str
    service: str
    operation: str
    region: str
    params: dict[str, Any]


class Finding(TypedDict):
    id: str
    section: str
    step: str
    action: str
    command: str
    runbook_region: str
    primary_region: str
    dr_region: str
    evidence: str


# ---------------------------------------------------------------- RDS


def latest_snapshot(
    target: Target, db: str = "smartpos", region: str | None = None,
    dry_run: DryRun | None = None,
) -> SnapshotInfo | None:
    """The newest available DB snapshot of ``rds.<db>.identifier`` held in ``region``.

    Runbook finding F3: automated backups are regional, so what bounds the data lost with
    a region is the newest snapshot the DR region actually holds (manual, automated, or
    copied there). Snapshots are ordered by the time of their data: SnapshotDatabaseTime,
    else OriginalSnapshotCreateTime (a copy keeps it), else SnapshotCreateTime (which, for
    a copy, is when it was copied). Reads only.

    :param db: a key of ``rds`` in the target: ``smartpos`` or ``pgw``.
    :param region: where to look; default the target's ``aws.dr_region``.
    :returns: ``None`` when the region holds no available snapshot of the instance.
    """
    source = str(target.require(f"rds.{db}.identifier"))
    rds = client("rds", target, region=_dr_region(target, region), dry_run=dry_run)
    pages = rds.get_paginator("describe_db_snapshots").paginate(DBInstanceIdentifier=source)
    found = [(when, s) for page in pages for s in page.get("DBSnapshots", [])
             if s.get("Status") == "available" and s.get("DBInstanceIdentifier") == source
             and (when := _data_time(s)) is not None]
    if not found:
        return None
    data_as_of, newest = max(found, key=lambda pair: pair[0])
    return SnapshotInfo(
        db=db, source_instance=source, snapshot_id=str(newest["DBSnapshotIdentifier"]),
        snapshot_arn=newest.get("DBSnapshotArn"), region=rds.meta.region_name,
        snapshot_type=newest.get("SnapshotType"),
        snapshot_create_time=_iso(newest.get("SnapshotCreateTime")),
        original_snapshot_create_time=_iso(newest.get("OriginalSnapshotCreateTime")),
        snapshot_database_time=_iso(newest.get("SnapshotDatabaseTime")),
        data_as_of=str(_iso(data_as_of)),
    )


def restore_from_snapshot(
    target: Target,
    db: str,
    snapshot_id: str,
    *,
    region: str | None = None,
    new_identifier: str | None = None,
    timeout_s: float = 3600,
    poll_s: float = 15.0,
    dry_run: DryRun | None = None,
) -> RestoreResult:
    """Restore a snapshot into a new DB instance in the DR region (runbook §1.4 step 4,
    §1.5 step 3), class ``rds.dr_instance_class``, and poll DescribeDBInstances until it
    is ``available`` or ``timeout_s`` has passed (``available`` says which; no raise).

    Creates ``<identifier>-dr-<UTC stamp>`` unless ``new_identifier`` is given; undone by
    deleting that instance. Raises ``ActivityFailed`` when it lands in a failed state.

    :param db: a key of ``rds`` in the target: ``smartpos`` or ``pgw``.
    :param snapshot_id: the snapshot's identifier or ARN, in that region.
    :param region: default the target's ``aws.dr_region``.
    :param timeout_s: the longest wait for ``available``, in seconds.
    :param poll_s: seconds between two DescribeDBInstances calls.
    """
    source = str(target.require(f"rds.{db}.identifier"))
    instance_class = str(target.require("rds.dr_instance_class"))
    new_id = new_identifier or _dr_identifier(source, datetime.now(UTC))
    rds = client("rds", target, region=_dr_region(target, region), dry_run=dry_run)
    where = rds.meta.region_name
    params: dict[str, Any] = {
        "DBInstanceIdentifier": new_id, "DBSnapshotIdentifier": snapshot_id,
        "DBInstanceClass": instance_class, "DeletionProtection": False,
        "Tags": [{"Key": "mpac-drill", "Value": "region-failover"}]}
    if target.get("rds.dr_subnet_group"):
        params["DBSubnetGroupName"] = str(target.get("rds.dr_subnet_group"))
    if target.get("rds.dr_security_group_ids"):
        params["VpcSecurityGroupIds"] = list(target.get("rds.dr_security_group_ids"))
    logger.info("rds RestoreDBInstanceFromDBSnapshot %s -> %s (%s, %s)%s",
                snapshot_id, new_id, instance_class, where, _dry(dry_run))
    inst = rds.restore_db_instance_from_db_snapshot(**params).get("DBInstance") or {}
    status = inst.get("DBInstanceStatus")
    t0 = time.monotonic()
    while dry_run is None and status != "available":
        if status in _RESTORE_FAILED:
            raise ActivityFailed(f"RDS restore of {snapshot_id} into {new_id} ({where}) "
                                 f"ended {status}")
        waited = time.monotonic() - t0
        if waited >= timeout_s:
            logger.warning("RDS restore %s (%s) not available after %.0f s: %s",
                           new_id, where, waited, status)
            break
        time.sleep(min(poll_s, timeout_s - waited))
        found = rds.describe_db_instances(DBInstanceIdentifier=new_id).get("DBInstances", [])
        inst = found[0] if found else inst
        status = inst.get("DBInstanceStatus", status)
    endpoint = inst.get("Endpoint") or {}
    port = endpoint.get("Port")
    return RestoreResult(
        db=db, snapshot_id=snapshot_id, identifier=new_id, region=where,
        instance_class=instance_class, status=status, available=status == "available",
        waited_s=round(time.monotonic() - t0, 3), endpoint_address=endpoint.get("Address"),
        endpoint_port=int(port) if port is not None else None, dry_run=dry_run is not None)


# ---------------------------------------------------------------- Route53, SSM, ECS


def switch_record(
    target: Target,
    *,
    to_dns_name: str,
    record_type: str = "CNAME",
    ttl: int = 60,
    dry_run: DryRun | None = None,
) -> RecordChange:
    """UPSERT ``route53.record`` in ``route53.hosted_zone_id`` to ``to_dns_name``
    (runbook §1.4 step 3). Route53 is global: botocore calls its one endpoint, region
    ``aws-global`` (signed for us-east-1), whatever the target's regions. Reads the record
    first; undone by switching back to ``previous``.

    :param to_dns_name: the DR load balancer's DNS name (a plain record, not an alias).
    :param record_type: ``CNAME`` unless the record is another type.
    :param ttl: seconds resolvers may cache the answer.
    """
    zone = str(target.require("route53.hosted_zone_id")).rsplit("/", 1)[-1]
    record = str(target.require("route53.record"))
    route53 = client("route53", target, dry_run=dry_run)
    current = route53.list_resource_record_sets(
        HostedZoneId=zone, StartRecordName=record, StartRecordType=record_type, MaxItems="1"
    ).get("ResourceRecordSets", [])
    previous = [r["Value"] for s in current[:1]
                if s.get("Name", "").rstrip(".") == record.rstrip(".")
                and s.get("Type") == record_type for r in s.get("ResourceRecords", [])]
    logger.info("route53 UPSERT %s %s -> %s (zone %s, was %s)%s", record_type, record,
                to_dns_name, zone, ", ".join(previous) or "absent", _dry(dry_run))
    change = route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={
        "Comment": "mpac-drill region failover",
        "Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
            "Name": record, "Type": record_type, "TTL": ttl,
            "ResourceRecords": [{"Value": to_dns_name}]}}]}).get("ChangeInfo", {})
    return RecordChange(hosted_zone_id=zone, record=record, record_type=record_type, ttl=ttl,
                        to_dns_name=to_dns_name, previous=previous, change_id=change.get("Id"),
                        status=change.get("Status"), dry_run=dry_run is not None)


def put_parameter(
    target: Target, name_key: str, value: str, *, region: str | None = None,
    dry_run: DryRun | None = None,
) -> ParameterResult:
    """Write ``value`` to the SSM parameter ``ssm.<name_key>`` as a SecureString,
    overwriting it, in the DR region (runbook §1.4 step 5, §1.5 step 2). The value is
    never logged nor returned. Undone by writing the old value back.

    :param name_key: a key of ``ssm`` in the target: ``database_url`` or ``pgw_base_url``.
    :param value: the new value (a secret).
    :param region: default the target's ``aws.dr_region``.
    """
    name = target.get(f"ssm.{name_key}")
    if not name:
        raise UsageError(f"target {target.name!r} has no setting 'ssm.{name_key}'")
    ssm = client("ssm", target, region=_dr_region(target, region), dry_run=dry_run)
    logger.info("ssm PutParameter %s SecureString overwrite (%s)%s",
                name, ssm.meta.region_name, _dry(dry_run))
    answer = ssm.put_parameter(Name=str(name), Value=value, Type="SecureString",
                               Overwrite=True)
    version = answer.get("Version")
    return ParameterResult(name_key=name_key, name=str(name), region=ssm.meta.region_name,
                           type="SecureString", version=int(version) if version else None,
                           dry_run=dry_run is not None)


def force_new_deployment(
    target: Target, service: str, *, region: str | None = None,
    dry_run: DryRun | None = None,
) -> DeploymentResult:
    """UpdateService forceNewDeployment on ``ecs.cluster`` in the DR region, so new tasks
    start and read the new SSM parameters (§1.4 lacks this step; §1.1 has the command).
    Nothing to undo.

    :param service: a key of ``ecs.services`` in the target, or an ECS service name.
    :param region: default the target's ``aws.dr_region``.
    """
    cluster = str(target.require("ecs.cluster"))
    name = str(target.get(f"ecs.services.{service}.service", service))
    ecs = client("ecs", target, region=_dr_region(target, region), dry_run=dry_run)
    logger.info("ecs UpdateService forceNewDeployment %s (cluster %s, %s)%s",
                name, cluster, ecs.meta.region_name, _dry(dry_run))
    answer = ecs.update_service(cluster=cluster, service=name, forceNewDeployment=True)
    primary = [d for d in answer.get("service", {}).get("deployments", [])
               if d.get("status") == "PRIMARY"]
    return DeploymentResult(
        cluster=cluster, service=name, region=ecs.meta.region_name,
        deployment_id=primary[0].get("id") if primary else None,
        rollout_state=primary[0].get("rolloutState") if primary else None,
        dry_run=dry_run is not None)


# ---------------------------------------------------------------- the plan


def plan_region_failover(
    target: Target, *, system: str = "smartpos", dry_run: DryRun
) -> list[PlannedStep]:
    """The region failover of runbook §1.4 (``smartpos``) or §1.5 (``pgw``) as the calls
    it makes, in order, each in the DR region (Route53's in ``aws-global``, its only
    endpoint): recorded by running the functions above
    against ``dry_run`` (nothing is sent; canned answers in it are used, for example a
    ``rds.DescribeDBSnapshots`` answer naming the snapshot to restore).

    smartpos: newest snapshot, restore, DATABASE_URL, force a new deployment of each
    ``ecs.services``, Route53 last (the runbook switches DNS at step 3, before the database
    exists in the DR region). pgw: newest mpac-pgw snapshot, restore, PGW_BASE_URL.
    Activating the DR stack (``make deploy-...``, ``provision.sh``) is not an AWS call and
    is not in the plan.
    """
    if system not in SYSTEMS:
        raise UsageError(f"system must be one of {', '.join(SYSTEMS)}, not {system!r}")
    steps: list[PlannedStep] = []

    def record(name: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        first = len(dry_run.calls)
        out = call(target, *args, dry_run=dry_run, **kwargs)
        steps.extend(PlannedStep(name=name, service=c["service"], operation=c["operation"],
                                 region=c["region"], params=c["params"])
                     for c in dry_run.calls[first:])
        return out

    snapshot = record(f"find the newest {system} snapshot in the DR region",
                      latest_snapshot, system)
    snapshot_id = snapshot["snapshot_id"] if snapshot else f"<newest {system} snapshot>"
    restored = record(f"restore {snapshot_id} in the DR region", restore_from_snapshot,
                      system, snapshot_id)
    endpoint = restored["endpoint_address"] or f"<{restored['identifier']} endpoint>"
    if system == "pgw":
        record("point PGW_BASE_URL at the DR PGW", put_parameter, "pgw_base_url",
               str(target.get("pgw.dr_base_url") or "<DR PGW base URL>"))
        return steps
    record("point DATABASE_URL at the restored database", put_parameter, "database_url",
           f"postgresql://<user>:<password>@{endpoint}/<db>")
    for key in target.get("ecs.services") or {}:
        record(f"force a new deployment of {key}", force_new_deployment, key)
    record("switch the Route53 record to the DR load balancer", switch_record,
           to_dns_name=str(target.get("route53.dr_dns_name") or "<DR load balancer>"))
    return steps


# ---------------------------------------------------------------- runbook finding F1

class RunbookStep(TypedDict):
    section: str
    step: str
    action: str
    command: str
    region: str  # the region the runbook runs it in
    named_by: str  # where the runbook says so


#: The runbook's region-failover commands and the region each one names (RUNBOOK.md).
RUNBOOK_REGION_STEPS: tuple[RunbookStep, ...] = (
    {"section": "1.4", "step": "2", "action": "activate the DR environment",
     "command": "make deploy-smartpos-prod AWS_PROFILE=prod ENV=dr",
     "region": "ap-northeast-1", "named_by": "the step text 'Activate DR environment in "
     "ap-northeast-1'"},
    {"section": "1.4", "step": "3", "action": "update the Route53 record",
     "command": "aws route53 change-resource-record-sets --hosted-zone-id "
     "Z0677506ALKL276Q2VVE --change-batch file://shared/scripts/failover-to-dr.json "
     "--region ap-northeast-1",
     "region": "ap-northeast-1", "named_by": "--region ap-northeast-1 and the step text "
     "'point api.mpac-cloud.com to ap-northeast-1 ALB' (Route53 itself is global: the "
     "flag is ignored, the ALB it points at is in the failed region)"},
    {"section": "1.4", "step": "4", "action": "list recent snapshots",
     "command": "aws rds describe-db-snapshots --db-instance-identifier mpac-smartpos-prod "
     "--output table --region ap-northeast-1",
     "region": "ap-northeast-1", "named_by": "--region ap-northeast-1"},
    {"section": "1.4", "step": "4", "action": "restore the latest snapshot",
     "command": "aws rds restore-db-instance-from-db-snapshot --db-instance-identifier "
     "mpac-smartpos-dr --db-snapshot-identifier <latest-snapshot-id> --db-instance-class "
     "db.r6g.large --region ap-northeast-1",
     "region": "ap-northeast-1", "named_by": "--region ap-northeast-1"},
    {"section": "1.4", "step": "5", "action": "update DATABASE_URL in SSM",
     "command": "aws ssm put-parameter --name /mpac-smartpos/prod/DATABASE_URL --value "
     "\"postgresql://...\" --type SecureString --overwrite --region ap-northeast-1",
     "region": "ap-northeast-1", "named_by": "--region ap-northeast-1"},
    {"section": "1.5", "step": "1", "action": "activate PGW DR",
     "command": "AWS_REGION=us-east-1 ENV=dr ./mpac-pgw/scripts/provision.sh mpac-pgw-dr dr",
     "region": "us-east-1", "named_by": "AWS_REGION=us-east-1"},
    {"section": "1.5", "step": "3", "action": "restore the latest PGW snapshot",
     "command": "aws rds restore-db-instance-from-db-snapshot --db-instance-identifier "
     "mpac-pgw-dr --db-snapshot-identifier <latest-pgw-snapshot> --region us-east-1",
     "region": "us-east-1", "named_by": "--region us-east-1"},
)


def runbook_region_findings(target: Target) -> list[Finding]:
    """Finding F1: one entry per runbook failover command that runs outside the target's
    DR region (``aws.dr_region``), with evidence naming both regions. No AWS call."""
    primary = str(target.require("aws.region"))
    dr = str(target.require("aws.dr_region"))
    findings: list[Finding] = []
    for step in RUNBOOK_REGION_STEPS:
        named = step["region"]
        if named == dr:
            continue
        which = ("the target's primary region (aws.region), the one that failed"
                 if named == primary else "neither the primary nor the DR region")
        findings.append(Finding(
            id="F1", section=step["section"], step=step["step"], action=step["action"],
            command=step["command"], runbook_region=named, primary_region=primary,
            dr_region=dr,
            evidence=(f"runbook §{step['section']} step {step['step']} ({step['action']}) "
                      f"runs in {named} per {step['named_by']}: {which}; the DR region of "
                      f"target {target.name} is {dr} (aws.dr_region)"),
        ))
    return findings


# ---------------------------------------------------------------- helpers


def _dr_region(target: Target, region: str | None) -> str:
    return str(region or target.require("aws.dr_region"))


def _dr_identifier(source: str, at: datetime) -> str:
    """``<source>-dr-<UTC yyyymmddHHMMSS>``, cut to RDS's 63 characters."""
    suffix = f"-dr-{at.astimezone(UTC).strftime('%Y%m%d%H%M%S')}"
    return source[: 63 - len(suffix)].rstrip("-") + suffix


def _data_time(snapshot: dict[str, Any]) -> datetime | None:
    for key in ("SnapshotDatabaseTime", "OriginalSnapshotCreateTime", "SnapshotCreateTime"):
        if isinstance(snapshot.get(key), datetime):
            return snapshot[key]  # type: ignore[no-any-return]
    return None


def _iso(dt: Any) -> str | None:
    if not isinstance(dt, datetime):
        return None
    return dt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _dry(dry_run: DryRun | None) -> str:
    return " [dry-run]" if dry_run is not None else ""


__all__ = [
    "SnapshotInfo",
    "RestoreResult",
    "RecordChange",
    "ParameterResult",
    "DeploymentResult",
    "PlannedStep",
    "Finding",
    "RunbookStep",
    "SYSTEMS",
    "RUNBOOK_REGION_STEPS",
    "latest_snapshot",
    "restore_from_snapshot",
    "switch_record",
    "put_parameter",
    "force_new_deployment",
    "plan_region_failover",
    "runbook_region_findings",
]

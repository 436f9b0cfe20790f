"""The cut-over steps of the region-level DR drills (runbook §1.4, §1.5): point the Route53
record at the DR load balancer, the SSM parameters at the DR stack, and redeploy the ECS
services so they read them.

Plain functions taking an ``aws`` target first, building their clients through
:func:`mpac_drill.aws.client` in the target's DR region (``aws.dr_region``) unless told
otherwise (Route53 is global). Re-exported by :mod:`mpac_drill.platform.aws.dr`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypedDict

from mpac_drill.aws import DryRun, client
from mpac_drill.aws import dry_note as _dry
from mpac_drill.config import Target
from mpac_drill.errors import UsageError
from mpac_drill.platform.aws.dr_rds import _dr_region

logger = logging.getLogger("mpac_drill")


class RecordChange(TypedDict):
    hosted_zone_id: str
    record: str
    record_type: str
    ttl: int
    to_dns_name: str
    previous: list[str]  # the record's values before the change
    previous_set: dict[str, Any] | None  # the whole record set as it was: what undoes it
    change_id: str | None
    status: str | None
    dry_run: bool


class ParameterShape(TypedDict):
    """Everything of an SSM parameter but its value: what a restore must put back."""

    type: str
    key_id: str | None
    tier: str | None
    data_type: str | None
    description: str | None


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


def read_record_set(
    route53: Any, zone: str, record: str, record_type: str
) -> dict[str, Any] | None:
    """The record set ``record`` of ``record_type`` in ``zone`` as Route53 holds it, or
    None when there is none (one ``ListResourceRecordSets``)."""
    sets = route53.list_resource_record_sets(
        HostedZoneId=zone, StartRecordName=record, StartRecordType=record_type, MaxItems="1"
    ).get("ResourceRecordSets", [])
    same = [
        s
        for s in sets[:1]
        if s.get("Name", "").rstrip(".") == record.rstrip(".") and s.get("Type") == record_type
    ]
    return dict(same[0]) if same else None


def switch_record(
    target: Target,
    *,
    to_dns_name: str,
    record_type: str = "CNAME",
    ttl: int = 60,
    dry_run: DryRun | None = None,
    before_change: Callable[[RecordChange], None] | None = None,
) -> RecordChange:
    """UPSERT ``route53.record`` in ``route53.hosted_zone_id`` to ``to_dns_name``
    (runbook §1.4 step 3). Route53 is global: botocore calls its one endpoint, region
    ``aws-global`` (signed for us-east-1), whatever the target's regions. Reads the record
    first; undone by :func:`restore_record` with ``previous_set`` (type, TTL, values,
    routing policy, health check: the record exactly as it was).

    :param to_dns_name: the DR load balancer's DNS name (a plain record, not an alias).
    :param record_type: ``CNAME`` unless the record is another type.
    :param ttl: seconds resolvers may cache the answer.
    :param before_change: called with the change about to be made (``change_id`` and
        ``status`` still ``None``) right before the UPSERT: the write-ahead record of it.
    """
    zone = _route53_name(target, "route53.hosted_zone_id", dry_run).rsplit("/", 1)[-1]
    record = _route53_name(target, "route53.record", dry_run)
    route53 = client("route53", target, dry_run=dry_run)
    previous_set = read_record_set(route53, zone, record, record_type)
    previous = [r["Value"] for r in (previous_set or {}).get("ResourceRecords", [])]
    logger.info(
        "route53 UPSERT %s %s -> %s (zone %s, was %s)%s",
        record_type,
        record,
        to_dns_name,
        zone,
        ", ".join(previous) or "absent",
        _dry(dry_run),
    )
    planned = RecordChange(
        hosted_zone_id=zone,
        record=record,
        record_type=record_type,
        ttl=ttl,
        to_dns_name=to_dns_name,
        previous=previous,
        previous_set=previous_set,
        change_id=None,
        status=None,
        dry_run=dry_run is not None,
    )
    if before_change is not None:
        before_change(planned)
    change = route53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Comment": "mpac-drill region failover",
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": record,
                        "Type": record_type,
                        "TTL": ttl,
                        "ResourceRecords": [{"Value": to_dns_name}],
                    },
                }
            ],
        },
    ).get("ChangeInfo", {})
    return RecordChange(
        **{**planned, "change_id": change.get("Id"), "status": change.get("Status")}
    )


def restore_record(
    target: Target,
    change: RecordChange,
    *,
    dry_run: DryRun | None = None,
) -> str:
    """Put the record back exactly as :func:`switch_record` found it: UPSERT of the whole
    record set it read (type, TTL, values, weight, set identifier, health check, alias), or,
    when there was none, DELETE of the record the switch created. Returns what was done."""
    route53 = client("route53", target, dry_run=dry_run)
    previous = change["previous_set"]
    if previous is not None:
        action, record_set = "UPSERT", previous
    else:
        action = "DELETE"
        record_set = {
            "Name": change["record"],
            "Type": change["record_type"],
            "TTL": change["ttl"],
            "ResourceRecords": [{"Value": change["to_dns_name"]}],
        }
    logger.info(
        "route53 %s %s %s (zone %s): fail-back%s",
        action,
        change["record_type"],
        change["record"],
        change["hosted_zone_id"],
        _dry(dry_run),
    )
    route53.change_resource_record_sets(
        HostedZoneId=change["hosted_zone_id"],
        ChangeBatch={
            "Comment": "mpac-drill fail-back: the record as it was",
            "Changes": [{"Action": action, "ResourceRecordSet": record_set}],
        },
    )
    return "restored as it was" if previous is not None else "deleted (absent before)"


def describe_parameter(
    target: Target,
    name_key: str,
    *,
    region: str | None = None,
    dry_run: DryRun | None = None,
) -> tuple[str | None, ParameterShape | None]:
    """``(value, shape)`` of the SSM parameter ``ssm.<name_key>`` (value decrypted, kept in
    memory only), or ``(None, None)`` when it does not exist."""
    name = str(target.require(f"ssm.{name_key}"))
    ssm = client("ssm", target, region=_dr_region(target, region), dry_run=dry_run)
    found = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}]
    ).get("Parameters", [])
    if not found:
        return None, None
    meta = found[0]
    value = ssm.get_parameter(Name=name, WithDecryption=True).get("Parameter", {}).get("Value")
    shape = ParameterShape(
        type=str(meta.get("Type", "SecureString")),
        key_id=meta.get("KeyId"),
        tier=meta.get("Tier"),
        data_type=meta.get("DataType"),
        description=meta.get("Description"),
    )
    return (str(value) if value is not None else None), shape


def _route53_name(target: Target, key: str, dry_run: DryRun | None) -> str:
    """The target's ``key``; unset: a usage error, or ``UNSET.<key>`` in a dry run's plan."""
    value = target.get(key)
    if value:
        return str(value)
    if dry_run is not None:
        return f"UNSET.{key}"
    raise UsageError(f"target {target.name!r} ({target.path}) does not set {key}: fill it in")


def put_parameter(
    target: Target,
    name_key: str,
    value: str,
    *,
    region: str | None = None,
    like: ParameterShape | None = None,
    dry_run: DryRun | None = None,
) -> ParameterResult:
    """Write ``value`` to the SSM parameter ``ssm.<name_key>``, overwriting it, in the DR
    region (runbook §1.4 step 5, §1.5 step 2), keeping its type, KMS key and tier
    (``like``, from :func:`describe_parameter`; a SecureString when unknown). The value is
    never logged nor returned. Undone by writing the old value back ``like`` it was.

    :param name_key: a key of ``ssm`` in the target: ``database_url``, ``pgw_base_url`` or
        ``pgw_database_url``.
    :param value: the new value (a secret).
    :param region: default the target's ``aws.dr_region``.
    """
    name = target.get(f"ssm.{name_key}")
    if not name:
        raise UsageError(f"target {target.name!r} has no setting 'ssm.{name_key}'")
    ssm = client("ssm", target, region=_dr_region(target, region), dry_run=dry_run)
    logger.info(
        "ssm PutParameter %s %s overwrite (%s)%s",
        name,
        like["type"] if like else "SecureString",
        ssm.meta.region_name,
        _dry(dry_run),
    )
    kind = like["type"] if like else "SecureString"
    extra: dict[str, Any] = {}
    if like and like.get("key_id") and kind == "SecureString":
        extra["KeyId"] = like["key_id"]
    if like and like.get("tier"):
        extra["Tier"] = like["tier"]
    if like and like.get("data_type"):
        extra["DataType"] = like["data_type"]
    answer = ssm.put_parameter(Name=str(name), Value=value, Type=kind, Overwrite=True, **extra)
    version = answer.get("Version")
    return ParameterResult(
        name_key=name_key,
        name=str(name),
        region=ssm.meta.region_name,
        type=kind,
        version=int(version) if version else None,
        dry_run=dry_run is not None,
    )


def force_new_deployment(
    target: Target,
    service: str,
    *,
    region: str | None = None,
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
    logger.info(
        "ecs UpdateService forceNewDeployment %s (cluster %s, %s)%s",
        name,
        cluster,
        ecs.meta.region_name,
        _dry(dry_run),
    )
    answer = ecs.update_service(cluster=cluster, service=name, forceNewDeployment=True)
    primary = [
        d for d in answer.get("service", {}).get("deployments", []) if d.get("status") == "PRIMARY"
    ]
    return DeploymentResult(
        cluster=cluster,
        service=name,
        region=ecs.meta.region_name,
        deployment_id=primary[0].get("id") if primary else None,
        rollout_state=primary[0].get("rolloutState") if primary else None,
        dry_run=dry_run is not None,
    )


__all__ = [
    "RecordChange",
    "ParameterResult",
    "DeploymentResult",
    "switch_record",
    "put_parameter",
    "force_new_deployment",
]

"""The AWS side of the region-level DR drills (runbook §1.4 smartpos, §1.5 pgw).

Plain functions, each taking an ``aws`` target first and building its clients through
:func:`mpac_drill.aws.client` in the target's DR region (``aws.dr_region``) unless told
otherwise: find the newest snapshot the DR region holds, restore it
(``aws_dr_rds``), point the SSM parameters and the Route53 record at the DR stack, and
redeploy the ECS services so they read the new parameters (``aws_dr_cutover``).
:func:`plan_region_failover` runs them against a :class:`~mpac_drill.aws.DryRun`, so the
plan it returns is the real call sequence. :func:`runbook_region_findings`
(``aws_dr_runbook``) checks the regions the runbook's commands name against the target
(finding F1). This module is the one place to import them from.

Optional target keys: ``route53.dr_dns_name`` (the DR load balancer, for the plan),
``pgw.dr_base_url`` (the DR PGW URL, for the plan), ``rds.dr_subnet_group`` and
``rds.dr_security_group_ids`` (the DR VPC of a restored instance).
"""

from __future__ import annotations

from typing import Any, TypedDict

from mpac_drill.aws import DryRun
from mpac_drill.config import Target
from mpac_drill.errors import UsageError
from mpac_drill.platform.aws.dr_cutover import (
    DeploymentResult,
    ParameterResult,
    ParameterShape,
    RecordChange,
    describe_parameter,
    force_new_deployment,
    put_parameter,
    restore_record,
    switch_record,
)
from mpac_drill.platform.aws.dr_rds import (
    RestoreResult,
    SnapshotInfo,
    dr_identifier,
    latest_snapshot,
    restore_from_snapshot,
)
from mpac_drill.platform.aws.dr_runbook import (
    RUNBOOK_REGION_STEPS,
    Finding,
    RunbookStep,
    runbook_region_findings,
)

SYSTEMS = ("smartpos", "pgw")


class PlannedStep(TypedDict):
    name: str
    service: str
    operation: str
    region: str
    params: dict[str, Any]


def plan_region_failover(
    target: Target, *, system: str = "smartpos", dry_run: DryRun
) -> list[PlannedStep]:
    """The region failover of runbook §1.4 (``smartpos``) or §1.5 (``pgw``) as the calls
    it makes, in order, each in the DR region (Route53's in ``aws-global``, its only
    endpoint): recorded by running the step functions (``aws_dr_rds``, ``aws_dr_cutover``)
    against ``dry_run`` (nothing is sent; canned answers in it are used, for example a
    ``rds.DescribeDBSnapshots`` answer naming the snapshot to restore).

    smartpos: newest snapshot, restore, DATABASE_URL, force a new deployment of each
    ``ecs.services``, Route53 last (the runbook switches DNS at step 3, before the database
    exists in the DR region). pgw: newest mpac-pgw snapshot, restore, PGW_BASE_URL, the DR
    PGW's DATABASE_URL (``ssm.pgw_database_url``; §1.5 has no such step: F13), deployments,
    Route53.
    Activating the DR stack (``make deploy-...``, ``provision.sh``) is not an AWS call and
    is not in the plan.
    """
    if system not in SYSTEMS:
        raise UsageError(f"system must be one of {', '.join(SYSTEMS)}, not {system!r}")
    steps: list[PlannedStep] = []

    def record(name: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        first = len(dry_run.calls)
        out = call(target, *args, dry_run=dry_run, **kwargs)
        steps.extend(
            PlannedStep(
                name=name,
                service=c["service"],
                operation=c["operation"],
                region=c["region"],
                params=c["params"],
            )
            for c in dry_run.calls[first:]
        )
        return out

    snapshot = record(
        f"find the newest {system} snapshot in the DR region", latest_snapshot, system
    )
    snapshot_id = snapshot["snapshot_id"] if snapshot else f"<newest {system} snapshot>"
    restored = record(
        f"restore {snapshot_id} in the DR region", restore_from_snapshot, system, snapshot_id
    )
    endpoint = restored["endpoint_address"] or f"<{restored['identifier']} endpoint>"
    dsn = f"postgresql://<user>:<password>@{endpoint}/<db>"
    if system == "pgw":
        record(
            "point PGW_BASE_URL at the DR PGW",
            put_parameter,
            "pgw_base_url",
            str(target.get("pgw.dr_base_url") or "<DR PGW base URL>"),
        )
        if target.get("ssm.pgw_database_url"):
            record(
                "point the DR PGW's DATABASE_URL at the restored database (not in the "
                "runbook: F13)",
                put_parameter,
                "pgw_database_url",
                dsn,
            )
    else:
        record("point DATABASE_URL at the restored database", put_parameter, "database_url", dsn)
    for key in target.get("ecs.services") or {}:
        record(f"force a new deployment of {key}", force_new_deployment, key)
    record(
        "switch the Route53 record to the DR load balancer",
        switch_record,
        to_dns_name=str(target.get("route53.dr_dns_name") or "<DR load balancer>"),
    )
    return steps


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
    "dr_identifier",
    "restore_from_snapshot",
    "switch_record",
    "put_parameter",
    "describe_parameter",
    "restore_record",
    "ParameterShape",
    "force_new_deployment",
    "plan_region_failover",
    "runbook_region_findings",
]

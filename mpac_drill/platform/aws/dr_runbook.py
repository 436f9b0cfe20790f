"""Runbook finding F1 of the region-level DR drills: the runbook's failover commands and the
region each one names, checked against the target's DR region (``aws.dr_region``). No AWS
call. Re-exported by :mod:`mpac_drill.platform.aws.dr`.
"""

from __future__ import annotations

from typing import TypedDict

from mpac_drill.config import Target


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


class RunbookStep(TypedDict):
    section: str
    step: str
    action: str
    command: str
    region: str  # the region the runbook runs it in
    named_by: str  # where the runbook says so


#: The runbook's region-failover commands and the region each one names (RUNBOOK.md).
RUNBOOK_REGION_STEPS: tuple[RunbookStep, ...] = (
    {
        "section": "1.4",
        "step": "2",
        "action": "activate the DR environment",
        "command": "make deploy-smartpos-prod AWS_PROFILE=prod ENV=dr",
        "region": "ap-northeast-1",
        "named_by": "the step text 'Activate DR environment in ap-northeast-1'",
    },
    {
        "section": "1.4",
        "step": "3",
        "action": "update the Route53 record",
        "command": "aws route53 change-resource-record-sets --hosted-zone-id "
        "Z0677506ALKL276Q2VVE --change-batch file://shared/scripts/failover-to-dr.json "
        "--region ap-northeast-1",
        "region": "ap-northeast-1",
        "named_by": "--region ap-northeast-1 and the step text "
        "'point api.mpac-cloud.com to ap-northeast-1 ALB' (Route53 itself is global: the "
        "flag is ignored, the ALB it points at is in the failed region)",
    },
    {
        "section": "1.4",
        "step": "4",
        "action": "list recent snapshots",
        "command": "aws rds describe-db-snapshots --db-instance-identifier mpac-smartpos-prod "
        "--output table --region ap-northeast-1",
        "region": "ap-northeast-1",
        "named_by": "--region ap-northeast-1",
    },
    {
        "section": "1.4",
        "step": "4",
        "action": "restore the latest snapshot",
        "command": "aws rds restore-db-instance-from-db-snapshot --db-instance-identifier "
        "mpac-smartpos-dr --db-snapshot-identifier <latest-snapshot-id> --db-instance-class "
        "db.r6g.large --region ap-northeast-1",
        "region": "ap-northeast-1",
        "named_by": "--region ap-northeast-1",
    },
    {
        "section": "1.4",
        "step": "5",
        "action": "update DATABASE_URL in SSM",
        "command": "aws ssm put-parameter --name /mpac-smartpos/prod/DATABASE_URL --value "
        '"postgresql://..." --type SecureString --overwrite --region ap-northeast-1',
        "region": "ap-northeast-1",
        "named_by": "--region ap-northeast-1",
    },
    {
        "section": "1.5",
        "step": "1",
        "action": "activate PGW DR",
        "command": "AWS_REGION=us-east-1 ENV=dr ./mpac-pgw/scripts/provision.sh mpac-pgw-dr dr",
        "region": "us-east-1",
        "named_by": "AWS_REGION=us-east-1",
    },
    {
        "section": "1.5",
        "step": "3",
        "action": "restore the latest PGW snapshot",
        "command": "aws rds restore-db-instance-from-db-snapshot --db-instance-identifier "
        "mpac-pgw-dr --db-snapshot-identifier <latest-pgw-snapshot> --region us-east-1",
        "region": "us-east-1",
        "named_by": "--region us-east-1",
    },
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
        which = (
            "the target's primary region (aws.region), the one that failed"
            if named == primary
            else "neither the primary nor the DR region"
        )
        findings.append(
            Finding(
                id="F1",
                section=step["section"],
                step=step["step"],
                action=step["action"],
                command=step["command"],
                runbook_region=named,
                primary_region=primary,
                dr_region=dr,
                evidence=(
                    f"runbook §{step['section']} step {step['step']} ({step['action']}) "
                    f"runs in {named} per {step['named_by']}: {which}; the DR region of "
                    f"target {target.name} is {dr} (aws.dr_region)"
                ),
            )
        )
    return findings


__all__ = ["Finding", "RunbookStep", "RUNBOOK_REGION_STEPS", "runbook_region_findings"]

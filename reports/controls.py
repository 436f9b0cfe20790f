"""Fixed texts the report cites: the audit controls it answers and the runbook findings list.

The findings are the ids of ``RUNBOOK-FINDINGS.md`` (the runbook claims a drill can confirm
or refute); the report shows each one, exercised by a run or not.
"""

from __future__ import annotations

from dataclasses import dataclass

SOC2 = "SOC 2 A1.3"
PCI = "PCI DSS 12.10.2"

#: What each control asks, as the report quotes it.
CONTROLS = {
    SOC2: "recovery plan procedures are tested; the tests document the actual recovery "
    "time and data loss, and the gaps found are followed up",
    PCI: "the incident response plan, including business recovery and data backup, is "
    "tested at least once every 12 months",
}

#: Report section → the controls it answers and what it shows an auditor.
SECTION_CONTROLS = (
    ("Compliance summary", (SOC2,), "measured RTO and RPO per scenario against the targets"),
    ("Violations", (SOC2,), "every gap found, with its evidence and a follow-up"),
    ("Drills", (SOC2, PCI), "what was injected, what users saw, how long recovery took"),
    ("Trend", (SOC2,), "whether recovery gets faster or slower across quarters"),
    ("Runbook findings", (PCI,), "runbook claims checked by drills, to update the plan"),
    ("12-month coverage", (PCI,), "which scenarios were tested in the last 12 months"),
    (
        "Appendix: run folders and artifact manifest",
        (SOC2, PCI),
        "the evidence, with a SHA-256 per artifact",
    ),
)


@dataclass(frozen=True)
class Finding:
    id: str
    section: str
    claim: str


RUNBOOK_FINDINGS = (
    Finding(
        "F1",
        "1.4",
        "DR activation, Route53 change, snapshot restore and SSM update run "
        "with --region ap-northeast-1, the failed region",
    ),
    Finding(
        "F2",
        "1.4",
        "detection relies on a health check from ap-northeast-1, which "
        "fails with the region it watches",
    ),
    Finding(
        "F3",
        "1.4",
        "RPO 15 min from 5-minute automated backups, which are regional "
        "and not copied to us-east-1",
    ),
    Finding(
        "F4",
        "1.2",
        "failover with failover-db-cluster, which applies to clusters only, "
        "not to a Multi-AZ DB instance",
    ),
    Finding(
        "F5", "1.2", "Multi-AZ promotes the standby within 1-2 minutes (plus client reconnection)"
    ),
    Finding("F6", "1.2", "ReadReplicaSourceDBInstanceIdentifier read as the primary's role"),
    Finding(
        "F7",
        "1.3",
        "security impact low while the revocation list is down (tokens expire in 15 min)",
    ),
    Finding(
        "F8",
        "1.3",
        "duplicate requests while the idempotency cache is down are handled at the DB layer",
    ),
    Finding(
        "F9",
        "1.5",
        "QR transactions in the outage window may need manual "
        "reconciliation, with no list of which",
    ),
    # found by the drills themselves (not in RUNBOOK-FINDINGS.md)
    Finding(
        "F10",
        "1.6",
        "recovery by re-deploying the ECS stack, yet a new EC2 OBS box re-attaches the S3 buckets",
    ),
    Finding(
        "F11", "1.6", "mpac-obs has no DR region: a region loss takes observability down with it"
    ),
    Finding(
        "F12",
        "1.4",
        "the region failover restores mpac-smartpos in us-east-1 and never "
        "moves its PGW_BASE_URL: its QR payments have no working PGW until "
        "1.5 runs",
    ),
    Finding(
        "F13",
        "1.5",
        "the PGW database is restored into mpac-pgw-dr, yet no step points the DR PGW at it",
    ),
    Finding(
        "F14",
        "1.4, 1.5",
        "traffic is switched to the DR region (1.4 step 3: Route53; "
        "1.5 step 2: PGW_BASE_URL) before the database behind it is "
        "restored",
    ),
    Finding(
        "D1",
        "1.1-1.5",
        "each failure is detected by the alarm its Detection line names "
        "(a drill finds the alarm missing)",
    ),
    Finding(
        "D2",
        "1.1-1.5",
        "the named alarm fires when its failure happens (a drill finds it silent, or "
        "already in ALARM before the fault)",
    ),
    Finding(
        "D3",
        "1.1, §3",
        "an alarm pages on-call through SNS and PagerDuty (a drill finds an alarm that "
        "fired without a page)",
    ),
)

__all__ = ["SOC2", "PCI", "CONTROLS", "SECTION_CONTROLS", "Finding", "RUNBOOK_FINDINGS"]

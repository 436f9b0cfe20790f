"""What one drill records beyond its core figures, typed: each drill kind writes its own
field, and the result builder reads the fields (never string keys of a shared dict).

:class:`DrillRecord` holds what goes into ``result.json`` (its optional sections, named as
the contract names them); :class:`DrillHandles` holds what stays in memory (clients to
stop, resources to undo, DSNs carrying passwords) and never reaches a file.

Example::

    drill.record.impact = RedisImpact(revoked_token_accepted_s=0.4, ...)
    drill.record.findings.append(Finding(id="F3", section="1.4", summary=..., evidence=...))
    drill.handles.pitr_instance = handle
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

if TYPE_CHECKING:
    from mpac_drill.measure.detection import DetectionRecord
    from mpac_drill.measure.phases import PhasesRecord


class Finding(TypedDict):
    """A runbook finding (``RUNBOOK-FINDINGS.md``) this drill confirmed or refuted."""

    id: str
    section: str
    summary: str
    evidence: str


class Step(TypedDict):
    """One timed step of a procedure (``platform/steps.py::StepTimer``)."""

    name: str
    started_at: str
    duration_s: float
    ok: bool
    detail: str


class CleanupEntry(TypedDict):
    """What the drill created or changed, and what became of it."""

    what: str
    resource: str
    outcome: str
    region: NotRequired[str]


class RedisImpact(TypedDict):
    """Runbook §1.3's impact checks, counted after a cache failover."""

    revoked_token_accepted_s: float
    revocation_enforced_before: bool
    duplicate_orders: int
    order_retries_sent: int
    rate_limit_bypassed: int
    token_lifetime_s: Any


class PitrImpact(TypedDict):
    """A point-in-time restore's check: canary writes after the restore time are gone."""

    lost_writes: int
    rows_after_target: int


class Reconciliation(TypedDict):
    """Runbook §1.5's reconciliation: acknowledged QR payments missing after the restore."""

    payments_acked: int
    payments_missing: int
    amount_missing: int
    file: str


class QrPath(TypedDict):
    """Where QR payments went after runbook §1.4's steps (finding F12)."""

    pgw_base_url: str
    to_dr_pgw: bool
    in_lost_region: bool
    detail: str
    pgw: NotRequired[str]  # the sandbox: its deep health's word on that PGW


@dataclass
class DrillRecord:
    """A drill's record: each field is one optional section of ``result.json``."""

    findings: list[Finding] = field(default_factory=list)
    #: the sandbox's configured delays, the ground truth its figures are checked against
    ground_truth: dict[str, Any] = field(default_factory=dict)
    #: a timed procedure's steps (point-in-time restore, region failover)
    steps: list[Step] = field(default_factory=list)
    cleanup: list[CleanupEntry] = field(default_factory=list)
    #: dry run: steps that are no API call (a Grafana GET, a name to fill in)
    planned_steps: list[dict[str, Any]] = field(default_factory=list)
    preflight: list[dict[str, Any]] | None = None
    impact: RedisImpact | PitrImpact | None = None
    #: the obs drill's checks (history kept, dashboards answer)
    obs: dict[str, Any] | None = None
    #: the point-in-time restore: restore time, target, timeline, ...
    pitr: dict[str, Any] | None = None
    #: the region drill: primary and DR region, what the DR side held at the loss
    region: dict[str, Any] | None = None
    reconciliation: Reconciliation | None = None
    qr_path: QrPath | None = None
    #: the DR snapshot the AWS region drill restored (in the record, not in result.json)
    dr_snapshot: dict[str, Any] | None = None
    #: a declared outage's procedure time: recovery is its end at the earliest
    procedure_rto_s: float | None = None
    #: the database or cache primary after the failover (finding F6)
    primary_after: str | None = None
    #: the detection chain: alarms, page, acknowledgement (``measure/detection.py``)
    detection: DetectionRecord | None = None
    #: where recovery time went: phases and milestones (``measure/phases.py``)
    phases: PhasesRecord | None = None

    #: the fields that are sections of result.json, in the order written
    RESULT_SECTIONS = (
        "ground_truth",
        "impact",
        "obs",
        "steps",
        "pitr",
        "region",
        "reconciliation",
        "qr_path",
        "cleanup",
        "preflight",
        "detection",
        "phases",
    )

    def result_sections(self) -> dict[str, Any]:
        """The sections this drill recorded (an empty list or ``None`` is not recorded)."""
        out: dict[str, Any] = {}
        for name in self.RESULT_SECTIONS:
            value = getattr(self, name)
            if value is not None and value != [] and value != {}:
                out[name] = value
        return out


@dataclass
class DrillHandles:
    """In memory only, never in a file: what later steps of the same drill pick up."""

    #: the point-in-time restore's instance, deleted by the clean-up
    pitr_instance: dict[str, Any] | None = None
    #: db → DSN of the DR databases the region drill restored (carries a password)
    dr_dsn: dict[str, str] = field(default_factory=dict)
    #: the PGW region drill's QR payment poster (``measure/payments.py::QrPayments``)
    payments: Any = None
    #: the region drill has failed back (the rollback runs once)
    failed_back: bool = False
    #: what the AWS region drill's fail-back must undo (no secret in it)
    region_undo: dict[str, Any] | None = None
    #: the obs drill's history writer (sandbox) or deployment and snapshots (AWS)
    obs_history: Any = None
    #: the detection chain's watch (``measure/detection.py::DetectionWatch``), a thread
    detection_watch: Any = None


__all__ = [
    "CleanupEntry",
    "DrillHandles",
    "DrillRecord",
    "Finding",
    "PitrImpact",
    "QrPath",
    "Reconciliation",
    "RedisImpact",
    "Step",
]

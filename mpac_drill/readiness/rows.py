"""The records of ``mpac-drill check``: one :class:`CheckRow` per check, and the thresholds
they are judged against.

Thresholds live in ``experiments/catalog.yaml`` (section ``readiness``, with the RPO of each
scenario) and a target file may override any of them in a ``readiness:`` section of its own;
nothing here hard-codes a figure. Both platforms' ``readiness`` modules return these rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

import yaml

from mpac_drill import CATALOG_PATH
from mpac_drill.config import Catalog, Target
from mpac_drill.errors import UsageError

Status = Literal["pass", "warn", "fail", "not checked"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "not checked")
#: Rows of this scenario protect every drill (stop alarms, permissions).
ALL = "all"


class CheckRow(TypedDict):
    """One check: what protects which drill, what was measured, against what, and where."""

    id: str  # stable across runs: "ecs.svc-portal.tasks" (the report's key)
    scenario: str  # catalog scenario id, or "all"
    section: str  # runbook section it protects: "1.1"
    what: str
    component: str  # the resource or sandbox component the check names
    status: Status
    measured: str | None  # the figure, as read: "1 of 2 running"
    value: float | None  # the figure as a number where there is one (seconds, counts)
    threshold: str | None
    evidence: str  # resource and API field (or sandbox query) the figure came from
    fix: str | None  # what to do when it is not a pass
    error: bool  # true when the check could not run (a call failed): exit 3 without fails


def row(
    id: str,
    scenario: str,
    section: str,
    what: str,
    component: str,
    status: Status,
    *,
    measured: str | None = None,
    value: float | None = None,
    threshold: str | None = None,
    evidence: str = "",
    fix: str | None = None,
    error: bool = False,
) -> CheckRow:
    """A :class:`CheckRow` with keyword arguments (the fix hint only where it is not a pass)."""
    return CheckRow(
        id=id,
        scenario=scenario,
        section=section,
        what=what,
        component=component,
        status=status,
        measured=measured,
        value=None if value is None else round(float(value), 3),
        threshold=threshold,
        evidence=evidence,
        fix=None if status == "pass" else fix,
        error=error,
    )


def detection_alarms(scenarios: set[str]) -> dict[str, tuple[str, str]]:
    """Alarm name → (scenario, runbook section) for every alarm the catalog's ``detection``
    names for ``scenarios``: the one list of the runbook's detection alarms."""
    from mpac_drill.config import load_catalog

    out: dict[str, tuple[str, str]] = {}
    for sc in load_catalog().scenarios.values():
        if sc.id in scenarios and sc.detection is not None:
            for alarm in sc.detection.alarms:
                out.setdefault(alarm.name, (sc.id, sc.runbook_section))
    return out


def judge_max(value: float, limit: float, warn_share: float) -> Status:
    """``value`` must stay at or below ``limit``: fail above, warn above ``warn_share`` of it."""
    if value > limit:
        return "fail"
    return "warn" if value > limit * warn_share else "pass"


@dataclass(frozen=True)
class Thresholds:
    """What the checks judge against (catalog ``readiness``, overridden by the target's)."""

    min_tasks: int
    min_azs: int
    min_cache_replicas: int
    backup_retention_days: int
    pitr_lag_s: float
    backup_windows: dict[str, str]
    replay_lag_s: float
    warn_share: float
    detection_alarms: list[str]
    #: scenario id → the DR data age it tolerates (its RPO, or ``dr_data_age_s``)
    rpo_s: dict[str, float] = field(default_factory=dict)

    def rpo_of(self, scenario: str) -> float:
        return self.rpo_s[scenario]


def load_thresholds(target: Target, catalog: Catalog, path: Path | None = None) -> Thresholds:
    """The thresholds for ``target``: the catalog's ``readiness`` section, then the target's.

    :raises UsageError: the catalog has no ``readiness`` section, or a value is malformed.
    """
    path = path or CATALOG_PATH
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"catalog {path} is unreadable: {' '.join(str(exc).split())}") from None
    base = raw.get("readiness") if isinstance(raw, dict) else None
    if not isinstance(base, dict):
        raise UsageError(f"catalog {path} has no 'readiness' section (mpac-drill check needs it)")
    own = target.get("readiness") or {}
    if not isinstance(own, dict):
        raise UsageError(f"target {target.name!r}: 'readiness' must be a mapping")
    merged: dict[str, Any] = {**base, **{k: v for k, v in own.items() if v is not None}}
    try:
        dr_age = merged.get("dr_data_age_s")
        rpo = {
            s.id: float(dr_age if dr_age is not None else (s.rpo_s or catalog.global_rpo_s))
            for s in catalog.scenarios.values()
        }
        return Thresholds(
            min_tasks=int(merged["min_tasks"]),
            min_azs=int(merged["min_azs"]),
            min_cache_replicas=int(merged["min_cache_replicas"]),
            backup_retention_days=int(merged["backup_retention_days"]),
            pitr_lag_s=float(merged["pitr_lag_s"]),
            backup_windows={str(k): str(v) for k, v in (merged["backup_windows"] or {}).items()},
            replay_lag_s=float(merged["replay_lag_s"]),
            warn_share=float(merged["warn_share"]),
            detection_alarms=[str(a) for a in merged.get("detection_alarms") or []],
            rpo_s=rpo,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"readiness thresholds ({path}, target {target.name!r}): {exc}") from None


def duration(seconds: float | None) -> str:
    """``42 s``, ``12.5 min``, ``3.2 h``, ``2.0 d``: a figure as a reader says it."""
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


__all__ = [
    "ALL",
    "STATUSES",
    "CheckRow",
    "Status",
    "Thresholds",
    "duration",
    "judge_max",
    "load_thresholds",
    "row",
]

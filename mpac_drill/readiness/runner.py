"""Run ``mpac-drill check`` on one target: its platform's read-only checks, timed and
counted, as one document the history stores (``contract/check-result.schema.json``).

The platform is chosen here through :func:`mpac_drill.drill.platforms.platform_module`
(``mpac_drill.platform.<kind>.readiness``): no fault, no load, no drill lock.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chaoslib.exceptions import ActivityFailed

from mpac_drill.aws import DryRun
from mpac_drill.config import Target, load_catalog
from mpac_drill.drill.platforms import platform_module
from mpac_drill.errors import ExitCode, HarnessError, UsageError
from mpac_drill.readiness.rows import STATUSES, CheckRow, load_thresholds
from mpac_drill.timefmt import iso


@dataclass(frozen=True)
class CheckRun:
    """One run of the checks on one target."""

    target: Target
    scenarios: list[str]
    rows: list[CheckRow]
    calls: int
    started_at: datetime
    duration_s: float
    dry_run: DryRun | None

    @property
    def exit_code(self) -> ExitCode:
        """1 when any check failed, else 3 when any could not run, else 0."""
        if any(r["status"] == "fail" for r in self.rows):
            return ExitCode.TARGET_MISSED
        if any(r["error"] for r in self.rows):
            return ExitCode.HARNESS
        return ExitCode.OK

    def summary(self) -> dict[str, int]:
        counts = Counter(r["status"] for r in self.rows)
        return {status: counts.get(status, 0) for status in STATUSES}

    def document(self) -> dict[str, Any]:
        """The run as stored in ``runs/checks/<UTC>.json``."""
        return {
            "schema_version": 1,
            "kind": "check",
            "target": self.target.name,
            "target_kind": self.target.kind,
            "environment": self.target.environment,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.started_at + timedelta(seconds=self.duration_s)),
            "duration_s": round(self.duration_s, 3),
            "calls": self.calls,
            "scenarios": self.scenarios,
            "exit_code": int(self.exit_code),
            "summary": self.summary(),
            "rows": self.rows,
        }


def scenario_ids(given: str | None) -> list[str]:
    """The catalog's scenarios named by ``--scenarios a,b`` (all of them when not given).

    :raises UsageError: an empty list or an unknown id.
    """
    catalog = load_catalog()
    if given is None:
        return list(catalog.scenarios)
    ids = [s.strip() for s in given.split(",") if s.strip()]
    if not ids:
        raise UsageError("--scenarios is empty: give scenario ids separated by commas")
    return [catalog.get(s).id for s in ids]


def run_checks(target: Target, scenarios: list[str], *, dry_run: bool) -> CheckRun:
    """Every readiness check of ``scenarios`` on ``target`` (a dry run records the calls
    into ``CheckRun.dry_run`` and makes none).

    :raises HarnessError: the platform could not be reached at all (no credentials, the
        sandbox is down): nothing could be checked.
    """
    thresholds = load_thresholds(target, load_catalog())
    module = platform_module(target, "readiness")
    recorder = DryRun() if dry_run else None
    started, t0 = datetime.now(UTC), time.monotonic()
    try:
        rows, calls = module.check(target, thresholds, set(scenarios), dry_run=recorder)
    except ActivityFailed as exc:
        raise HarnessError(f"could not check target {target.name!r}: {exc}") from None
    return CheckRun(
        target=target,
        scenarios=scenarios,
        rows=rows,
        calls=len(recorder.calls) if recorder is not None else calls,
        started_at=started,
        duration_s=time.monotonic() - t0,
        dry_run=recorder,
    )


__all__ = ["CheckRun", "run_checks", "scenario_ids"]

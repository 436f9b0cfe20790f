"""Everything one report is built from, computed before any rendering starts."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mpac_drill.config import Catalog
from reports.load import Skipped
from reports.metrics import Compliance


@dataclass(frozen=True)
class ReportData:
    """Frames and figures of one quarter's report (all of them already aggregated)."""

    quarter: str
    catalog: Catalog
    runs_dir_name: str
    judged: pd.DataFrame  # every usable run, every quarter, judged against the catalog
    runs_q: pd.DataFrame  # the quarter's runs
    summary: pd.DataFrame  # one row per scenario scheduled or run this quarter
    compliance: Compliance
    violations: pd.DataFrame
    trend: pd.DataFrame
    coverage: pd.DataFrame
    findings: pd.DataFrame  # every quarter's findings, with the run's quarter
    steps: pd.DataFrame
    manifest: pd.DataFrame
    skipped: list[Skipped]
    detail: list[str]  # run ids that get a full section
    timelines: pd.DataFrame  # samples of the detailed runs only
    traffic: pd.DataFrame  # load per second of the detailed runs only
    problems: dict[str, list[str]]  # run id → notes about unreadable artifacts
    reconciliation: pd.DataFrame = field(default_factory=pd.DataFrame)  # PGW drills' lists
    cleanup: pd.DataFrame = field(default_factory=pd.DataFrame)  # result.json ``cleanup``
    detection: dict[str, dict] = field(default_factory=dict)  # run id → result.json ``detection``

    @property
    def no_runs(self) -> bool:
        return self.runs_q.empty

    @property
    def as_of(self) -> pd.Timestamp | None:
        """The newest run's end: the report's date, so a rebuild gives the same bytes."""
        return None if self.runs_q.empty else self.runs_q["ended_at"].max()


__all__ = ["ReportData"]

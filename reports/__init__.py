"""The quarterly DR drill report, rebuilt from run folders only.

Pipeline: run folders, read as untrusted input (``folder``: no link followed, no odd
name) → tidy frames (``load``, ``artifacts``) → pure metric functions (``metrics``) →
document blocks with charts (``sections``, ``drills``, ``charts``) → Markdown, HTML and CSV
(``render_*``), written last. Only this package imports pandas and matplotlib.

Example::

    outcome = build_report("2026-Q4", runs_dir=Path("runs"), out_dir=Path("docs/dr-test-results"))
    sys.exit(outcome.exit_code)  # 0 compliant; 1 a target missed, a drill not run or
    # inconclusive, or no runs
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from mpac_drill.config import Catalog, load_catalog, parse_quarter
from mpac_drill.errors import ExitCode, UsageError
from reports import columns as C
from reports import detection, drills, gameday, metrics, phases, readiness, sections
from reports.artifacts import load_reconciliation, load_timelines, load_traffic
from reports.data import ReportData
from reports.document import Doc
from reports.load import Skipped, load_runs
from reports.render_csv import render_csv
from reports.render_html import render_html
from reports.render_md import render_markdown

log = logging.getLogger("mpac_drill")


@dataclass(frozen=True)
class ReportOutcome:
    """What ``build_report`` wrote and what it found."""

    quarter: str
    paths: list[Path]  # every file written: Markdown, HTML, CSV, manifest, then the charts
    n_runs: int  # usable runs of the quarter
    skipped: list[Skipped]  # folders that could not be used, with the reason
    compliant: bool  # every scenario scheduled or run this quarter met both targets
    missed: list[str]  # scenarios that missed a target or have no completed run
    not_run: list[str]  # scheduled scenarios with no run at all
    inconclusive: list[str]  # scenarios not shown to meet a target, none missed (schema 2)
    no_runs: bool  # the quarter has no usable run
    violations: int  # entries in the report's violations section

    @property
    def markdown(self) -> Path:
        return self.paths[0]

    @property
    def exit_code(self) -> ExitCode:
        """0 when compliant; 1 when a target was missed, a drill is missing or inconclusive,
        or there are no runs."""
        return ExitCode.OK if self.compliant and not self.no_runs else ExitCode.TARGET_MISSED


def _normalise(quarter: str) -> str:
    year, q = parse_quarter(quarter)
    return f"{year}-Q{q}"


def collect(quarter: str, runs_dir: Path, catalog: Catalog) -> ReportData:
    """Load the run folders and compute every figure of the report (no rendering)."""
    runset = load_runs(runs_dir, catalog.scenarios)
    judged = metrics.judge_runs(runset.runs, catalog)
    runs_q = metrics.in_quarter(judged, quarter)
    summary = metrics.scenario_summary(runs_q, catalog, quarter)
    detail = metrics.detail_runs(runs_q)
    shown = runs_q.loc[runs_q[C.RUN_ID].isin(detail)]
    timelines, tl_problems = load_timelines(runs_dir, shown)
    traffic, load_problems = load_traffic(runs_dir, shown)
    problems: dict[str, list[str]] = {}
    for source in (tl_problems, load_problems):
        for run_id, note in source.items():
            problems.setdefault(run_id, []).append(note)
    return ReportData(
        quarter=quarter,
        catalog=catalog,
        runs_dir_name=runs_dir.resolve().name,
        judged=judged,
        runs_q=runs_q,
        summary=summary,
        compliance=metrics.compliance(summary, runs_q),
        violations=metrics.violations(runs_q, summary, quarter),
        trend=metrics.trend(judged),
        coverage=metrics.coverage(judged, catalog, quarter),
        findings=runset.findings,
        steps=runset.steps,
        manifest=runset.manifest,
        skipped=runset.skipped,
        detail=detail,
        timelines=timelines,
        traffic=traffic,
        problems=problems,
        reconciliation=load_reconciliation(runs_dir, runs_q),
        cleanup=runset.cleanup,
        detection=detection.load_detection(runs_dir, runs_q),
    )


def compose(data: ReportData, manifest_file: str, manifest_sha: str) -> Doc:
    """The report's sections in order, as one document."""
    doc = Doc(title=f"DR drill report {data.quarter}")
    sections.header(doc, data, manifest_file)
    sections.controls(doc)
    sections.summary(doc, data)
    sections.violations(doc, data)
    drills.drills(doc, data)
    drills.trend(doc, data)
    detection.add_section(doc, data)  # alarm, page and ack against §3.1 (issue 12)
    sections.findings(doc, data)
    sections.coverage(doc, data)
    sections.skipped(doc, data)
    sections.appendix(doc, data, manifest_file, manifest_sha)
    return doc


def _write(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def _stale_charts(out_dir: Path, quarter: str, keep: set[str]) -> None:
    """Remove this quarter's charts of an earlier build that this build did not write."""
    pattern = re.compile(
        rf"^{re.escape(quarter)}-(?:(?:timeline|steps)-.+|trend|phases|rto-spread)\.png$"
    )
    for path in out_dir.glob(f"{quarter}-*.png"):
        if pattern.match(path.name) and path.name not in keep:
            path.unlink()


def build_report(
    quarter: str, *, runs_dir: Path, out_dir: Path, catalog: Catalog | None = None
) -> ReportOutcome:
    """Build ``<quarter>.md``, ``.html``, ``.csv`` and ``.sha256`` plus PNG charts in
    ``out_dir`` from the run folders in ``runs_dir``.

    :param quarter: ``YYYY-QN``; anything else raises ``UsageError``.
    :param runs_dir: the folder holding one folder per run; must exist.
    :param out_dir: where the report goes (created if needed).
    :param catalog: scenario targets and schedule; ``experiments/catalog.yaml`` by default.
    """
    quarter = _normalise(quarter)
    runs_dir, out_dir = Path(runs_dir), Path(out_dir)
    if not runs_dir.is_dir():
        raise UsageError(f"runs folder {runs_dir} does not exist or is not a folder")
    catalog = catalog or load_catalog()
    data = collect(quarter, runs_dir, catalog)
    manifest = sections.manifest_text(data).encode("utf-8")
    manifest_file = f"{quarter}.sha256"
    doc = compose(data, manifest_file, hashlib.sha256(manifest).hexdigest())
    phases.add_section(doc, data, runs_dir)  # where recovery time went (result.json phases)
    readiness.add_section(doc, quarter, runs_dir)  # `mpac-drill check` runs (runs/checks/)
    gameday.add_section(doc, data, runs_dir)  # people vs machine time per step (issue 15)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = doc.images()
    paths = [
        _write(out_dir / f"{quarter}.md", render_markdown(doc).encode("utf-8")),
        _write(out_dir / f"{quarter}.html", render_html(doc).encode("utf-8")),
        _write(out_dir / f"{quarter}.csv", render_csv(data.runs_q).encode("utf-8")),
        _write(out_dir / manifest_file, manifest),
        *(_write(out_dir / image.file, image.png) for image in images),
    ]
    _stale_charts(out_dir, quarter, {image.file for image in images})
    comp = data.compliance
    log.info(
        "report %s: %d runs, %d skipped, %s",
        quarter,
        len(data.runs_q),
        len(data.skipped),
        sections.compliance_word(comp),
    )
    return ReportOutcome(
        quarter=quarter,
        paths=paths,
        n_runs=len(data.runs_q),
        skipped=list(data.skipped),
        compliant=comp.compliant and not data.no_runs,
        missed=comp.missed,
        not_run=comp.not_run,
        inconclusive=comp.inconclusive,
        no_runs=data.no_runs,
        violations=len(data.violations),
    )


__all__ = ["build_report", "ReportOutcome", "Skipped", "collect", "compose"]

"""``mpac-drill report YYYY-QN``: the quarterly drill report, rebuilt from run folders."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from mpac_drill.cli import console, err_console, out_option, runs_dir_option, target_options
from mpac_drill.config import load_catalog, load_target, parse_quarter
from mpac_drill.errors import ExitCode


def current_quarter() -> str:
    now = datetime.now(UTC)
    return f"{now.year}-Q{(now.month - 1) // 3 + 1}"


def write_report(quarter: str, runs_dir: Path, out_dir: Path) -> ExitCode:
    """Build the report and print where it went; the exit code judges compliance."""
    from reports import build_report

    outcome = build_report(quarter, runs_dir=runs_dir, out_dir=out_dir, catalog=load_catalog())
    for s in outcome.skipped:
        err_console.print(f"skipped {s}", markup=False)
    if outcome.no_runs:
        err_console.print(f"{quarter}: no drill runs found in {runs_dir}; the report says so")
    for p in outcome.paths[:4]:
        console.print(f"wrote {p}", markup=False)
    if len(outcome.paths) > 4:
        console.print(f"wrote {len(outcome.paths) - 4} chart(s) beside them")
    verdict = (
        "[green]compliant[/green]"
        if outcome.compliant and not outcome.no_runs
        else "[red]not compliant[/red]"
    )
    console.print(
        f"{quarter}: {outcome.n_runs} run(s), {verdict}"
        + (f"; missed: {', '.join(outcome.missed)}" if outcome.missed else "")
        + (
            f"; inconclusive: {', '.join(outcome.inconclusive)}"
            if getattr(outcome, "inconclusive", None)
            else ""
        )
        + (f"; not run: {', '.join(outcome.not_run)}" if outcome.not_run else "")
    )
    if outcome.no_runs or not outcome.compliant:
        return ExitCode.TARGET_MISSED
    return ExitCode.OK


@click.command("report")
@click.argument("quarter", required=False)
@target_options
@runs_dir_option
@out_option
def command(
    quarter: str | None, target: str, sets: tuple[str, ...], runs_dir: str, out_dir: str
) -> int:
    """Build QUARTER's drill report (YYYY-QN, default: this quarter) from run folders.

    Writes YYYY-QN.md, .html (self-contained, charts embedded), .csv (one row per run),
    a SHA-256 manifest of the artifacts used, and PNG charts. Exit 0 when every scenario
    met its targets, 1 when one missed or the quarter has no runs, 2 for a bad quarter.

    \b
    Examples:
      mpac-drill report 2026-Q4
      mpac-drill report 2027-Q1 --runs-dir /data/drills --out docs/dr-test-results
    """
    quarter = quarter or current_quarter()
    parse_quarter(quarter)
    load_target(target, sets)  # validated like every command; the report covers every target
    return write_report(quarter, Path(runs_dir), Path(out_dir))

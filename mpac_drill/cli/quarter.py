"""``mpac-drill quarter YYYY-QN``: run the quarter's scheduled drills, then its report."""

from __future__ import annotations

from pathlib import Path

import click

from mpac_drill.cli import (
    console,
    drill_options,
    err_console,
    out_option,
    repeat_option,
    runs_dir_option,
    target_options,
)
from mpac_drill.cli.report import write_report
from mpac_drill.cli.run import DrillOptions, run_series, spread_table, summary_table
from mpac_drill.config import load_catalog, load_target, parse_quarter
from mpac_drill.errors import ExitCode


@click.command("quarter")
@click.argument("quarter")
@target_options
@runs_dir_option
@out_option
@drill_options
@repeat_option
def command(
    quarter: str,
    target: str,
    sets: tuple[str, ...],
    runs_dir: str,
    out_dir: str,
    users: int | None,
    load_workers: int | None,
    dry_run: bool,
    allow_production: bool,
    ticket: str | None,
    repeat: int,
) -> int:
    """Run the drills runbook §5 schedules for QUARTER (YYYY-QN), then write its report.

    Q1 region failover, Q2 point-in-time restore, Q3 PGW failover, Q4 every scenario (the
    schedule lives in experiments/catalog.yaml). A scheduled scenario that cannot run yet is
    reported as "not run" with the reason, never dropped. Each run's result.json records
    QUARTER as the quarter it was run for, so a drill run ahead of (or after) its quarter
    counts there; the report names every run dated outside its quarter.

    \b
    Examples:
      mpac-drill quarter 2026-Q4
      mpac-drill quarter 2026-Q4 --repeat 3     # each drill three times: the report shows spreads
      mpac-drill quarter 2027-Q1 --target staging
    """
    year, q = parse_quarter(quarter)
    catalog = load_catalog()
    t = load_target(target, sets)
    scheduled = catalog.for_quarter(quarter)
    series = run_series(
        quarter,
        scheduled,
        t,
        catalog,
        DrillOptions(
            Path(runs_dir),
            users,
            load_workers,
            dry_run,
            allow_production,
            ticket,
            quarter=f"{year}-Q{q}",
            repeat=repeat,
        ),
        skip_unready=True,
    )
    if series.interrupted:
        return series.interrupted
    outcomes = series.outcomes
    if outcomes:
        console.print(summary_table(outcomes, title=f"{quarter} drills on {t.name}"))
        if repeat > 1:
            console.print(spread_table(outcomes))
    if dry_run:
        err_console.print("dry run: no report written")
        return ExitCode.OK
    code = write_report(quarter, Path(runs_dir), Path(out_dir))
    if any(o.exit_code == ExitCode.HARNESS for o in outcomes):
        return ExitCode.HARNESS
    return code

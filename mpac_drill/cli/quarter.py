"""``mpac-drill quarter YYYY-QN``: run the quarter's scheduled drills, then its report."""

from __future__ import annotations

from pathlib import Path

import click

from mpac_drill.cli import (
    console,
    drill_options,
    err_console,
    out_option,
    runs_dir_option,
    target_options,
)
from mpac_drill.cli.live import DrillDisplay
from mpac_drill.cli.report import write_report
from mpac_drill.cli.run import print_outcome, summary_table
from mpac_drill.config import load_catalog, load_target, parse_quarter
from mpac_drill.drill.runner import RunOutcome, run_drill
from mpac_drill.errors import ExitCode


@click.command("quarter")
@click.argument("quarter")
@target_options
@runs_dir_option
@out_option
@drill_options
def command(quarter: str, target: str, sets: tuple[str, ...], runs_dir: str, out_dir: str,
            users: int | None, load_workers: int | None, dry_run: bool,
            allow_production: bool, ticket: str | None) -> int:
    """Run the drills runbook §5 schedules for QUARTER (YYYY-QN), then write its report.

    Q1 region failover, Q2 point-in-time restore, Q3 PGW failover, Q4 every scenario (the
    schedule lives in experiments/catalog.yaml). A scheduled scenario that cannot run yet is
    reported as "not run" with the reason, never dropped.

    \b
    Examples:
      mpac-drill quarter 2026-Q4
      mpac-drill quarter 2027-Q1 --target staging
    """
    parse_quarter(quarter)
    catalog = load_catalog()
    t = load_target(target, sets)
    scheduled = catalog.for_quarter(quarter)
    outcomes: list[RunOutcome] = []
    not_run: dict[str, str] = {}
    for i, sc in enumerate(scheduled, 1):
        if not sc.experiment:
            not_run[sc.id] = "no drill for this scenario yet (runbook §" \
                             f"{sc.runbook_section}; see `mpac-drill scenarios`)"
            err_console.print(f"[yellow]{quarter} {i}/{len(scheduled)}: {sc.id} not run: "
                              f"{not_run[sc.id]}[/yellow]")
            continue
        err_console.print(f"[bold]{quarter} {i}/{len(scheduled)}: {sc.id}[/bold] "
                          f"(runbook §{sc.runbook_section}) on {t.name}")
        with DrillDisplay(sc.id) as display:
            outcome = run_drill(sc.id, t, runs_dir=Path(runs_dir), users=users,
                                load_workers=load_workers, dry_run=dry_run,
                                allow_production=allow_production, ticket=ticket,
                                listeners=[display], catalog=catalog,
                                progress=lambda m: err_console.print(f"[dim]sandbox:[/dim] {m}"))
        outcomes.append(outcome)
        print_outcome(outcome)
        if outcome.exit_code in (ExitCode.INTERRUPTED, ExitCode.TERMINATED):
            return outcome.exit_code
    if outcomes:
        console.print(summary_table(outcomes, title=f"{quarter} drills on {t.name}"))
    if dry_run:
        err_console.print("dry run: no report written")
        return ExitCode.OK
    code = write_report(quarter, Path(runs_dir), Path(out_dir))
    if any(o.exit_code == ExitCode.HARNESS for o in outcomes):
        return ExitCode.HARNESS
    return code

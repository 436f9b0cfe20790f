"""``mpac-drill gate``: the pre-release resilience gate (the fast drills, judged)."""

from __future__ import annotations

from pathlib import Path

import click

from mpac_drill.cli import console, drill_options, err_console, runs_dir_option, target_options
from mpac_drill.cli.run import DrillOptions, run_series, summary_table
from mpac_drill.config import load_catalog, load_target
from mpac_drill.drill.runner import RunOutcome
from mpac_drill.errors import ExitCode, UsageError


def gate_exit_code(outcomes: list[RunOutcome]) -> ExitCode:
    """3 if any drill could not run, else 1 if any target was missed or a drill aborted."""
    codes = [o.exit_code for o in outcomes]
    if ExitCode.HARNESS in codes:
        return ExitCode.HARNESS
    if any(c != ExitCode.OK for c in codes):
        return ExitCode.TARGET_MISSED
    return ExitCode.OK


@click.command("gate")
@target_options
@runs_dir_option
@drill_options
@click.option(
    "--scenarios",
    "scenario_list",
    default=None,
    metavar="A,B",
    help="Comma-separated scenario ids (default: the catalog's gate set).",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write JUnit XML here: one test case per scenario and measured target.",
)
def command(
    target: str,
    sets: tuple[str, ...],
    runs_dir: str,
    users: int | None,
    load_workers: int | None,
    dry_run: bool,
    allow_production: bool,
    ticket: str | None,
    scenario_list: str | None,
    junit_path: str | None,
) -> int:
    """Run the gate drills and exit 0 only when every measured target is met.

    The gate set is the catalog's `gate: true` scenarios (ECS task failure, RDS failover,
    Redis failover). Exit 0 all met, 1 a target missed, 2 usage error, 3 a drill could not
    run. On the sandbox this is also the main job of `make demo`.

    \b
    Examples:
      mpac-drill gate
      mpac-drill gate --target staging --junit gate-junit.xml
      mpac-drill gate --scenarios rds-failover,redis-failover --users 20
    """
    catalog = load_catalog()
    if scenario_list is not None:
        ids = [s.strip() for s in scenario_list.split(",") if s.strip()]
        if not ids:
            raise UsageError("--scenarios is empty: give scenario ids separated by commas")
        scenarios = [catalog.get(s) for s in ids]
    else:
        scenarios = catalog.gate_set()
    not_ready = [s.id for s in scenarios if not s.experiment]
    if not_ready:
        raise UsageError(f"no drill yet for {', '.join(not_ready)}: see `mpac-drill scenarios`")
    t = load_target(target, sets)
    series = run_series(
        "gate",
        scenarios,
        t,
        catalog,
        DrillOptions(Path(runs_dir), users, load_workers, dry_run, allow_production, ticket),
    )
    outcomes = series.outcomes
    if junit_path:
        from mpac_drill.junit import write_junit

        write_junit([o.result for o in outcomes], Path(junit_path))
        err_console.print(f"JUnit XML written to {junit_path}")
    console.print(summary_table(outcomes, title=f"resilience gate on {t.name}"))
    return series.interrupted or gate_exit_code(outcomes)

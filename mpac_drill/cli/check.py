"""``mpac-drill check``: DR readiness between drills (read-only; no fault, no load)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from mpac_drill.cli import console, err_console, runs_dir_option, target_options
from mpac_drill.config import load_target
from mpac_drill.readiness.runner import CheckRun, run_checks, scenario_ids

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "not checked": "dim"}


def readiness_table(run: CheckRun) -> Table:
    """One row per check, the figure beside its threshold and where it was read."""
    t = run.target
    where = (
        "the local sandbox: a rehearsal on a model, not AWS"
        if t.kind == "sandbox"
        else f"AWS {t.environment} ({t.get('aws.region')}, DR {t.get('aws.dr_region')})"
    )
    table = Table(
        title=f"DR readiness of target {t.name}: figures from {where}",
        title_justify="left",
    )
    for col in ("scenario", "§", "what", "component", "status", "measured", "threshold"):
        table.add_column(col, overflow="fold")
    table.add_column("evidence", overflow="fold", max_width=48)
    table.add_column("fix", overflow="fold", max_width=48)
    for r in run.rows:
        style = _STYLE[r["status"]]
        table.add_row(
            escape(r["scenario"]),
            escape(r["section"]),
            escape(r["what"]),
            escape(r["component"]),
            f"[{style}]{r['status']}[/{style}]",
            escape(r["measured"] or "-"),
            escape(r["threshold"] or "-"),
            escape(r["evidence"]),
            escape(r["fix"] or ""),
        )
    return table


@click.command("check")
@target_options
@runs_dir_option
@click.option(
    "--scenarios",
    "scenario_list",
    default=None,
    metavar="A,B",
    help="Comma-separated scenario ids whose checks to run (default: every scenario).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON (as stored).")
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write JUnit XML here: one test case per check.",
)
@click.option(
    "--dry-run", is_flag=True, help="List every read call the checks would make; make none."
)
def command(
    target: str,
    sets: tuple[str, ...],
    runs_dir: str,
    scenario_list: str | None,
    as_json: bool,
    junit_path: str | None,
    dry_run: bool,
) -> int:
    """Check, without injecting anything, whether each drill's recovery would work now.

    Read-only calls only: desired and running tasks (§1.1), Multi-AZ and the runbook's
    failover call (§1.2), the cache's failover and replicas (§1.3), backups and PITR lag
    (§2.1), the age of the data the DR region holds, i.e. the RPO a region loss would cost
    now (§1.4/§1.5), SSM, Route53, alarms, the obs buckets (§1.6) and permissions. On the
    sandbox: the standby and its replay lag, Sentinels and the replica link, tasks, base
    backups and the WAL archive. Thresholds come from experiments/catalog.yaml (readiness).
    Each run is stored as <runs-dir>/checks/<UTC>.json for the quarterly report.
    Exit 0 all pass (warnings allowed), 1 a check failed, 2 usage error, 3 could not check.

    \b
    Examples:
      mpac-drill check
      mpac-drill check --target staging --junit check-junit.xml
      mpac-drill check --target staging --scenarios region-failover --dry-run
    """
    ids = scenario_ids(scenario_list)
    t = load_target(target, sets)
    run = run_checks(t, ids, dry_run=dry_run)
    if run.dry_run is not None:
        for line in run.dry_run.render():
            console.print(line, markup=False)
        console.print(f"{run.calls} read call(s) planned on target {t.name}; none made")
        return 0
    document = run.document()
    path = Path(runs_dir)
    from mpac_drill.readiness.history import write_check

    stored = write_check(document, path)
    if junit_path:
        from mpac_drill.readiness.junit import write_check_junit

        write_check_junit(document, Path(junit_path))
        err_console.print(f"JUnit XML written to {junit_path}", markup=False)
    if as_json:
        click.echo(json.dumps(document, indent=2, sort_keys=True))
    else:
        console.print(readiness_table(run))
        counts = ", ".join(f"{n} {status}" for status, n in run.summary().items())
        calls = f"{run.calls} {'AWS' if t.kind == 'aws' else 'sandbox'} read call(s)"
        console.print(
            f"{len(run.rows)} checks: {counts}; {calls} in {run.duration_s:.2f} s; "
            f"stored in {stored}",
            markup=False,
        )
    return int(run.exit_code)

"""``mpac-drill run SCENARIO``: one drill, one run folder, one verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click
from rich.table import Table

from mpac_drill.cli import console, drill_options, err_console, runs_dir_option, target_options
from mpac_drill.cli.live import DrillDisplay
from mpac_drill.config import Catalog, Scenario, Target, load_catalog, load_target
from mpac_drill.drill.runner import RunOutcome, check_target_for, run_drill
from mpac_drill.errors import ExitCode, UsageError


def _fmt(v: object, unit: str = " s") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}{unit}"
    return f"{v}{unit}"


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def summary_table(outcomes: list[RunOutcome], title: str = "drill summary") -> Table:
    t = Table(title=title, title_justify="left")
    for col in (
        "scenario",
        "status",
        "detect",
        "RTO",
        "RPO",
        "lost writes",
        "requests",
        "failures",
        "verdict",
    ):
        t.add_column(col, no_wrap=True, min_width=len(col))
    t.add_column("run folder", overflow="fold")  # the one column that may wrap
    for o in outcomes:
        r, m = o.result, o.result["measurements"]
        missed = [v["metric"] for v in r["verdicts"] if not v["passed"]]
        if r.get("dry_run"):
            verdict = "[cyan]dry run[/cyan]"
        elif r["status"] != "completed":
            verdict = f"[red]{r['status']}[/red]"
        elif r["passed"]:
            verdict = "[green]PASS[/green]"
        else:
            verdict = "[red]MISS[/red] " + ",".join(missed)
        t.add_row(
            r["scenario"],
            r["status"],
            _fmt(m["detect_s"]),
            _fmt(m["rto_s"]),
            _fmt(m["rpo_s"]),
            _fmt(m["lost_writes"], ""),
            _fmt(m["load"]["requests"], ""),
            _fmt(m["load"]["failures"], ""),
            verdict,
            _short(o.run_dir),
        )
    return t


@dataclass(frozen=True)
class DrillOptions:
    """The drill flags every drill-running command shares."""

    runs_dir: Path
    users: int | None = None
    load_workers: int | None = None
    dry_run: bool = False
    allow_production: bool = False
    ticket: str | None = None
    quarter: str | None = None  # the quarter the drills run for (`quarter` only)


@dataclass
class Series:
    outcomes: list[RunOutcome] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)
    interrupted: ExitCode | None = None


def run_series(
    label: str,
    scenarios: list[Scenario],
    target: Target,
    catalog: Catalog,
    opts: DrillOptions,
    *,
    skip_unready: bool = False,
) -> Series:
    """Run drills one after another with the live display; stop at an interruption.
    A scenario without a drill is recorded as not run, with the reason; so is one whose
    target leaves a name it needs unset when ``skip_unready`` (else: a usage error before
    any drill runs)."""
    series = Series()
    unready: dict[str, str] = {}
    for sc in scenarios:  # before any drill: a target lacking a name refuses them all ...
        try:
            check_target_for(sc.id, target, dry_run=opts.dry_run, users=opts.users)
        except UsageError as exc:
            if not skip_unready:
                raise
            unready[sc.id] = f"{exc}"  # ... or, for a quarter, that drill is not run
    for i, sc in enumerate(scenarios, 1):
        head = f"{label} {i}/{len(scenarios)}: {sc.id}"
        if not sc.experiment or sc.id in unready:
            series.not_run[sc.id] = unready.get(sc.id) or (
                f"no drill for this scenario yet (runbook §{sc.runbook_section}; see "
                "`mpac-drill scenarios`)"
            )
            err_console.print(
                f"{head} not run: {series.not_run[sc.id]}", style="yellow", markup=False
            )
            continue
        if label:  # a series announces each drill; a single `run` goes straight to it
            err_console.print(
                f"[bold]{head}[/bold] (runbook §{sc.runbook_section}) on {target.name}"
            )
        with DrillDisplay(sc.id) as display:
            outcome = run_drill(
                sc.id,
                target,
                runs_dir=opts.runs_dir,
                users=opts.users,
                load_workers=opts.load_workers,
                dry_run=opts.dry_run,
                allow_production=opts.allow_production,
                ticket=opts.ticket,
                quarter=opts.quarter,
                listeners=[display],
                catalog=catalog,
                progress=lambda m: err_console.print(f"[dim]{target.name}:[/dim] {m}", markup=True),
            )
        series.outcomes.append(outcome)
        print_outcome(outcome)
        if outcome.exit_code in (ExitCode.INTERRUPTED, ExitCode.TERMINATED, ExitCode.HANGUP):
            series.interrupted = outcome.exit_code
            break
    return series


def print_outcome(o: RunOutcome) -> None:
    r = o.result
    if r.get("dry_run"):
        calls = r.get("planned_calls") or []
        kind = "sandbox" if r.get("environment") == "sandbox" else "AWS"
        console.print(
            f"dry run of {r['scenario']} on {r['target']}: {len(calls)} {kind} call(s) "
            "planned, none made"
        )
        for c in calls:
            params = " ".join(f"{k}={v}" for k, v in sorted(c["params"].items()))
            console.print(
                f"  {c['service']} {c['operation']} ({c['region']}) {params}", markup=False
            )
        for step in r.get("planned_steps") or []:
            detail = " ".join(
                f"{k}={v}" for k, v in step.items() if k not in ("action", "on") and v is not None
            )
            console.print(
                f"  {step.get('on', 'sandbox')}: {step['action']} {detail}".rstrip(), markup=False
            )
    for v in r["verdicts"]:
        mark = "[green]met[/green]" if v["passed"] else "[red]missed[/red]"
        console.print(
            f"  {v['metric']:<26} {_fmt(v['value'], ''):>10} target "
            f"{_fmt(v['target'], ''):>8}  {mark}"
        )
    if r.get("reason"):
        err_console.print(f"  reason: {r['reason']}", markup=False)


@click.command("run")
@click.argument("scenario")
@target_options
@runs_dir_option
@drill_options
def command(
    scenario: str,
    target: str,
    sets: tuple[str, ...],
    runs_dir: str,
    users: int | None,
    load_workers: int | None,
    dry_run: bool,
    allow_production: bool,
    ticket: str | None,
) -> int:
    """Run one drill: inject SCENARIO's fault, measure detect/RTO/RPO under load.

    Writes runs/<UTC>-<scenario>-<target>/ with result.json, the Chaos Toolkit journal,
    the observer timeline, the canary ledger and locust's history. Exit 0 when every
    target is met, 1 when one is missed, 3 when the drill could not run.

    \b
    Examples:
      mpac-drill run rds-failover
      mpac-drill run rds-failover --set rds.failover_delay_s=3 --users 20
      mpac-drill run ecs-task-failure --target staging --dry-run
    """
    catalog = load_catalog()
    sc = catalog.get(scenario)  # unknown scenario: usage error before anything starts
    if not sc.experiment:
        raise UsageError(
            f"scenario {scenario} (runbook §{sc.runbook_section}) has no drill "
            "yet: see `mpac-drill scenarios`"
        )
    t = load_target(target, sets)
    series = run_series(
        "",
        [sc],
        t,
        catalog,
        DrillOptions(Path(runs_dir), users, load_workers, dry_run, allow_production, ticket),
    )
    outcome = series.outcomes[0]
    console.print(summary_table([outcome]))
    return outcome.exit_code

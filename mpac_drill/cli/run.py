"""``mpac-drill run SCENARIO``: one drill, one run folder, one verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from mpac_drill.cli import (
    console,
    drill_options,
    err_console,
    repeat_option,
    runs_dir_option,
    target_options,
)
from mpac_drill.cli.live import DrillDisplay
from mpac_drill.config import Catalog, Scenario, Target, load_catalog, load_target
from mpac_drill.drill.runner import RunOutcome, check_target_for, run_drill
from mpac_drill.errors import ExitCode, UsageError
from mpac_drill.measure.detection_verdict import counts
from mpac_drill.measure.stats import Spread, spread


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
        missed = [v["metric"] for v in r["verdicts"] if not v["passed"] and counts(v)]
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
    repeat: int = 1  # runs of each scenario


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
        for rep in range(1, opts.repeat + 1):
            each = f"{head} run {rep}/{opts.repeat}" if opts.repeat > 1 else head
            if label or opts.repeat > 1:  # a single `run` goes straight to its drill
                err_console.print(
                    f"[bold]{each.strip()}[/bold] (runbook §{sc.runbook_section}) on {target.name}"
                )
            outcome = _run_one(sc, target, catalog, opts)
            series.outcomes.append(outcome)
            print_outcome(outcome)
            if outcome.exit_code in (ExitCode.INTERRUPTED, ExitCode.TERMINATED, ExitCode.HANGUP):
                series.interrupted = outcome.exit_code
                return series
    return series


def _run_one(sc: Scenario, target: Target, catalog: Catalog, opts: DrillOptions) -> RunOutcome:
    with DrillDisplay(sc.id) as display:
        return run_drill(
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


#: the figures whose spread over repeated runs is shown
SPREAD_FIGURES = ("rto_s", "rto_slo_s", "rpo_s")


def spreads(outcomes: list[RunOutcome]) -> dict[tuple[str, str], dict[str, Spread]]:
    """(scenario, target) → figure → its spread over the completed runs."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for o in outcomes:
        r = o.result
        if r.get("dry_run") or r["status"] != "completed":
            continue
        runs.setdefault((r["scenario"], r["target"]), []).append(r["measurements"])
    return {
        key: {f: spread(m.get(f) for m in ms) for f in SPREAD_FIGURES} for key, ms in runs.items()
    }


def spread_table(outcomes: list[RunOutcome], title: str = "spread over repeated runs") -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("scenario", "figure", "runs", "median", "p95", "min", "max", "95 % CI (median)"):
        t.add_column(col, no_wrap=True)
    for (scenario, target), figures in spreads(outcomes).items():
        for figure, s in figures.items():
            if s["n"] == 0:
                continue
            runs = f"{s['n']}" + (f" (+{s['missing']} none)" if s["missing"] else "")
            t.add_row(
                f"{scenario} ({target})",
                figure,
                runs,
                _fmt(s["median"]),
                _fmt(s["p95"]),
                _fmt(s["min"]),
                _fmt(s["max"]),
                f"{_fmt(s['ci_low'])} - {_fmt(s['ci_high'])}",
            )
    return t


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
        if not counts(v):  # listed, not counted toward the run's verdict
            mark = f"informational ({'met' if v['passed'] else 'missed'})"
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
@repeat_option
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
    repeat: int,
) -> int:
    """Run one drill: inject SCENARIO's fault, measure detect/RTO/RPO under load.

    Writes runs/<UTC>-<scenario>-<target>/ with result.json, the Chaos Toolkit journal,
    the observer timeline, the canary ledger and locust's history. Exit 0 when every
    target is met, 1 when one is missed, 3 when the drill could not run.

    \b
    Examples:
      mpac-drill run rds-failover
      mpac-drill run rds-failover --set rds.failover_delay_s=3 --users 20
      mpac-drill run rds-failover --repeat 5      # five runs, then their spread
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
        DrillOptions(
            Path(runs_dir), users, load_workers, dry_run, allow_production, ticket, repeat=repeat
        ),
    )
    console.print(summary_table(series.outcomes))
    if repeat > 1:
        console.print(spread_table(series.outcomes))
    if series.interrupted:
        return series.interrupted
    codes = [o.exit_code for o in series.outcomes]
    return max(codes, key=lambda c: (c == ExitCode.HARNESS, c != ExitCode.OK))

"""``mpac-drill gate``: the pre-release resilience gate (the fast drills, judged).

With ``--repeat N`` each scenario runs N times and the gate judges one statistic of its
figures against the catalog's targets (``--judge median|p95|worst``; default worst below 5
runs, p95 from 5). With ``--baseline QUARTER|RUNS_DIR`` it also fails a scenario whose
median RTO got slower than the baseline's runs of the same scenario and target by more than
the catalog's ``gate.max_regression`` (relative and absolute), even when the runbook's
target is still met.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from mpac_drill.cli import (
    console,
    drill_options,
    err_console,
    repeat_option,
    runs_dir_option,
    target_options,
)
from mpac_drill.cli.run import DrillOptions, run_series, spread_table, summary_table
from mpac_drill.config import Catalog, load_catalog, load_target
from mpac_drill.drill.runner import RunOutcome
from mpac_drill.errors import ExitCode, UsageError
from mpac_drill.measure.stats import JUDGES, default_judge, judged, regression

_QUARTER = re.compile(r"^\d{4}-Q[1-4]$")
#: the figures judged against the catalog's targets over repeated runs
_JUDGED = ("rto_s", "rpo_s")


@dataclass(frozen=True)
class Judgement:
    """One judged gate case: a statistic against a target, or a regression check."""

    scenario: str
    target: str
    name: str
    passed: bool
    message: str
    skipped: bool = False


def gate_exit_code(outcomes: list[RunOutcome]) -> ExitCode:
    """3 if any drill could not run, else 1 if any target was missed or a drill aborted."""
    codes = [o.exit_code for o in outcomes]
    if ExitCode.HARNESS in codes:
        return ExitCode.HARNESS
    if any(c != ExitCode.OK for c in codes):
        return ExitCode.TARGET_MISSED
    return ExitCode.OK


def _run_ids(results: list[dict[str, Any]], limit: int = 4) -> str:
    ids = [str(r.get("run_id")) for r in results]
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def judge_runs(results: list[dict[str, Any]], catalog: Catalog, how: str) -> list[Judgement]:
    """Per scenario (and target) of ``results``: the statistic ``how`` of each judged
    figure against the catalog's target, over its completed runs."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        if not r.get("dry_run") and r["status"] == "completed":
            groups.setdefault((r["scenario"], r["target"]), []).append(r)
    out: list[Judgement] = []
    for (scenario, target), runs in groups.items():
        sc = catalog.get(scenario)
        for figure in _JUDGED:
            limit = sc.rto_s if figure == "rto_s" else sc.rpo_s
            if limit is None:
                continue
            value = judged([r["measurements"].get(figure) for r in runs], how)
            passed = value is not None and value <= limit
            shown = "not measured" if value is None else f"{value:.2f} s"
            out.append(
                Judgement(
                    scenario=scenario,
                    target=target,
                    name=f"{figure} {how} of {len(runs)} runs",
                    passed=passed,
                    message=f"{figure} {how} of {len(runs)} runs on {target} = {shown}, "
                    f"target {limit:g} s: {'met' if passed else 'MISSED'} "
                    f"(runs {_run_ids(runs)})",
                )
            )
    return out


def load_baseline(spec: str, runs_dir: Path) -> tuple[str, list[dict[str, Any]]]:
    """The baseline's runs: a quarter's (``YYYY-QN``, from ``runs_dir``) or every run of
    a folder. Returns a label naming the run set, and the completed results.

    :raises UsageError: neither a quarter nor a folder.
    """
    if _QUARTER.match(spec):
        folder, label = runs_dir, f"{spec} runs in {runs_dir}"
    elif Path(spec).is_dir():
        folder, label = Path(spec), f"runs in {spec}"
    else:
        raise UsageError(f"--baseline {spec!r}: neither a quarter (YYYY-QN) nor a folder of runs")
    results = []
    for path in sorted(folder.rglob("result.json")):
        try:
            r = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(r, dict) or r.get("dry_run") or r.get("status") != "completed":
            continue
        if _QUARTER.match(spec) and r.get("quarter") != spec:
            continue
        results.append(r)
    return label, results


def judge_regressions(
    candidate: list[dict[str, Any]],
    baseline: list[dict[str, Any]],
    baseline_label: str,
    candidate_label: str,
    max_regression: tuple[float, float],
) -> list[Judgement]:
    """Per scenario and target of the candidate: its median RTO against the baseline's."""
    relative, absolute = max_regression
    out: list[Judgement] = []
    keys = dict.fromkeys((r["scenario"], r["target"]) for r in candidate if not r.get("dry_run"))
    for scenario, target in keys:
        mine = [
            r
            for r in candidate
            if (r["scenario"], r["target"]) == (scenario, target)
            and r["status"] == "completed"
            and r["measurements"].get("rto_s") is not None
        ]
        theirs = [
            r
            for r in baseline
            if (r["scenario"], r["target"]) == (scenario, target)
            and r["measurements"].get("rto_s") is not None
        ]
        name = "rto_s regression"
        if not mine or not theirs:
            why = "no baseline run" if not theirs else "no completed run"
            out.append(
                Judgement(
                    scenario=scenario,
                    target=target,
                    name=name,
                    passed=True,
                    skipped=True,
                    message=f"not compared: {why} of {scenario} on {target} ({baseline_label})",
                )
            )
            continue
        reg = regression(
            [r["measurements"]["rto_s"] for r in theirs],
            [r["measurements"]["rto_s"] for r in mine],
            relative=relative,
            absolute_s=absolute,
        )
        verdict = "REGRESSED" if reg["regressed"] else "no regression"
        out.append(
            Judgement(
                scenario=scenario,
                target=target,
                name=name,
                passed=not reg["regressed"],
                message=f"rto_s median {reg['candidate_median']:.2f} s over {len(mine)} "
                f"run(s) ({candidate_label}: {_run_ids(mine)}) vs baseline median "
                f"{reg['baseline_median']:.2f} s over {len(theirs)} run(s) ({baseline_label}: "
                f"{_run_ids(theirs)}): {reg['delta_s']:+.2f} s, {reg['relative']:+.0%}; "
                f"allowed +{absolute:g} s and +{relative:.0%}: {verdict}",
            )
        )
    return out


@click.command("gate")
@target_options
@runs_dir_option
@drill_options
@repeat_option
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
@click.option(
    "--judge",
    type=click.Choice(JUDGES),
    default=None,
    help="The statistic of repeated runs judged against the targets (default: worst for "
    "fewer than 5 runs, p95 from 5).",
)
@click.option(
    "--baseline",
    default=None,
    metavar="QUARTER|RUNS_DIR",
    help="Also fail a scenario whose median RTO regressed beyond the catalog's "
    "gate.max_regression against these runs (a quarter's in --runs-dir, or a folder).",
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
    repeat: int,
    scenario_list: str | None,
    junit_path: str | None,
    judge: str | None,
    baseline: str | None,
) -> int:
    """Run the gate drills and exit 0 only when every measured target is met.

    The gate set is the catalog's `gate: true` scenarios (ECS task failure, RDS failover,
    Redis failover). Exit 0 all met, 1 a target missed (or RTO regressed against
    --baseline), 2 usage error, 3 a drill could not run. On the sandbox this is also the
    main job of `make demo`.

    \b
    Examples:
      mpac-drill gate
      mpac-drill gate --target staging --junit gate-junit.xml
      mpac-drill gate --scenarios rds-failover,redis-failover --users 20
      mpac-drill gate --repeat 5 --judge median --baseline 2026-Q3
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
    base = load_baseline(baseline, Path(runs_dir)) if baseline else None
    how = judge or default_judge(repeat)
    series = run_series(
        "gate",
        scenarios,
        t,
        catalog,
        DrillOptions(
            Path(runs_dir), users, load_workers, dry_run, allow_production, ticket, repeat=repeat
        ),
    )
    outcomes = series.outcomes
    results = [o.result for o in outcomes]
    judgements: list[Judgement] = []
    if repeat > 1 or judge:
        judgements += judge_runs(results, catalog, how)
    if base is not None and not dry_run:
        label, runs = base
        judgements += judge_regressions(
            results, runs, label, f"this gate's runs in {runs_dir}", catalog.max_regression
        )
    if junit_path:
        from mpac_drill.junit import write_junit

        write_junit(
            results,
            Path(junit_path),
            judged=[j.__dict__ for j in judgements] if judgements else None,
            runs_informational=repeat > 1 or judge is not None,
        )
        err_console.print(f"JUnit XML written to {junit_path}")
    console.print(summary_table(outcomes, title=f"resilience gate on {t.name}"))
    if repeat > 1:
        console.print(spread_table(outcomes))
    for j in judgements:
        style = "yellow" if j.skipped else ("green" if j.passed else "red")
        console.print(f"{j.scenario}: {j.message}", style=style, markup=False)
    if series.interrupted:
        return series.interrupted
    return _exit_code(outcomes, judgements, repeat > 1 or judge is not None)


def _exit_code(outcomes: list[RunOutcome], judgements: list[Judgement], judged_runs: bool) -> int:
    """Without judging: as before (every run met). Judging repeated runs: a drill that
    could not run is 3; a completed run's miss counts only through the judged statistic."""
    codes = [o.exit_code for o in outcomes]
    if ExitCode.HARNESS in codes:
        return ExitCode.HARNESS
    failed = any(not j.passed for j in judgements)
    if judged_runs:
        aborted = any(o.result["status"] != "completed" for o in outcomes)
        return ExitCode.TARGET_MISSED if failed or aborted else ExitCode.OK
    return ExitCode.TARGET_MISSED if failed else gate_exit_code(outcomes)

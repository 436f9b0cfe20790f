"""Pure functions over the tidy frames: quarters, targets, verdicts, violations, trend.

Nothing here reads files or renders text. A *judged* run is a ``completed`` one: its RTO and
RPO are compared with the catalog's targets. ``aborted`` and ``failed`` runs are counted and
listed as deviations, but they measure nothing and are not judged. A figure the run itself
recorded as *inconclusive* (contract schema 2) is neither met nor missed, and is left out of
every RTO and RPO figure; it is listed, and it keeps a scenario from being shown compliant.
Where a scenario has no RTO target of its own, the runbook's global RTO bounds it; where it
has no RPO target, the global RPO applies only if the run measured an RPO at all (a
stateless scenario has none).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mpac_drill.config import Catalog, parse_quarter
from reports import columns as C

#: A quarter with at most this many runs gets a full section (chart included) per run;
#: above it, the latest and the worst run of each scenario do, the others a table row.
FULL_DETAIL_MAX_RUNS = 12


# ---------------------------------------------------------------- quarters


def quarter_of(times: pd.Series) -> pd.Series:
    """UTC timestamps → ``YYYY-QN`` labels."""
    return times.dt.year.astype(str) + "-Q" + times.dt.quarter.astype(str)


def quarter_bounds(quarter: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day of the quarter (UTC)."""
    year, q = parse_quarter(quarter)
    start = pd.Timestamp(year=year, month=3 * q - 2, day=1, tz="UTC")
    return start, start + pd.offsets.QuarterEnd(startingMonth=3)


def quarters_back(quarter: str, n: int) -> list[str]:
    """The quarter and the ``n - 1`` before it, oldest first."""
    year, q = parse_quarter(quarter)
    index = year * 4 + q - 1
    return [f"{i // 4}-Q{i % 4 + 1}" for i in range(index - n + 1, index + 1)]


# ---------------------------------------------------------------- targets and verdicts


def targets(catalog: Catalog) -> pd.DataFrame:
    """One row per catalog scenario: effective RTO target and declared RPO target (s)."""
    rows = [
        {
            C.SCENARIO: s.id,
            C.SECTION: s.runbook_section,
            C.TITLE: s.title,
            C.RTO_TARGET: min(s.rto_s if s.rto_s is not None else np.inf, catalog.global_rto_s),
            C.RPO_TARGET: (min(s.rpo_s, catalog.global_rpo_s) if s.rpo_s is not None else np.nan),
        }
        for s in catalog.scenarios.values()
    ]
    return pd.DataFrame(rows).set_index(C.SCENARIO)


def judge_runs(runs: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Add quarter, targets, margins and per-run RTO/RPO verdicts to the runs frame.

    A run counts in the quarter it was run for (result.json ``quarter``, written by
    ``mpac-drill quarter``), else in the calendar quarter of its ``started_at``.

    Schema 2: a verdict the run recorded as *inconclusive* (the fault took effect, the figure
    could not be measured) gives no RTO or RPO verdict and no margin; ``OUTCOME`` is the run
    as the report counts it: ``not judged`` (not completed, or recorded so), ``missed`` (a
    target missed, whatever else is inconclusive), ``inconclusive``, else ``met``. Schema 1
    results record no outcome and are judged on their figures alone, as before."""
    goal = targets(catalog)
    judged = runs[C.STATUS].eq("completed") & runs[C.RECORDED_OUTCOME].ne(C.NOT_JUDGED)
    unsure_of = runs[C.INCONCLUSIVE_VERDICTS].map(lambda vs: {m for m, _ in vs})
    rto_unsure = judged & unsure_of.map(lambda m: "rto_s" in m).astype(bool)
    rpo_unsure = judged & unsure_of.map(lambda m: "rpo_s" in m).astype(bool)
    rto_target = runs[C.SCENARIO].map(goal[C.RTO_TARGET]).astype("float64")
    declared = runs[C.SCENARIO].map(goal[C.RPO_TARGET]).astype("float64")
    rpo_target = declared.where(declared.notna() | runs[C.RPO].isna(), catalog.global_rpo_s)
    rto_ok = (runs[C.RTO].notna() & runs[C.RTO].le(rto_target)).astype("boolean")
    rpo_ok = (runs[C.RPO].notna() & runs[C.RPO].le(rpo_target)).astype("boolean")
    rto_ok = rto_ok.where(judged & ~rto_unsure, pd.NA)
    rpo_ok = rpo_ok.where(judged & ~rpo_unsure & rpo_target.notna(), pd.NA)
    missed = rto_ok.eq(False).fillna(False) | rpo_ok.eq(False).fillna(False)
    unsure = judged & (
        runs[C.INCONCLUSIVE_VERDICTS].map(bool).astype(bool)
        | runs[C.RECORDED_OUTCOME].eq(C.INCONCLUSIVE)
    )
    outcome = np.select(
        [~judged, missed, unsure], [C.NOT_JUDGED, C.MISSED, C.INCONCLUSIVE], default=C.MET
    )
    return runs.assign(
        **{
            C.QUARTER: runs[C.RUN_FOR].where(runs[C.RUN_FOR].ne(""), quarter_of(runs[C.STARTED])),
            C.JUDGED: judged,
            C.RTO_TARGET: rto_target,
            C.RPO_TARGET: rpo_target,
            C.RTO_MARGIN: (rto_target - runs[C.RTO]).where(~rto_unsure),
            C.RPO_MARGIN: (rpo_target - runs[C.RPO]).where(~rpo_unsure),
            C.RTO_OK: rto_ok,
            C.RPO_OK: rpo_ok,
            C.RTO_INCONCLUSIVE: rto_unsure,
            C.RPO_INCONCLUSIVE: rpo_unsure,
            C.OUTCOME: pd.Series(outcome, index=runs.index, dtype=str),
            C.OUTCOME_REASON: [
                _outcome_reason(r) for r in runs.assign(_judged=judged).to_dict("records")
            ],
        }
    )


def metric_name(metric: str) -> str:
    """A verdict's metric as the report names it: ``rto_s`` → RTO, ``rpo_s`` → RPO."""
    return {"rto_s": "RTO", "rpo_s": "RPO"}.get(metric, metric)


def _outcome_reason(r: dict) -> str:
    """Why a run is not plainly met or missed: why it was not judged, or its inconclusive
    verdicts (named even when another target was missed); "" for any other run."""
    if not r["_judged"]:
        if r[C.STATUS] == "completed":  # schema 2 said "not judged" of a completed run
            return r[C.REASON] or "the run recorded itself not judged"
        return r[C.REASON] or f"{r[C.STATUS]}, no reason recorded"
    unsure = r[C.INCONCLUSIVE_VERDICTS]
    if unsure:
        return "; ".join(f"{metric_name(m)}: {why}" for m, why in unsure)
    if r[C.RECORDED_OUTCOME] == C.INCONCLUSIVE:
        return "the run recorded itself inconclusive (no verdict says which figure)"
    return ""


def in_quarter(judged: pd.DataFrame, quarter: str) -> pd.DataFrame:
    return judged.loc[judged[C.QUARTER].eq(quarter)].reset_index(drop=True)


def _targets(values: pd.Series) -> str:
    return ", ".join(sorted(set(values)))


def conclusive(judged: pd.DataFrame) -> pd.DataFrame:
    """Judged runs with their figures: a run that never recovered counts as an infinite
    RTO; an inconclusive RTO or RPO is no figure at all (NaN), neither met nor missed."""
    return judged.assign(
        **{
            C.RTO: judged[C.RTO].fillna(np.inf).where(~judged[C.RTO_INCONCLUSIVE]),
            C.RPO: judged[C.RPO].where(~judged[C.RPO_INCONCLUSIVE]),
        }
    )


def _judged_stats(runs: pd.DataFrame) -> pd.DataFrame:
    """Per scenario: counts over all runs, figures over judged runs (never recovered = inf,
    inconclusive = no figure)."""
    judged = conclusive(runs.loc[runs[C.JUDGED]]).assign(
        **{
            "_rto_miss": lambda d: d[C.RTO_OK].eq(False).fillna(False).astype("int64"),
            "_rpo_miss": lambda d: d[C.RPO_OK].eq(False).fillna(False).astype("int64"),
            "_unsure": lambda d: d[C.OUTCOME].eq(C.INCONCLUSIVE).astype("int64"),
        }
    )
    counts = runs.groupby(C.SCENARIO).agg(
        **{C.N_RUNS: (C.RUN_ID, "size"), C.TARGETS: (C.TARGET, _targets)}
    )
    figures = judged.groupby(C.SCENARIO).agg(
        **{
            C.N_COMPLETED: (C.RUN_ID, "size"),
            C.RTO_MEDIAN: (C.RTO, "median"),
            C.RTO_WORST: (C.RTO, "max"),
            C.RPO_WORST: (C.RPO, "max"),
            C.LOST_TOTAL: (C.LOST, lambda s: s.sum(min_count=1)),
            C.ACKED_TOTAL: (C.ACKED, lambda s: s.sum(min_count=1)),
            C.N_INCONCLUSIVE: ("_unsure", "sum"),
            "rto_misses": ("_rto_miss", "sum"),
            "rpo_misses": ("_rpo_miss", "sum"),
        }
    )
    return counts.join(figures, how="left")


def scenario_summary(runs_q: pd.DataFrame, catalog: Catalog, quarter: str) -> pd.DataFrame:
    """One row per scenario scheduled for the quarter or run in it, in catalog order."""
    scheduled = [s.id for s in catalog.for_quarter(quarter)]
    present = set(runs_q[C.SCENARIO])
    order = [s for s in catalog.scenarios if s in scheduled or s in present]
    goal = targets(catalog)
    measured_rpo = set(runs_q.loc[runs_q[C.RPO].notna(), C.SCENARIO])
    stats = _judged_stats(runs_q).reindex(order)
    frame = (
        goal.reindex(order)
        .join(stats)
        .assign(
            **{
                C.SCHEDULED: lambda d: d.index.isin(scheduled),
                C.N_RUNS: lambda d: d[C.N_RUNS].fillna(0).astype(int),
                C.N_COMPLETED: lambda d: d[C.N_COMPLETED].fillna(0).astype(int),
                C.N_INCONCLUSIVE: lambda d: d[C.N_INCONCLUSIVE].fillna(0).astype(int),
                C.TARGETS: lambda d: d[C.TARGETS].fillna(""),
                C.RPO_TARGET: lambda d: d[C.RPO_TARGET].where(
                    d[C.RPO_TARGET].notna() | ~d.index.isin(measured_rpo), catalog.global_rpo_s
                ),
            }
        )
    )
    verdict = np.select(
        [
            frame[C.N_RUNS].eq(0),
            frame[C.N_COMPLETED].eq(0),
            frame["rto_misses"].fillna(0).gt(0) | frame["rpo_misses"].fillna(0).gt(0),
            frame[C.N_INCONCLUSIVE].gt(0),
        ],
        [C.NOT_RUN, C.NOT_COMPLETED, C.MISSED, C.INCONCLUSIVE],
        default=C.MET,
    )
    within = (
        frame[C.N_COMPLETED].gt(0)
        & frame[C.RTO_WORST].le(catalog.global_rto_s)
        & (frame[C.RPO_WORST].isna() | frame[C.RPO_WORST].le(catalog.global_rpo_s))
    )
    reasons = pd.Series({s: _not_run_reason(catalog, s, quarter) for s in order}, dtype=str)
    return (
        frame.assign(
            **{
                C.VERDICT: verdict,
                C.GLOBAL_OK: within,
                C.NOT_RUN_REASON: reasons.where(frame[C.N_RUNS].eq(0), ""),
            }
        )
        .drop(columns=["rto_misses", "rpo_misses"])
        .rename_axis(C.SCENARIO)
        .reset_index()
    )


def _not_run_reason(catalog: Catalog, scenario: str, quarter: str) -> str:
    if catalog.get(scenario).experiment is None:
        return "no experiment exists for this scenario yet (catalog: experiment null)"
    return f"no run folder has a started_at in {quarter}"


@dataclass(frozen=True)
class Compliance:
    """The quarter's headline: scenarios that met both targets, of those due or run.

    An *inconclusive* scenario (a run whose fault took effect but whose figure could not be
    measured, and no target missed) is neither met nor missed: the quarter is then not shown
    compliant, which is not the same as a missed target.
    """

    scenarios: int
    met: int
    within_objectives: int
    not_run: list[str]
    missed: list[str]
    inconclusive: list[str] = field(default_factory=list)  # scenarios
    runs: dict[str, int] = field(default_factory=dict)  # run outcome → runs of the quarter

    @property
    def share(self) -> float:
        return self.met / self.scenarios if self.scenarios else 0.0

    @property
    def compliant(self) -> bool:
        return self.scenarios > 0 and self.met == self.scenarios


RUN_OUTCOMES = (C.MET, C.MISSED, C.INCONCLUSIVE, C.NOT_JUDGED)


def compliance(summary: pd.DataFrame, runs_q: pd.DataFrame | None = None) -> Compliance:
    verdict = summary[C.VERDICT]
    outcomes = runs_q[C.OUTCOME] if runs_q is not None else pd.Series(dtype=str)
    return Compliance(
        scenarios=len(summary),
        met=int(verdict.eq(C.MET).sum()),
        within_objectives=int(summary[C.GLOBAL_OK].sum()),
        not_run=summary.loc[verdict.eq(C.NOT_RUN), C.SCENARIO].tolist(),
        missed=summary.loc[verdict.isin([C.MISSED, C.NOT_COMPLETED]), C.SCENARIO].tolist(),
        inconclusive=summary.loc[verdict.eq(C.INCONCLUSIVE), C.SCENARIO].tolist(),
        runs={o: int(outcomes.eq(o).sum()) for o in RUN_OUTCOMES},
    )


# ---------------------------------------------------------------- selections and trend


def detail_runs(runs_q: pd.DataFrame) -> list[str]:
    """Run ids that get a full section: all, or the latest and worst per scenario."""
    if len(runs_q) <= FULL_DETAIL_MAX_RUNS:
        return runs_q[C.RUN_ID].tolist()
    measured = runs_q[C.JUDGED] & ~runs_q[C.RTO_INCONCLUSIVE]
    ranked = runs_q.assign(_worst=runs_q[C.RTO].fillna(np.inf).where(measured, -1.0))
    latest = ranked.groupby(C.SCENARIO).tail(1)
    worst = ranked.sort_values(["_worst", C.STARTED], kind="stable").groupby(C.SCENARIO).tail(1)
    chosen = set(latest[C.RUN_ID]) | set(worst[C.RUN_ID])
    return runs_q.loc[runs_q[C.RUN_ID].isin(chosen), C.RUN_ID].tolist()


def trend(judged: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and quarter (every quarter found): runs, the targets they ran on, median
    and worst RTO, worst RPO (inconclusive figures left out, counted)."""
    done = conclusive(judged.loc[judged[C.JUDGED]]).assign(
        _unsure=lambda d: d[C.OUTCOME].eq(C.INCONCLUSIVE).astype("int64")
    )
    figures = done.groupby([C.SCENARIO, C.QUARTER]).agg(
        **{
            C.RTO_MEDIAN: (C.RTO, "median"),
            C.RTO_WORST: (C.RTO, "max"),
            C.RPO_WORST: (C.RPO, "max"),
            C.N_COMPLETED: (C.RUN_ID, "size"),
            C.N_INCONCLUSIVE: ("_unsure", "sum"),
        }
    )
    counts = judged.groupby([C.SCENARIO, C.QUARTER]).agg(
        **{C.N_RUNS: (C.RUN_ID, "size"), C.TARGETS: (C.TARGET, _targets)}
    )
    return (
        counts.join(figures)
        .assign(
            **{
                c: lambda d, c=c: d[c].fillna(0).astype(int)
                for c in (C.N_COMPLETED, C.N_INCONCLUSIVE)
            }
        )
        .reset_index()
        .sort_values([C.SCENARIO, C.QUARTER])
        .reset_index(drop=True)
    )


def coverage(judged: pd.DataFrame, catalog: Catalog, quarter: str) -> pd.DataFrame:
    """Per catalog scenario: the latest quarter with a completed run in the 12 months to
    the end of ``quarter`` (PCI DSS 12.10.2 asks for a test at least every 12 months)."""
    window = quarters_back(quarter, 4)
    done = judged.loc[judged[C.JUDGED] & judged[C.QUARTER].isin(window)]
    latest = done.groupby(C.SCENARIO)[C.QUARTER].max().to_dict()
    return pd.DataFrame(
        {
            C.SCENARIO: list(catalog.scenarios),
            C.QUARTER: [latest.get(s, "") for s in catalog.scenarios],
        }
    )


# ---------------------------------------------------------------- violations


def _false(value: object) -> bool:
    """A verdict that is known and negative (NA means not judged or not applicable)."""
    return not pd.isna(value) and not value


def _run_violations(runs_q: pd.DataFrame, quarter: str) -> list[dict]:
    rows = []
    for r in runs_q.to_dict("records"):
        where = f"run {r[C.RUN_ID]} on target {r[C.TARGET]} (folder {r[C.FOLDER]})"
        base = {C.SCENARIO: r[C.SCENARIO], C.RUN_ID: r[C.RUN_ID], C.STARTED: r[C.STARTED]}
        if not r[C.JUDGED]:
            why = r[C.REASON] or "no reason recorded"
            ended = r[C.STATUS] != "completed"
            rows.append(
                {
                    **base,
                    C.KIND: f"drill {r[C.STATUS]}" if ended else "drill not judged",
                    C.EVIDENCE: f"{where} ended {r[C.STATUS]}: {why}"
                    if ended
                    else f"{where} recorded itself not judged: {r[C.OUTCOME_REASON]}",
                    C.FOLLOW_UP: "fix the cause and re-run the drill this quarter; "
                    "an unfinished drill measures nothing",
                }
            )
            continue
        rows += _inconclusive_violations(r, base, where)
        if r[C.RTO_INCONCLUSIVE]:
            pass  # listed above: neither met nor missed
        elif pd.isna(r[C.RTO]):
            rows.append(
                {
                    **base,
                    C.KIND: "not recovered",
                    C.EVIDENCE: f"{where}: no recovery within the drill's bound "
                    f"(RTO target {r[C.RTO_TARGET]:.1f} s)",
                    C.FOLLOW_UP: "find why the service did not come back; the runbook "
                    "procedure for this failure does not work as written",
                }
            )
        elif _false(r[C.RTO_OK]):
            rows.append(
                {
                    **base,
                    C.KIND: "RTO missed",
                    C.EVIDENCE: f"{where}: RTO {r[C.RTO]:.1f} s against "
                    f"{r[C.RTO_TARGET]:.1f} s (margin {r[C.RTO_MARGIN]:+.1f} s)",
                    C.FOLLOW_UP: "find what made recovery slow in the run's timeline; fix "
                    "it, or change the runbook and catalog target, and re-run",
                }
            )
        if _false(r[C.RPO_OK]):
            lost = "" if pd.isna(r[C.LOST]) else f", {r[C.LOST]} of {r[C.ACKED]} acked writes lost"
            value = "not measured" if pd.isna(r[C.RPO]) else f"{r[C.RPO]:.1f} s"
            rows.append(
                {
                    **base,
                    C.KIND: "RPO missed",
                    C.EVIDENCE: f"{where}: RPO {value} against {r[C.RPO_TARGET]:.1f} s{lost}",
                    C.FOLLOW_UP: "check replication and backups for this data path; "
                    "the canary ledger in canary.csv names every lost write",
                }
            )
        rows += _impact_violations(r, base, where)
    return rows


def _inconclusive_violations(r: dict, base: dict, where: str) -> list[dict]:
    """One entry per inconclusive verdict: the fault took effect, the figure is unknown."""
    unsure = list(r[C.INCONCLUSIVE_VERDICTS])
    if not unsure and r[C.OUTCOME] == C.INCONCLUSIVE:  # recorded so, no verdict says which
        unsure = [("", r[C.OUTCOME_REASON])]
    return [
        {
            **base,
            C.KIND: f"{metric_name(metric)} inconclusive".strip(),
            C.EVIDENCE: f"{where}: {why}",
            C.FOLLOW_UP: "find why the figure could not be measured (the evidence says), fix "
            "the measurement and re-run; an inconclusive drill shows the target neither met "
            "nor missed",
        }
        for metric, why in unsure
    ]


def _impact_violations(r: dict, base: dict, where: str) -> list[dict]:
    rows = []
    revoked, lifetime = r[C.REVOKED_S], r[C.TOKEN_LIFETIME_S]
    if pd.notna(revoked) and pd.notna(lifetime) and revoked > lifetime:
        rows.append(
            {
                **base,
                C.KIND: "revoked token accepted",
                C.EVIDENCE: f"{where}: a revoked JWT was accepted for {revoked:.1f} s, "
                f"longer than its {lifetime:.1f} s lifetime (runbook 1.3)",
                C.FOLLOW_UP: "keep a revocation list that survives a Redis failover, "
                "or shorten the token lifetime",
            }
        )
    if pd.notna(r[C.DUPLICATES]) and r[C.DUPLICATES] > 0:
        rows.append(
            {
                **base,
                C.KIND: "duplicate orders",
                C.EVIDENCE: f"{where}: {r[C.DUPLICATES]} orders written twice while the "
                "idempotency cache was down (expected 0)",
                C.FOLLOW_UP: "enforce the idempotency key with a unique constraint in "
                "the database (runbook 1.3: handle at DB layer)",
            }
        )
    return rows


def violations(runs_q: pd.DataFrame, summary: pd.DataFrame, quarter: str) -> pd.DataFrame:
    """Every missed target, inconclusive figure, unfinished drill, failed impact check and
    unrun scheduled scenario, each with its evidence and a follow-up; in catalog order,
    then time order."""
    rows = _run_violations(runs_q, quarter)
    for s in summary.loc[summary[C.VERDICT].eq(C.NOT_RUN)].to_dict("records"):
        rows.append(
            {
                C.SCENARIO: s[C.SCENARIO],
                C.RUN_ID: "",
                C.STARTED: pd.NaT,
                C.KIND: "scheduled, not run",
                C.EVIDENCE: f"scheduled for {quarter} by runbook §5: {s[C.NOT_RUN_REASON]}",
                C.FOLLOW_UP: f"run the drill, or record why it was waived for {quarter}",
            }
        )
    columns = [C.SCENARIO, C.RUN_ID, C.STARTED, C.KIND, C.EVIDENCE, C.FOLLOW_UP]
    order = {s: i for i, s in enumerate(summary[C.SCENARIO])}
    return (
        pd.DataFrame(rows, columns=columns)
        .assign(_order=lambda d: d[C.SCENARIO].map(order))
        .sort_values(["_order", C.STARTED], kind="stable", na_position="last")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


__all__ = [
    "FULL_DETAIL_MAX_RUNS",
    "RUN_OUTCOMES",
    "Compliance",
    "conclusive",
    "metric_name",
    "quarter_of",
    "quarter_bounds",
    "quarters_back",
    "targets",
    "judge_runs",
    "in_quarter",
    "scenario_summary",
    "compliance",
    "detail_runs",
    "trend",
    "coverage",
    "violations",
]

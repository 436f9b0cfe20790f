"""Per-drill sections (timeline chart, measurements with margins, impact checks, steps)
and the trend section, as document blocks with their charts."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from mpac_drill.config import Catalog
from reports import charts, detection
from reports import columns as C
from reports import formatting as F
from reports.data import ReportData
from reports.document import Details, Doc, Image, Mono, Para, Strong, Table
from reports.metrics import FULL_DETAIL_MAX_RUNS, metric_name
from reports.sections import answers

RECONCILIATION_SHOWN = 50
#: Where the trend chart would be when only one quarter has completed runs.
NO_TREND = "one quarter: no trend yet"
#: A steps chart draws at most this many steps (one bar each); the table lists them all.
STEPS_CHARTED = 100
log = logging.getLogger("mpac_drill")


def chart_file(quarter: str, kind: str, run_id: str) -> str:
    """``2026-Q4-timeline-<run id>-<16 hex>.png``: one file name per exact run id.

    The run id has anything unsafe in a file name replaced and is cut to 80 characters; the
    start of its SHA-256 follows, so no two runs share a chart (``a:b`` and ``a_b``, or
    ``A`` and ``a`` on a case-insensitive file system).
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)[:80]
    digest = hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{quarter}-{kind}-{safe}-{digest}.png"


def _chart(draw: Callable[..., bytes], run_id: str, **kwargs: Any) -> bytes | str:
    """A chart's PNG, or why it could not be drawn: a crafted run folder is not fatal."""
    try:
        return draw(**kwargs)
    except (ValueError, TypeError, OverflowError, RuntimeError, MemoryError) as exc:
        log.warning("chart of run %r not drawn: %s: %r", run_id, type(exc).__name__, str(exc))
        return f"The chart could not be drawn ({type(exc).__name__})."


def run_verdict(r: dict) -> str:
    """``met``, ``MISSED RTO``, ``inconclusive RTO``, ``MISSED RPO; inconclusive RTO`` or
    ``not judged (failed)``: the run's verdict in a table cell or the CSV."""
    if not r[C.JUDGED]:
        return f"not judged ({r[C.STATUS]})"
    misses = [
        m for m, v in (("RTO", r[C.RTO_OK]), ("RPO", r[C.RPO_OK])) if not pd.isna(v) and not v
    ]
    unsure = list(dict.fromkeys(metric_name(m) for m, _ in r[C.INCONCLUSIVE_VERDICTS]))
    parts = [f"MISSED {', '.join(misses)}"] * bool(misses)
    if unsure or r[C.OUTCOME] == C.INCONCLUSIVE:
        parts.append(" ".join([C.INCONCLUSIVE, ", ".join(unsure)]).strip())
    return "; ".join(parts) or "met"


def _rto_margin(r: dict) -> str:
    if r[C.RTO_INCONCLUSIVE]:
        return F.DASH
    return "never recovered" if r[C.JUDGED] and pd.isna(r[C.RTO]) else F.margin(r[C.RTO_MARGIN])


def _unsure(value: str, inconclusive: bool) -> str:
    return "not measured (inconclusive)" if inconclusive else value


def _measurements(r: dict) -> Table:
    judged = r[C.JUDGED]
    na = "not judged" if not judged else "n/a"
    rto_unsure, rpo_unsure = r[C.RTO_INCONCLUSIVE], r[C.RPO_INCONCLUSIVE]
    lost = (
        F.DASH
        if pd.isna(r[C.LOST])
        else f"{F.count(r[C.LOST])} of {F.count(r[C.ACKED])} acknowledged"
    )
    share = f", {100 * r[C.FAILURES] / r[C.REQUESTS]:.2f} %" if r[C.REQUESTS] else ""
    rows = [
        [
            "Time to detect",
            F.seconds(r[C.DETECT], never="not detected"),
            "no target",
            F.DASH,
            F.DASH,
        ],
        [
            "RTO",
            _unsure(F.seconds(r[C.RTO]), rto_unsure),
            F.target(r[C.RTO_TARGET]),
            _rto_margin(r),
            C.INCONCLUSIVE if rto_unsure else F.ok(r[C.RTO_OK], na=na),
        ],
        [
            "RPO",
            _unsure(F.seconds(r[C.RPO], never="unbounded"), rpo_unsure),
            F.target(r[C.RPO_TARGET]),
            F.margin(r[C.RPO_MARGIN]),
            C.INCONCLUSIVE if rpo_unsure else F.ok(r[C.RPO_OK], na=na),
        ],
        ["Lost writes", lost, "(RPO covers it)", F.DASH, F.DASH],
        [
            "Requests under load",
            f"{F.count(r[C.REQUESTS])} ({F.count(r[C.FAILURES])} failed{share})",
            "no target",
            F.DASH,
            F.DASH,
        ],
        ["p95 latency (whole drill)", f"{F.number(r[C.P95])} ms", "no target", F.DASH, F.DASH],
    ]
    return Table(["Measurement", "Value", "Target", "Margin", "Verdict"], rows, right={1, 3})


def _impact(r: dict) -> Table | None:
    values = [r[C.REVOKED_S], r[C.DUPLICATES], r[C.BYPASSED]]
    if all(pd.isna(v) for v in values):
        return None
    revoked, lifetime, dup = r[C.REVOKED_S], r[C.TOKEN_LIFETIME_S], r[C.DUPLICATES]
    rows = [
        [
            "(a) revoked JWT still accepted for",
            F.seconds(revoked, never="unbounded"),
            f"at most the token lifetime ({F.target(lifetime, none='unknown')})",
            F.DASH
            if pd.isna(revoked) or pd.isna(lifetime)
            else F.ok(revoked <= lifetime, yes="ok", no="FAILED"),
        ],
        [
            "(b) orders written twice",
            F.count(dup),
            "0",
            F.DASH if pd.isna(dup) else F.ok(dup == 0, yes="ok", no="FAILED"),
        ],
        [
            "(c) QR payments accepted while rate limiting was off",
            F.count(r[C.BYPASSED]),
            "counted, no target",
            F.DASH,
        ],
    ]
    return Table(
        ["Redis impact check (runbook 1.3)", "Measured", "Expected", "Result"], rows, right={1}
    )


def _steps(doc: Doc, data: ReportData, r: dict) -> None:
    steps = data.steps.loc[data.steps[C.RUN_ID].eq(r[C.RUN_ID])]
    if steps.empty:
        return
    title = f"{r[C.SCENARIO]} on target {r[C.TARGET]}: steps of run {r[C.RUN_ID]}"
    if len(steps) > STEPS_CHARTED:
        title += f" (first {STEPS_CHARTED} of {len(steps)} steps)"
    png = _chart(charts.steps_chart, r[C.RUN_ID], steps=steps.head(STEPS_CHARTED), title=title)
    doc.add(
        Image(chart_file(data.quarter, "steps", r[C.RUN_ID]), f"steps of run {r[C.RUN_ID]}", png)
        if isinstance(png, bytes)
        else Para(png),
        Table(
            ["Step", "Started (s after drill start)", "Duration", "OK", "Detail"],
            [
                [
                    s[C.STEP],
                    F.number(s[C.STEP_OFFSET]),
                    F.seconds(s[C.DURATION]),
                    "yes" if s[C.STEP_OK] else "NO",
                    s[C.DETAIL],
                ]
                for s in steps.to_dict("records")
            ],
            right={1, 2},
        ),
    )


def _run_section(
    doc: Doc, data: ReportData, r: dict, timeline: pd.DataFrame, traffic: pd.DataFrame
) -> None:
    doc.heading(4, f"Run {r[C.RUN_ID]}")
    facts: list = [
        Strong(r[C.STATUS]),
        f", target {r[C.TARGET]}, ",
        F.when(r[C.STARTED]),
        " to ",
        F.when(r[C.ENDED]),
        f", by {r[C.USER]}@{r[C.HOST]}, harness {r[C.VERSION]} @ {r[C.COMMIT]}; "
        f"{_self_judged(r)}. Folder ",
        Mono(r[C.FOLDER]),
        ".",
    ]
    if r[C.REASON]:
        facts += [" Reason: ", r[C.REASON], "."]
    if r[C.MISSING]:
        facts += [" ", Strong("Missing artifacts:"), f" {r[C.MISSING].replace(';', ', ')}."]
    notes = tuple(data.problems.get(r[C.RUN_ID], []))
    facts += [f" {n}." for n in notes]
    doc.add(Para(tuple(facts)))
    if r[C.OUTCOME] == C.INCONCLUSIVE or r[C.INCONCLUSIVE_VERDICTS]:
        doc.add(_inconclusive(r))
    effect = _effect(r)
    if effect is not None:
        doc.add(effect)
    outcome = f" · {r[C.OUTCOME]}" if r[C.JUDGED] else ""
    png = _chart(
        charts.timeline_chart,
        r[C.RUN_ID],
        timeline=timeline,
        traffic=traffic,
        title=f"{r[C.SCENARIO]} · target {r[C.TARGET]} · {r[C.RUN_ID]} · {r[C.STATUS]}{outcome}",
        detect_s=r[C.DETECT],
        rto_s=None if r[C.RTO_INCONCLUSIVE] else r[C.RTO],
        notes=notes,
        **detection.chart_marks(data, r[C.RUN_ID]),
    )
    doc.add(
        Image(
            chart_file(data.quarter, "timeline", r[C.RUN_ID]), f"timeline of run {r[C.RUN_ID]}", png
        )
        if isinstance(png, bytes)
        else Para(png),
        _measurements(r),
    )
    impact = _impact(r)
    if impact is not None:
        doc.add(impact)
    _reconciliation(doc, data, r)
    _cleanup(doc, data, r)
    _steps(doc, data, r)


def _self_judged(r: dict) -> str:
    """The run's own verdict: schema 2's recorded outcome, else passed or failed."""
    if r[C.RECORDED_OUTCOME]:
        return f"the run's own outcome: {r[C.RECORDED_OUTCOME]}"
    return f"the run judged itself {'passed' if r[C.PASSED] else 'failed'}"


def _inconclusive(r: dict) -> Para:
    """Why the run is inconclusive: each inconclusive verdict with its reason."""
    why = [f"{metric_name(m)}: {reason}" for m, reason in r[C.INCONCLUSIVE_VERDICTS]]
    counted = (
        " The run also missed a target."
        if r[C.OUTCOME] == C.MISSED
        else " It counts neither as met nor as missed."
    )
    return Para(
        (
            Strong(f"Inconclusive (target {r[C.TARGET]}):"),
            " ",
            "; ".join(why) or r[C.OUTCOME_REASON],
            ".",
            counted,
        )
    )


def _effect(r: dict) -> Para | None:
    """schema 2 ``fault.effect``: whether the platform saw the fault take effect, and how."""
    verified, evidence = r[C.EFFECT_VERIFIED], r[C.EFFECT_EVIDENCE]
    if pd.isna(verified) and not evidence:
        return None
    seen = (
        "not recorded"
        if pd.isna(verified)
        else ("confirmed by the platform" if verified else "NOT seen by the platform")
    )
    return Para(
        (
            Strong("Fault effect:"),
            f" {seen}; evidence: ",
            evidence or "none recorded",
            ".",
        )
    )


def _cleanup(doc: Doc, data: ReportData, r: dict) -> None:
    """result.json ``cleanup``: what the drill created or changed, and what became of it."""
    if data.cleanup.empty:
        return
    rows = data.cleanup.loc[data.cleanup[C.RUN_ID].eq(r[C.RUN_ID])]
    if rows.empty:
        return
    regions = int(rows[C.REGION].ne("").any())
    doc.add(
        Para(
            (
                Strong("Clean-up"),
                f" ({len(rows)}): what the drill created or changed on target {r[C.TARGET]}, "
                "and what became of it.",
            )
        ),
        Table(
            ["What", "Resource", *(["Region"] * regions), "Outcome"],
            [
                [
                    c[C.WHAT],
                    (Mono(c[C.RESOURCE]),) if c[C.RESOURCE] else F.DASH,
                    *([c[C.REGION] or F.DASH] * regions),
                    c[C.CLEANUP_OUTCOME],
                ]
                for c in rows.to_dict("records")
            ],
        ),
    )


def _reconciliation(doc: Doc, data: ReportData, r: dict) -> None:
    """Runbook 1.5: the QR payments that need manual reconciliation, listed."""
    if data.reconciliation.empty:
        return
    rows = data.reconciliation.loc[data.reconciliation[C.RUN_ID].eq(r[C.RUN_ID])]
    if rows.empty and r[C.SCENARIO] != "pgw-region-failover":
        return
    shown = rows.head(RECONCILIATION_SHOWN)
    doc.add(
        Para(
            (
                Strong("QR payments to reconcile (runbook 1.5)"),
                f": {len(rows)} acknowledged before the loss and missing after the "
                "restore"
                + (
                    f"; the first {len(shown)} below, all in "
                    if len(rows) > len(shown)
                    else "; all in "
                ),
                Mono("reconciliation.csv"),
                " of the run folder.",
            )
        )
    )
    if not shown.empty:
        doc.add(
            Table(
                ["Payment", "Client", "Amount", "Sent at"],
                [
                    [p, c, a, s]
                    for p, c, a, s in shown.loc[
                        :, ["payment_id", "client", "amount", "sent_at"]
                    ].itertuples(index=False)
                ],
                right={2},
            )
        )


def _others(runs: pd.DataFrame) -> Table:
    return Table(
        [
            "Run",
            "Started",
            "Target",
            "Status",
            "RTO",
            "RTO margin",
            "RPO",
            "RPO margin",
            "Lost writes",
            "Verdict",
            "Why (inconclusive or not judged)",
        ],
        [
            [
                (Mono(r[C.RUN_ID]),),
                F.when(r[C.STARTED]),
                r[C.TARGET],
                r[C.STATUS],
                _unsure(F.seconds(r[C.RTO]), r[C.RTO_INCONCLUSIVE]),
                _rto_margin(r),
                _unsure(F.seconds(r[C.RPO]), r[C.RPO_INCONCLUSIVE]),
                F.margin(r[C.RPO_MARGIN]),
                F.count(r[C.LOST]),
                run_verdict(r),
                r[C.OUTCOME_REASON] or F.DASH,
            ]
            for r in runs.to_dict("records")
        ],
        right={4, 5, 6, 7, 8},
    )


def drills(doc: Doc, data: ReportData) -> None:
    doc.heading(2, "Drills")
    doc.add(answers("SOC 2 A1.3", "PCI DSS 12.10.2"))
    doc.add(
        Para(
            (
                "Each chart shows, from the run folder, the health of every service "
                "(timeline.csv: green answered, red did not), requests and failures per "
                "second and p95 latency (load_per_second.csv), with the fault injection, "
                "detection and recovery marked. ",
                Strong("Charts:"),
                f" when the quarter has at most {FULL_DETAIL_MAX_RUNS} runs every run gets "
                "one; otherwise the latest and the worst run of each scenario do, and every "
                "other run is a row in its scenario's table and in the CSV.",
            )
        )
    )
    detail = set(data.detail)
    timelines = dict(tuple(data.timelines.groupby(C.RUN_ID)))
    traffic = dict(tuple(data.traffic.groupby(C.RUN_ID)))
    empty_tl = data.timelines.iloc[0:0]
    empty_tr = data.traffic.iloc[0:0]
    for s in data.summary.to_dict("records"):
        scenario = data.catalog.get(s[C.SCENARIO])
        doc.heading(3, f"{scenario.id} (runbook {scenario.runbook_section})")
        doc.add(
            Para(
                (
                    Strong(scenario.title),
                    f". Fault: {scenario.fault}. Recovery measured: {scenario.recovery}.",
                )
            )
        )
        if s[C.N_RUNS] == 0:
            doc.add(
                Para((Strong("Not run."), f" Scheduled for {data.quarter}: {s[C.NOT_RUN_REASON]}."))
            )
            continue
        runs = data.runs_q.loc[data.runs_q[C.SCENARIO].eq(scenario.id)]
        for r in runs.loc[runs[C.RUN_ID].isin(detail)].to_dict("records"):
            _run_section(
                doc,
                data,
                r,
                timelines.get(r[C.RUN_ID], empty_tl),
                traffic.get(r[C.RUN_ID], empty_tr),
            )
        others = runs.loc[~runs[C.RUN_ID].isin(detail)]
        if not others.empty:
            doc.add(
                Details(
                    f"Other runs of {scenario.id} in {data.quarter} ({len(others)})",
                    [_others(others)],
                )
            )


def trend(doc: Doc, data: ReportData) -> None:
    doc.heading(2, "Trend")
    doc.add(answers("SOC 2 A1.3"))
    t = data.trend
    if t.empty:
        doc.add(Para("No completed run in any quarter of the runs folder."))
        return
    quarters = sorted(t[C.QUARTER].unique())
    charted = sorted(t.loc[t[C.N_COMPLETED].gt(0), C.QUARTER].unique())
    doc.add(
        Para(
            f"Completed runs per scenario in every quarter found in the runs folder "
            f"({', '.join(quarters)})"
            + ("; the report's quarter is shaded in the chart." if len(charted) > 1 else ".")
            + " Inconclusive figures are left out of RTO and RPO; Target(s) names where "
            "the runs ran."
        )
    )
    if len(charted) > 1:
        png = charts.trend_chart(
            t,
            quarter=data.quarter,
            global_rto_s=data.catalog.global_rto_s,
            global_rpo_s=data.catalog.global_rpo_s,
        )
        doc.add(Image(f"{data.quarter}-trend.png", "RTO and RPO per scenario by quarter", png))
    else:  # one point per scenario is no trend, and a chart of it would mislead
        doc.add(Para(NO_TREND if charted else "No completed run in any quarter: no trend yet."))
    doc.add(
        Table(
            [
                "Scenario",
                "Quarter",
                "Runs (completed)",
                "RTO median",
                "RTO worst",
                "RPO worst",
                "RTO median vs previous quarter",
                "Target(s)",
            ],
            [
                [
                    r[C.SCENARIO],
                    r[C.QUARTER],
                    _trend_runs(r),
                    F.seconds(r[C.RTO_MEDIAN]),
                    F.seconds(r[C.RTO_WORST]),
                    F.seconds(r[C.RPO_WORST]),
                    change,
                    r[C.TARGETS],
                ]
                for r, change in zip(
                    t.to_dict("records"), _vs_previous(t, data.catalog), strict=True
                )
            ],
            right={2, 3, 4, 5},
        )
    )
    regressed = [c for c in _vs_previous(t, data.catalog) if c.endswith("REGRESSED")]
    if regressed:
        rel, absolute = data.catalog.max_regression
        doc.add(
            Para(
                f"{len(regressed)} scenario-quarter(s) regressed: the median RTO grew by more "
                f"than {absolute:g} s and {rel:.0%} over the previous quarter with runs "
                "(catalog gate.max_regression, the rule of gate --baseline), even where the "
                "runbook's target is still met."
            )
        )


def _vs_previous(t: pd.DataFrame, catalog: Catalog) -> list[str]:
    """Per trend row: its median RTO against the scenario's previous quarter with one, by
    the gate's regression rule (``mpac_drill.measure.stats.regression``)."""
    from mpac_drill.measure.stats import regression

    rel, absolute = catalog.max_regression
    out: list[str] = []
    previous: dict[str, float] = {}
    for r in t.to_dict("records"):
        base, now = previous.get(r[C.SCENARIO]), r[C.RTO_MEDIAN]
        if base is None or now is None or pd.isna(now):
            out.append("")
        else:
            reg = regression([base], [float(now)], relative=rel, absolute_s=absolute)
            pct = "" if base == 0 else f" ({reg['relative']:+.0%})"
            out.append(f"{reg['delta_s']:+.2f} s{pct}" + (" REGRESSED" if reg["regressed"] else ""))
        if now is not None and not pd.isna(now):
            previous[r[C.SCENARIO]] = float(now)
    return out


def _trend_runs(r: dict) -> str:
    unsure = f", {r[C.N_INCONCLUSIVE]} inconclusive" if r[C.N_INCONCLUSIVE] else ""
    return f"{r[C.N_RUNS]} ({r[C.N_COMPLETED]}{unsure})"


__all__ = ["drills", "trend", "chart_file", "run_verdict", "NO_TREND"]

"""The report's "Where recovery time goes": per scenario and target, the phases of recovery
(median over the quarter's runs) as a stacked bar, ``rto_slo_s`` beside ``rto_s``, and the
spread of both as a box and strip plot where a scenario has at least three runs.

Read from each run's ``result.json`` ``phases`` (contract version 4); older runs have none
and are counted as such. One hook: :func:`add_section`. Charts are labelled with the target
each figure came from.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from reports import columns as C  # noqa: E402
from reports.charts import _drawn_with, _png  # noqa: E402
from reports.data import ReportData  # noqa: E402
from reports.document import Doc, Image, Para, Table  # noqa: E402

TITLE = "Where recovery time goes"
PHASES = ("detect", "platform", "endpoint", "slo")
_COLOURS = {"detect": "#ef6c00", "platform": "#1565c0", "endpoint": "#6a1b9a", "slo": "#9e9e9e"}
_PLAIN = {"text.usetex": False, "text.parse_math": False, "axes.formatter.use_mathtext": False}
#: a scenario's spread is drawn from this many runs
SPREAD_FROM_RUNS = 3


def phase_frame(runs_dir: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run with phases: scenario, target, each phase's duration, rto_s and
    rto_slo_s (``NaN``: not seen)."""
    rows = []
    for run in runs.to_dict("records"):
        try:
            data = json.loads((runs_dir / str(run[C.FOLDER]) / "result.json").read_text())
            phases = data.get("phases")
        except (OSError, ValueError, TypeError):
            continue
        if not isinstance(phases, dict) or not isinstance(phases.get("phases"), list):
            continue
        row = {
            C.RUN_ID: run[C.RUN_ID],
            C.SCENARIO: run[C.SCENARIO],
            C.TARGET: run[C.TARGET],
            "rto_s": phases.get("rto_s"),
            "rto_slo_s": phases.get("rto_slo_s"),
        }
        for p in phases["phases"]:
            if isinstance(p, dict) and p.get("name") in PHASES and p.get("seen"):
                row[p["name"]] = p.get("duration_s")
        rows.append(row)
    columns = [C.RUN_ID, C.SCENARIO, C.TARGET, "rto_s", "rto_slo_s", *PHASES]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(**{c: pd.to_numeric(frame[c], errors="coerce") for c in columns[3:]})


def medians(frame: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and target: runs, each phase's median, rto_s and rto_slo_s medians."""
    grouped = frame.groupby([C.SCENARIO, C.TARGET], sort=True)
    out = grouped[["rto_s", "rto_slo_s", *PHASES]].median()
    return out.assign(runs=grouped.size()).reset_index()


@_drawn_with(_PLAIN)
def stacked_chart(table: pd.DataFrame, quarter: str) -> bytes:
    """Horizontal stacked bars of the median phases, one bar per scenario and target."""
    fig = Figure(figsize=(9, 0.6 * len(table) + 1.6))
    ax = fig.add_subplot()
    labels = [f"{r[C.SCENARIO]} ({r[C.TARGET]})" for r in table.to_dict("records")]
    left = pd.Series(0.0, index=table.index)
    for phase in PHASES:
        widths = table[phase].fillna(0.0)
        ax.barh(labels, widths, left=left, color=_COLOURS[phase], label=phase)
        left = left + widths
    ax.scatter(table["rto_s"], labels, marker="|", s=300, color="black", label="rto_s", zorder=3)
    ax.set_xlabel("seconds after the injection (median over the runs)")
    ax.set_title(f"{quarter}: phases of recovery per scenario (target in brackets)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    return _png(fig)


@_drawn_with(_PLAIN)
def spread_chart(frame: pd.DataFrame, quarter: str) -> bytes:
    """Box and strip plot of rto_s and rto_slo_s per scenario and target."""
    groups = [(f"{s} ({t})", g) for (s, t), g in frame.groupby([C.SCENARIO, C.TARGET], sort=True)]
    fig = Figure(figsize=(9, 0.9 * len(groups) + 1.6))
    ax = fig.add_subplot()
    for i, (_label, g) in enumerate(groups):
        for j, (figure, colour) in enumerate((("rto_s", "#1565c0"), ("rto_slo_s", "#9e9e9e"))):
            values = g[figure].dropna()
            if values.empty:
                continue
            y = i * 3 + j
            ax.boxplot(
                values, positions=[y], orientation="horizontal", widths=0.6, manage_ticks=False
            )
            ax.scatter(values, [y] * len(values), color=colour, s=12, zorder=3)
    ax.set_yticks(
        [i * 3 + j for i in range(len(groups)) for j in (0, 1)],
        [f"{label} {f}" for label, _ in groups for f in ("rto_s", "rto_slo_s")],
    )
    ax.set_xlabel("seconds")
    ax.set_title(f"{quarter}: spread of rto_s and rto_slo_s (scenarios with >= 3 runs)")
    fig.tight_layout()
    return _png(fig)


def _s(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:.2f}"


def add_section(doc: Doc, data: ReportData, runs_dir: Path) -> None:
    """Append "Where recovery time goes" to ``doc`` (the report builder's one hook)."""
    doc.heading(2, TITLE)
    frame = phase_frame(runs_dir, data.runs_q)
    if frame.empty:
        doc.add(Para(("No run of this quarter recorded phases (result.json version 4).",)))
        return
    table = medians(frame)
    doc.add(
        Para(
            (
                "Median over the quarter's runs, in seconds after the injection: detect (→ "
                "first failed sample), platform (→ the platform's own recovery event), "
                "endpoint (→ rto_s), then slo (→ rto_slo_s: p95 back under the target's "
                "SLO). A phase not seen is left out, never invented.",
            )
        )
    )
    doc.add(
        Table(
            ["scenario", "target", "runs", *PHASES, "rto_s", "rto_slo_s"],
            [
                [
                    r[C.SCENARIO],
                    r[C.TARGET],
                    str(r["runs"]),
                    *(_s(r[p]) for p in PHASES),
                    _s(r["rto_s"]),
                    _s(r["rto_slo_s"]),
                ]
                for r in table.to_dict("records")
            ],
            right=set(range(2, 9)),
        )
    )
    quarter = data.quarter
    doc.add(Image(f"{quarter}-phases.png", "phases of recovery", stacked_chart(table, quarter)))
    counts = frame.groupby([C.SCENARIO, C.TARGET])[C.RUN_ID].transform("size")
    many = frame.loc[counts >= SPREAD_FROM_RUNS]
    if not many.empty:
        doc.add(Image(f"{quarter}-rto-spread.png", "spread of rto_s", spread_chart(many, quarter)))


__all__ = ["add_section", "medians", "phase_frame", "spread_chart", "stacked_chart"]

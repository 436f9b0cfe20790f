"""Charts as PNG bytes: a drill's timeline, a region drill's steps, the quarterly trend.

Figures are built with matplotlib's object API on the Agg backend (no pyplot state, no
display). PNG metadata is fixed, so the same frames give the same bytes.

Labels are plain text: run ids, step names, service names and notes come from run folders,
so LaTeX is off for every chart, and math text (``$...$``) is off for every text object the
timeline and steps charts create, ticks and legends included. The trend chart keeps math
text for its log-scale ticks (``10^2``); its labels are catalog ids with ``$`` escaped.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import Any, ParamSpec

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from reports import columns as C  # noqa: E402

_PNG_METADATA = {"Software": None, "Creation Time": None}
#: Every text object plain: no LaTeX, no math text, no math in tick labels.
_PLAIN_TEXT = {"text.usetex": False, "text.parse_math": False, "axes.formatter.use_mathtext": False}
#: No LaTeX (a matplotlibrc may turn it on); math text stays for log-scale ticks.
_NO_TEX = {"text.usetex": False}
P = ParamSpec("P")
_DPI = 100
_OK, _BAD, _INJECT, _DETECT, _RECOVER = "#2e7d32", "#c62828", "#000000", "#ef6c00", "#1565c0"
_ALARM, _PAGE, _ACK = "#8e24aa", "#6d4c41", "#00838f"  # the detection chain
#: Trend chart: one marker per scenario, and a horizontal offset (in quarters) between them.
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_JITTER = 0.07


def _drawn_with(params: dict[Any, bool]) -> Callable[[Callable[P, bytes]], Callable[P, bytes]]:
    """Draw and save a chart with these settings, whatever the matplotlibrc says."""

    def decorate(draw: Callable[P, bytes]) -> Callable[P, bytes]:
        @functools.wraps(draw)
        def drawn(*args: P.args, **kwargs: P.kwargs) -> bytes:
            with matplotlib.rc_context(params):
                return draw(*args, **kwargs)

        return drawn

    return decorate


def _literal(text: str) -> str:
    """Text that matplotlib's math text shows as it is (``$`` escaped)."""
    return text.replace("$", r"\$")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata=_PNG_METADATA)
    return buf.getvalue()


def _unit(span_s: float) -> tuple[float, str]:
    return (60.0, "min") if span_s > 1200 else (1.0, "s")


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666666")


def _segments(samples: pd.DataFrame) -> pd.DataFrame:
    """Runs of equal ``ok`` for one service: start, width and state of each."""
    ordered = samples.sort_values(C.T_REL)
    t = ordered[C.T_REL].to_numpy()
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    ends = np.append(t[1:], t[-1] + step)
    return (
        ordered.assign(_end=ends, _run=ordered[C.OK].ne(ordered[C.OK].shift()).cumsum())
        .groupby("_run")
        .agg(start=(C.T_REL, "first"), end=("_end", "last"), ok=(C.OK, "first"))
        .assign(width=lambda d: d["end"] - d["start"])
    )


@_drawn_with(_PLAIN_TEXT)
def timeline_chart(
    timeline: pd.DataFrame,
    traffic: pd.DataFrame,
    *,
    title: str,
    detect_s: float | None,
    rto_s: float | None,
    notes: tuple[str, ...] = (),
    alarm_s: float | None = None,
    page_s: float | None = None,
    ack_s: float | None = None,
) -> bytes:
    """Health per service, requests and failures per second, p95 latency; fault markers,
    and the detection chain's (first alarm, page, acknowledgement) where recorded."""
    fig = Figure(figsize=(10, 6.4))
    fig.subplots_adjust(left=0.12, right=0.98, top=0.88, bottom=0.08, hspace=0.12)
    health, rate, latency = fig.subplots(3, 1, sharex=True, height_ratios=(1.1, 1, 0.9))
    span = pd.concat([timeline[C.T_REL], traffic[C.T_REL]]).agg(["min", "max"])
    scale, unit = _unit(float(span["max"] - span["min"]) if span.notna().all() else 0.0)
    services = sorted(timeline[C.SERVICE].unique())
    for i, service in enumerate(services):
        seg = _segments(timeline.loc[timeline[C.SERVICE].eq(service)])
        for state, colour in ((1, _OK), (0, _BAD)):
            part = seg.loc[seg["ok"].eq(state)]
            health.broken_barh(
                list(zip(part["start"] / scale, part["width"] / scale, strict=True)),
                (i - 0.4, 0.8),
                facecolors=colour,
                linewidth=0,
            )
    health.set_yticks(range(len(services)), services)
    health.set_ylim(-0.6, max(len(services), 1) - 0.4)
    fig.suptitle(title, x=0.12, y=0.975, ha="left", fontsize=11)
    if timeline.empty:
        _note(health, notes[0] if notes else "no timeline")
    if traffic.empty:
        _note(rate, next((n for n in notes if "load" in n), "no load_per_second.csv"))
    else:
        x = traffic[C.T_REL] / scale
        # locust counts per wall-clock second: each value covers [t, t + 1)
        rate.step(
            x, traffic[C.REQUESTS], where="post", color="#455a64", linewidth=1, label="requests/s"
        )
        rate.fill_between(
            x,
            0,
            traffic[C.FAILURES],
            color=_BAD,
            alpha=0.6,
            step="post",
            label="failures/s",
            linewidth=0,
        )
        rate.set_ylim(0, max(float(traffic[C.REQUESTS].max()), 1.0) * 1.35)
        rate.legend(loc="upper right", ncols=2, fontsize=8, frameon=False)
        latency.step(x, traffic[C.P95], where="post", color="#6a1b9a", linewidth=1)
    rate.set_ylabel("per second")
    latency.set_ylabel("p95 ms")
    latency.set_xlabel(f"{unit} since fault injection")
    marks = [
        (0.0, _INJECT, "fault injected"),
        (detect_s, _DETECT, "detected"),
        (rto_s, _RECOVER, "recovered"),
        (alarm_s, _ALARM, "alarm"),
        (page_s, _PAGE, "paged"),
        (ack_s, _ACK, "acknowledged"),
    ]
    for ax in (health, rate, latency):
        for at, colour, label in marks:
            if at is not None and not pd.isna(at):
                ax.axvline(
                    at / scale,
                    color=colour,
                    linestyle="--",
                    linewidth=1.2,
                    label=label if ax is health else None,
                )
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    fig.legend(
        *health.get_legend_handles_labels(),
        loc="upper left",
        bbox_to_anchor=(0.115, 0.94),
        ncols=3,
        fontsize=8,
        frameon=False,
    )
    return _png(fig)


@_drawn_with(_PLAIN_TEXT)
def steps_chart(steps: pd.DataFrame, *, title: str) -> bytes:
    """A Gantt-style bar per step, from the run's start; red when the step failed."""
    ordered = steps.fillna({C.STEP_OFFSET: 0.0, C.DURATION: 0.0})
    span = float((ordered[C.STEP_OFFSET] + ordered[C.DURATION]).max() or 0.0)
    scale, unit = _unit(span)
    height = 1.3 + 0.42 * len(ordered)
    fig = Figure(figsize=(10, height))
    # room on the left for the longest step name (about 0.09 inch a character at 10 pt)
    longest = int(ordered[C.STEP].astype(str).str.len().max() or 10)
    left = min(0.45, (0.3 + 0.09 * longest) / 10)
    fig.subplots_adjust(left=left, right=0.95, top=1 - 0.45 / height, bottom=0.65 / height)
    ax = fig.subplots()
    y = np.arange(len(ordered))[::-1]
    ax.barh(
        y,
        ordered[C.DURATION] / scale,
        left=ordered[C.STEP_OFFSET] / scale,
        color=[_OK if ok else _BAD for ok in ordered[C.STEP_OK]],
        height=0.6,
    )
    for yi, (start, width) in zip(
        y, zip(ordered[C.STEP_OFFSET], ordered[C.DURATION], strict=True), strict=True
    ):
        ax.text(
            (start + width) / scale, yi, f" {width / scale:.1f} {unit}", va="center", fontsize=8
        )
    ax.set_yticks(y, ordered[C.STEP].tolist())
    ax.set_xlim(left=0)
    ax.set_xlabel(f"{unit} since the drill started")
    ax.set_title(title, loc="left", fontsize=11)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    return _png(fig)


def trend_placement(n: int) -> list[tuple[float, str, bool]]:
    """Per scenario of the trend chart: horizontal offset (in quarters, centred on the
    quarter and inside its shaded band), marker, and whether the marker is hollow; so
    scenarios with equal figures stay apart. The same for every build."""
    step = min(_JITTER, 0.6 / max(n - 1, 1))  # at most +-0.3: inside the band of +-0.4
    return [
        (
            step * (i - (n - 1) / 2),
            _MARKERS[i % len(_MARKERS)],
            bool((i // len(_MARKERS)) % 2),
        )
        for i in range(n)
    ]


@_drawn_with(_NO_TEX)
def trend_chart(
    trend: pd.DataFrame, *, quarter: str, global_rto_s: float, global_rpo_s: float
) -> bytes:
    """Worst RTO (log scale, minutes) and worst RPO (seconds) per scenario by quarter.

    Meant for two quarters or more (``drills.trend`` writes no chart for one). Scenarios
    that share a value would hide each other: each has its own marker and a small fixed
    horizontal offset (the same every build), and the legend names its target(s).
    """
    quarters = sorted(trend[C.QUARTER].unique())
    position = {q: i for i, q in enumerate(quarters)}
    fig = Figure(figsize=(10, 6.4))
    fig.subplots_adjust(left=0.09, right=0.74, top=0.93, bottom=0.07, hspace=0.08)
    rto_ax, rpo_ax = fig.subplots(2, 1, sharex=True)
    palette = matplotlib.color_sequences["tab10"]
    groups = list(trend.groupby(C.SCENARIO, sort=True))
    for i, ((scenario, rows), (offset, marker, hollow)) in enumerate(
        zip(groups, trend_placement(len(groups)), strict=True)
    ):
        x = rows[C.QUARTER].map(position) + offset
        rto = rows[C.RTO_WORST].replace(np.inf, np.nan) / 60
        colour = palette[i % len(palette)]
        style = {
            "marker": marker,
            "markersize": 6,
            "markerfacecolor": "none" if hollow else colour,
            "linewidth": 1.2,
            "color": colour,
        }
        where = ", ".join(sorted({t for ts in rows[C.TARGETS] for t in ts.split(", ") if t}))
        rto_ax.plot(x, rto, label=_literal(f"{scenario} ({where})"), **style)
        if rows[C.RPO_WORST].notna().any():
            rpo_ax.plot(x, rows[C.RPO_WORST], **style)
    rto_ax.axhline(global_rto_s / 60, color=_BAD, linestyle=":", label="runbook RTO")
    rpo_ax.axhline(global_rpo_s, color=_BAD, linestyle=":", label="runbook RPO")
    rto_ax.set_yscale("log")
    rto_ax.set_ylabel("worst RTO (min, log)")
    rpo_ax.set_ylabel("worst RPO (s)")
    rto_ax.set_title(
        f"RTO and RPO per scenario by quarter ({quarter} shaded)", loc="left", fontsize=11
    )
    if quarter in position:
        for ax in (rto_ax, rpo_ax):
            ax.axvspan(position[quarter] - 0.4, position[quarter] + 0.4, color="#fff3c4")
    rpo_ax.set_xticks(range(len(quarters)), quarters)
    rpo_ax.set_xlim(-0.6, max(len(quarters) - 0.4, 0.6))
    rto_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    for ax in (rto_ax, rpo_ax):
        ax.grid(color="#dddddd", linewidth=0.6)
    return _png(fig)


__all__ = ["timeline_chart", "steps_chart", "trend_chart", "trend_placement"]

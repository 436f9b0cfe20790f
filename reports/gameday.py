"""The report's "Game days": each game day of the quarter (result.json ``gameday`` block,
issue 15) as a Gantt chart that tells people time (shown → confirmed, the team reading,
deciding, typing) from machine time (confirmed → effect seen by the harness's check), per
step; the gaps of a resumed game day shaded, never merged into a step; §3 response and
update compliance; RTO from the injection and from the incident's declaration.

One hook: :func:`add_section`. Every chart and row is labelled with the target its figures
came from.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from reports import columns as C  # noqa: E402
from reports.data import ReportData  # noqa: E402
from reports.document import Doc, Image, Para, Table  # noqa: E402

TITLE = "Game days"
PEOPLE, MACHINE, GAP = "#ef6c00", "#1565c0", "#bdbdbd"
_RC = {"text.usetex": False, "text.parse_math": False, "axes.formatter.use_mathtext": False}


def _ts(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def gameday_runs(runs_dir: Path, runs: pd.DataFrame) -> list[dict[str, Any]]:
    """The quarter's runs with a ``gameday`` block: run id, scenario, target, the block and
    the drill's ``rto_s``; a run folder that cannot be read is left out."""
    out = []
    for run in runs.to_dict("records"):
        try:
            data = json.loads((runs_dir / str(run[C.FOLDER]) / "result.json").read_text())
        except (OSError, ValueError, TypeError):
            continue
        block = data.get("gameday") if isinstance(data, dict) else None
        if not isinstance(block, dict) or not isinstance(block.get("steps"), list):
            continue
        rto = (data.get("measurements") or {}).get("rto_s")
        out.append(
            {
                "run_id": str(run[C.RUN_ID]),
                "scenario": str(run[C.SCENARIO]),
                "target": str(run[C.TARGET]),
                "block": block,
                "rto_s": _num(rto),
            }
        )
    return out


def origin(block: dict[str, Any]) -> float | None:
    """The timeline's origin: the (first) injection."""
    for value in (
        block.get("injected_at"),
        *(s.get("injected_at") for s in block.get("segments") or []),
    ):
        if _ts(value) is not None:
            return _ts(value)
    first = block["steps"][0] if block["steps"] else {}
    confirmed, response = _ts(first.get("confirmed_at")), _num(block.get("response_s"))
    return None if confirmed is None or response is None else confirmed - response


def bars(block: dict[str, Any]) -> pd.DataFrame:
    """Per step, seconds after the injection: ``shown``, ``people`` (shown → confirmed),
    ``machine`` (confirmed → effect seen, 0 when the effect came first; NaN not seen)."""
    t0 = origin(block) or 0.0
    rows = []
    for s in block["steps"]:
        shown, confirmed = _ts(s.get("shown_at")), _ts(s.get("confirmed_at"))
        rows.append(
            {
                "number": s.get("number"),
                "name": str(s.get("name")),
                "manual": bool(s.get("manual")),
                "shown": None if shown is None else shown - t0,
                "confirmed": None if confirmed is None else confirmed - t0,
                "people": _num(s.get("people_s")),
                "machine": _num(s.get("machine_s")),
                "who": s.get("who") or "-",
            }
        )
    frame = pd.DataFrame(rows)
    for c in ("shown", "confirmed", "people", "machine"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    return frame


def gaps(block: dict[str, Any]) -> list[tuple[float, float]]:
    t0 = origin(block) or 0.0
    out = []
    for g in block.get("gaps") or []:
        a, b = _ts(g.get("from")), _ts(g.get("to"))
        if a is not None and b is not None:
            out.append((a - t0, b - a))
    return out


def gantt_chart(run: dict[str, Any], quarter: str) -> bytes:
    """One bar per step: people time then machine time, seconds after the injection."""
    frame = bars(run["block"])
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(9, 0.45 * len(frame) + 2.0))
        ax = fig.add_subplot()
        labels = [
            f"{r['number']}. {r['name']} ({'manual' if r['manual'] else 'auto'})"
            for r in frame.to_dict("records")
        ]
        y = list(range(len(frame)))[::-1]
        ax.barh(y, frame["people"].fillna(0), left=frame["shown"].fillna(0), color=PEOPLE,
                label="people: shown → confirmed")  # fmt: skip
        ax.barh(y, frame["machine"].fillna(0), left=frame["confirmed"].fillna(0), color=MACHINE,
                label="machine: confirmed → effect seen")  # fmt: skip
        for i, (start, width) in enumerate(gaps(run["block"])):
            ax.axvspan(start, start + width, color=GAP, alpha=0.6,
                       label="harness away (gap)" if i == 0 else None)  # fmt: skip
        block = run["block"]
        declared = frame["confirmed"].iloc[0] if len(frame) else None
        if declared is not None and not pd.isna(declared):
            ax.axvline(declared, color="black", linestyle=":", label="incident declared")
        rto = _num(block.get("rto_timeline_s")) or run.get("rto_s")
        if rto is not None:
            ax.axvline(rto, color="#2e7d32", linestyle="--", label="users served (RTO)")
        ax.set_yticks(y, labels)
        ax.set_xlabel("seconds after the injection")
        ax.set_title(
            f"{quarter}: game day {run['scenario']} on {run['target']} ({run['run_id']})",
            fontsize=9,
        )
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
        return buf.getvalue()


def _s(value: Any) -> str:
    v = _num(value)
    return "-" if v is None else f"{v:.2f}"


def _yes(value: Any) -> str:
    return {True: "met", False: "MISSED"}.get(value, "-") if isinstance(value, bool) else "-"


def summary_row(run: dict[str, Any]) -> list[str]:
    b = run["block"]
    rto = _num(b.get("rto_timeline_s")) if b.get("gaps") else run.get("rto_s")
    return [
        run["scenario"],
        run["target"],
        run["run_id"],
        str(b.get("status") or "-"),
        str(b.get("severity") or "-"),
        f"{_s(b.get('response_s'))} / {_s(b.get('respond_target_s'))} "
        f"{_yes(b.get('response_met'))}",
        f"{len(b.get('updates') or [])} upd, max gap {_s(b.get('max_update_gap_s'))} / "
        f"{_s(b.get('update_target_s'))} {_yes(b.get('update_compliant'))}",
        _s(b.get("people_s")),
        _s(b.get("machine_s")),
        _s(rto),
        _s(b.get("rto_from_declaration_s")),
        _s(b.get("gap_s")) if b.get("gaps") else "-",
    ]


def add_section(doc: Doc, data: ReportData, runs_dir: Path) -> None:
    """Append "Game days" to ``doc`` (the report builder's one hook)."""
    doc.heading(2, TITLE)
    runs = gameday_runs(runs_dir, data.runs_q)
    if not runs:
        doc.add(Para(("No game day (mpac-drill gameday) was run this quarter.",)))
        return
    doc.add(
        Para(
            (
                "The runbook's procedures walked by people. People time: a step shown → "
                "confirmed by the operator; machine time: confirmed → the harness's own check "
                "saw the effect. §3: response (injection → incident declared) and the update "
                "cadence against the declared severity. RTO from the injection (over the one "
                "timeline, gaps included, for a resumed game day) and from the declaration.",
            )
        )
    )
    doc.add(
        Table(
            [
                "scenario",
                "target",
                "run",
                "status",
                "severity",
                "response s (target)",
                "§3 updates",
                "people s",
                "machine s",
                "RTO s",
                "RTO from declaration s",
                "gaps s",
            ],  # fmt: skip
            [summary_row(r) for r in runs],
            right={7, 8, 9, 10, 11},
        )
    )
    quarter = data.quarter
    for run in runs:
        frame = bars(run["block"])
        doc.add(
            Table(
                [f"{run['run_id']} ({run['target']}) step", "mode", "people s", "machine s", "who"],
                [
                    [
                        f"{r['number']}. {r['name']}",
                        "manual" if r["manual"] else "auto",
                        _s(r["people"]),
                        _s(r["machine"]),
                        str(r["who"]),
                    ]  # fmt: skip
                    for r in frame.to_dict("records")
                ],
                right={2, 3},
            )
        )
        doc.add(
            Image(
                f"{quarter}-gameday-{run['run_id']}.png",
                f"game day {run['scenario']} on {run['target']}: people and machine time",
                gantt_chart(run, quarter),
            )
        )


__all__ = ["add_section", "bars", "gameday_runs", "gantt_chart", "gaps", "origin", "summary_row"]

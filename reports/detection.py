"""The report's "Detection" section: would the team have been told (runbook "Detection"
lines, §3.1)?

Per scenario, its latest run of the quarter on each target: the observer's detection
(``measurements.detect_s``, seen by the harness only), the first alarm, the page and its
acknowledgement (``result.json`` ``detection``, contract v3), each against the §3.1
response time of the severity the drill declared. Then the quarter's §3.1 response
compliance, counted apart for real targets and for sandbox rehearsals (the sandbox's alarms
and pager are local stand-ins at a scaled-down period: its figures rehearse the chain, they
are not evidence of it), and the runs' D1-D3 findings (alarm missing, silent, no page).

An alarm the target does not model is "not played on this target" (contract v5): its row
says so instead of a missed figure, and a run whose every alarm was not played is left out
of the compliance count (neither met nor missed: nothing was played), counted apart.
The region drills (§1.4, §1.5: Route53's health-check alarm) have rows like the others.

``load_detection`` reads the ``detection`` blocks of the quarter's run folders (already
checked against the contract by ``reports.load``) without following links;
``chart_marks`` gives the timeline chart its alarm, page and ack markers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from reports import columns as C
from reports.controls import PCI
from reports.data import ReportData
from reports.document import Doc, Mono, Para, Strong, Table
from reports.folder import read_bytes
from reports.load import RESULT_FILE

TITLE = "Detection"
DASH = "—"
_FIGURES = (
    ("time_to_alarm_s", "alarm"),
    ("time_to_page_s", "page"),
    ("time_to_ack_s", "ack"),
)


def load_detection(runs_dir: Path, runs: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """run id → its ``result.json`` ``detection`` block, for the runs that have one."""
    out: dict[str, dict[str, Any]] = {}
    for r in runs[[C.RUN_ID, C.FOLDER]].to_dict("records"):
        try:
            data = json.loads(read_bytes(Path(runs_dir) / r[C.FOLDER], RESULT_FILE))
        except (OSError, ValueError):
            continue  # reports.load read it a moment ago; a folder changed since is left out
        det = data.get("detection") if isinstance(data, Mapping) else None
        if isinstance(det, Mapping):
            out[str(r[C.RUN_ID])] = dict(det)
    return out


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def chart_marks(data: ReportData, run_id: str) -> dict[str, float | None]:
    """``alarm_s``, ``page_s`` and ``ack_s`` (seconds after the injection) for the chart."""
    det = data.detection.get(run_id) or {}
    return {
        "alarm_s": _num(det.get("time_to_alarm_s")),
        "page_s": _num(det.get("time_to_page_s")),
        "ack_s": _num(det.get("time_to_ack_s")),
    }


def rehearsal(det: Mapping[str, Any]) -> bool:
    """Whether the figures come from the sandbox's stand-ins rather than real services."""
    return str(det.get("source") or "").startswith("sandbox")


def source_label(det: Mapping[str, Any]) -> str:
    source = str(det.get("source") or "unknown")
    if rehearsal(det):
        return f"{source} (rehearsal)"
    if det.get("pager") == "not configured":
        return f"{source} (no pager read)"
    return source


def _judged(value: float | None, target: float | None) -> str:
    if value is None:
        return f"{DASH} (missed)" if target else DASH
    if target is None:
        return f"{value:g} s"
    return f"{value:g} s ({'met' if value <= target else 'missed'})"


NOT_PLAYED = "not played"
NOT_PLAYED_CELL = "not played on this target"


def not_played(det: Mapping[str, Any]) -> bool:
    """Whether no alarm of the record was played on its target (contract v5)."""
    return det.get("outcome") == NOT_PLAYED


def _alarm_cell(det: Mapping[str, Any], target: float | None) -> str:
    if not_played(det):
        return NOT_PLAYED_CELL
    cell = _judged(_num(det.get("time_to_alarm_s")), target)
    names = [
        str(a.get("name"))
        for a in det.get("alarms") or []
        if isinstance(a, Mapping) and a.get("outcome") == NOT_PLAYED
    ]
    return f"{cell}; {', '.join(names)} {NOT_PLAYED_CELL}" if names else cell


def _pager_cell(det: Mapping[str, Any], key: str, target: float | None) -> str:
    if det.get("pager") == "not configured":
        return "not read"
    if not_played(det):
        return NOT_PLAYED_CELL
    return _judged(_num(det.get(key)), target)


def met_every_response(det: Mapping[str, Any]) -> bool:
    """Every recorded §3.1 verdict (alarm, and page and ack where a pager is read) met."""
    verdicts = det.get("verdicts") or []
    return bool(verdicts) and all(
        isinstance(v, Mapping) and v.get("passed") is True for v in verdicts
    )


def rows(data: ReportData) -> pd.DataFrame:
    """One row per (scenario, target): its latest completed run of the quarter that
    recorded detection."""
    runs = data.runs_q
    if runs.empty:
        return pd.DataFrame()
    have = runs.loc[runs[C.RUN_ID].isin(list(data.detection)) & runs[C.STATUS].eq("completed")]
    if have.empty:
        return pd.DataFrame()
    latest = have.sort_values(C.STARTED).groupby([C.SCENARIO, C.TARGET], sort=True).tail(1)
    return latest.sort_values([C.SCENARIO, C.TARGET]).reset_index(drop=True)


def compliance(data: ReportData) -> dict[str, tuple[int, int]]:
    """``{"real": (met, judged), "rehearsal": (met, judged)}`` over the quarter's completed
    runs that recorded detection (a run whose alarms were all not played is not judged:
    ``unplayed``)."""
    out = {"real": (0, 0), "rehearsal": (0, 0)}
    for det in _completed(data):
        if not_played(det):
            continue
        kind = "rehearsal" if rehearsal(det) else "real"
        met, judged = out[kind]
        out[kind] = (met + int(met_every_response(det)), judged + 1)
    return out


def _completed(data: ReportData) -> list[Mapping[str, Any]]:
    """The detection records of the quarter's completed runs."""
    runs = data.runs_q
    if runs.empty:
        return []
    out = []
    for run_id in runs.loc[runs[C.STATUS].eq("completed"), C.RUN_ID]:
        det = data.detection.get(str(run_id))
        if det is not None:
            out.append(det)
    return out


def unplayed(data: ReportData) -> int:
    """How many of the quarter's completed runs had no alarm played on their target."""
    return sum(not_played(det) for det in _completed(data))


def add_section(doc: Doc, data: ReportData) -> None:
    """Append "Detection" to ``doc`` (the report builder's one hook)."""
    doc.heading(2, TITLE)
    doc.add(Para(("Answers: ", Strong(PCI), ".")))
    doc.add(
        Para(
            "Would on-call have been told? Per scenario and target, the latest run of the "
            "quarter: the harness's own observer (which no person sees), the first of the "
            "runbook's alarms, the page and its acknowledgement, in seconds after the fault, "
            "each against the §3.1 response time of the severity the drill declared. A "
            "sandbox figure is a rehearsal (local alarms and pager at a scaled-down period), "
            "not evidence of the real chain."
        )
    )
    table = rows(data)
    if table.empty:
        doc.add(Para(f"No drill of {data.quarter} recorded its detection chain."))
    else:
        body = []
        for r in table.to_dict("records"):
            det = data.detection[str(r[C.RUN_ID])]
            respond = _num(det.get("respond_s"))
            body.append(
                [
                    r[C.SCENARIO],
                    (Mono(str(r[C.RUN_ID])),),
                    source_label(det),
                    f"{det.get('severity') or DASH} (≤ {respond:g} s)" if respond else DASH,
                    _judged(_num(r[C.DETECT]), respond),
                    _alarm_cell(det, respond),
                    _pager_cell(det, "time_to_page_s", respond),
                    _pager_cell(det, "time_to_ack_s", respond),
                    str(det.get("outcome") or DASH),
                ]
            )
        doc.add(
            Table(
                [
                    "Scenario",
                    "Run",
                    "Figures from",
                    "Severity (§3.1 respond)",
                    "Observer detect",
                    "Alarm",
                    "Page",
                    "Ack",
                    "Outcome",
                ],
                body,
                right={4, 5, 6, 7},
            )
        )
    comp = compliance(data)
    met, judged = comp["real"]
    r_met, r_judged = comp["rehearsal"]
    real = (
        f"{met} of {judged} drill(s) on a real target met every §3.1 response time"
        if judged
        else "no drill on a real target measured its detection chain: compliance not shown"
    )
    doc.add(
        Para(
            (
                Strong(f"§3.1 response compliance {data.quarter}: "),
                f"{real}; sandbox rehearsals: {r_met} of {r_judged} met"
                + (
                    f"; {n} drill(s) whose alarms are not played on their target not judged."
                    if (n := unplayed(data))
                    else "."
                ),
            )
        )
    )
    _finding_rows(doc, data)


def _finding_rows(doc: Doc, data: ReportData) -> None:
    """The quarter's D1-D3 findings, one row per run and alarm."""
    f = data.findings
    if f.empty:
        return
    here = f.loc[
        f[C.FINDING_ID].isin(["D1", "D2", "D3"]) & f[C.RUN_ID].isin(list(data.runs_q[C.RUN_ID]))
    ]
    if here.empty:
        doc.add(Para("No alarm was missing, silent or without a page in this quarter's drills."))
        return
    doc.add(
        Table(
            ["Finding", "Run", "What", "Evidence"],
            [
                [r[C.FINDING_ID], (Mono(str(r[C.RUN_ID])),), r[C.SUMMARY], r[C.EVIDENCE] or DASH]
                for r in here.sort_values([C.FINDING_ID, C.RUN_ID]).to_dict("records")
            ],
        )
    )


__all__ = [
    "TITLE",
    "add_section",
    "chart_marks",
    "compliance",
    "load_detection",
    "met_every_response",
    "not_played",
    "unplayed",
    "rehearsal",
    "rows",
]

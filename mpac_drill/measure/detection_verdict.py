"""The detection chain as a verdict of the drill (catalog ``detection.gating``).

A scenario whose ``detection.gating`` is true fails its drill when detection failed: the
run's ``verdicts`` gets a ``detection`` verdict that is met or missed, and counts toward
``passed`` (so ``mpac-drill gate`` fails). When false (the default) the same verdict is
listed with outcome "informational" and does not change ``passed``.

An alarm the target does not model (its row's outcome "not played", contract v5) is not a
failure of detection, nor a success: the verdict is judged on the alarms that were played,
and its reason names the ones that were not. When none was played the verdict is
``inconclusive`` (gating) with ``passed`` false: never a pass on nothing.

Example::

    result["verdicts"].append(dict(drill_verdict(record, gating=True)))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from mpac_drill.measure.detection import NOT_PLAYED, DetectionRecord

#: the outcome of a verdict that is listed but never counted toward ``passed``
INFORMATIONAL = "informational"


class DrillDetectionVerdict(TypedDict):
    """The ``detection`` entry of the run's ``verdicts``: the chain as one pass or fail.

    ``outcome`` is met or missed when the scenario's ``detection.gating`` is true (it counts
    toward ``passed``), "informational" otherwise (listed, never counted)."""

    metric: str  # "detection"
    value: float | None  # time_to_ack_s with a pager, else the first time_to_alarm_s
    target: float  # the declared severity's §3.1 respond_s
    passed: bool
    margin: float | None
    outcome: str  # met | missed | informational
    reason: str
    gating: bool


def drill_verdict(record: DetectionRecord, *, gating: bool) -> DrillDetectionVerdict:
    """Whether detection worked, as a verdict of the drill (pure).

    It failed when a named alarm is missing, never fired (or was already in alarm), fired
    without a page while a pager is read, or the acknowledgement came later than §3.1's
    respond_s (or never)."""
    pager = record.get("pager") is None
    not_played = [a["name"] for a in record["alarms"] if a["outcome"] == NOT_PLAYED]
    if record["outcome"] == NOT_PLAYED:
        target = float(record["respond_s"])
        return {
            "metric": "detection",
            "value": None,
            "target": target,
            "passed": False,
            "margin": None,
            "outcome": "inconclusive" if gating else INFORMATIONAL,
            "reason": f"not played on this target ({record['source']}): "
            + ", ".join(f"alarm {n}" for n in not_played),
            "gating": gating,
        }
    why = [
        f"alarm {a['name']} {a['outcome']}"
        for a in record["alarms"]
        if a["outcome"] not in ("fired", NOT_PLAYED)
    ]
    if pager:
        why += [
            f"alarm {a['name']} fired without a page"
            for a in record["alarms"]
            if a["outcome"] == "fired" and not a["paged"]
        ]
        ack = record["time_to_ack_s"]
        if ack is None:
            why.append("never acknowledged within the bound")
        elif ack > record["respond_s"]:
            why.append(f"acknowledged after {ack:g} s, over §3.1's {record['respond_s']:g} s")
    value = record["time_to_ack_s"] if pager else record["time_to_alarm_s"]
    passed = not why and record["time_to_alarm_s"] is not None
    if record["time_to_alarm_s"] is None and not why:
        why.append("no alarm fired")
    target = float(record["respond_s"])
    reason = "; ".join(why) if why else f"detected ({record['severity']}, {record['source']})"
    if not_played:
        reason += "; not played on this target: " + ", ".join(f"alarm {n}" for n in not_played)
    return {
        "metric": "detection",
        "value": value,
        "target": target,
        "passed": passed,
        "margin": None if value is None else round(target - value, 4),
        "outcome": ("met" if passed else "missed") if gating else INFORMATIONAL,
        "reason": reason,
        "gating": gating,
    }


def counts(verdict: Mapping[str, Any]) -> bool:
    """Whether a verdict of ``result.json`` counts toward ``passed`` (not informational)."""
    return verdict.get("outcome") != INFORMATIONAL


__all__ = ["INFORMATIONAL", "DrillDetectionVerdict", "counts", "drill_verdict"]

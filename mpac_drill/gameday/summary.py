"""The ``gameday`` block of result.json, from the run folder's ``gameday.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mpac_drill.gameday import state

_STEP_KEYS = ("number", "name", "manual", "shown_at", "confirmed_at", "effect_seen_at", "who")


def block(run_dir: Path, rto_s: float | None) -> dict[str, Any]:
    """People time, machine time, §3 response and update compliance, per step and in all."""
    gd = state.read(run_dir)
    steps = []
    for s in gd["steps"]:
        steps.append(
            {
                **{k: s.get(k) for k in _STEP_KEYS},
                "notes": list(s.get("notes") or []),
                "people_s": s.get("people_s"),
                "machine_s": s.get("machine_s"),
            }
        )
    injected = float(gd["injected_ts"])
    first = gd["steps"][0]
    declared = first.get("confirmed_ts")
    targets = gd["targets"]
    response_s = None if declared is None else round(declared - injected, 4)
    end = float(gd.get("finished_ts") or declared or injected)
    updates = [u for u in state.read_updates(run_dir) if declared is None or u["at"] >= declared]
    marks = [declared, *(u["at"] for u in updates), end] if declared is not None else []
    gaps = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    max_gap = round(max(gaps), 4) if gaps else None
    return {
        "plan": gd["plan"],
        "injected_at": state.stamp(injected),
        "severity": gd["severity"],
        "respond_target_s": targets["respond_s"],
        "update_target_s": targets["update_s"],
        "status": gd["status"],
        "response_s": response_s,
        "response_met": None if response_s is None else response_s <= targets["respond_s"],
        "updates": [
            {"at": state.stamp(u["at"]), "who": u["who"], "note": u.get("note", "")}
            for u in updates
        ],
        "update_prompts": len(gd.get("update_prompts") or []),
        "max_update_gap_s": max_gap,
        "update_compliant": None if max_gap is None else max_gap <= targets["update_s"],
        "people_s": round(sum(s["people_s"] or 0 for s in steps), 4),
        "machine_s": round(sum(s["machine_s"] or 0 for s in steps), 4),
        "rto_from_declaration_s": None
        if rto_s is None or response_s is None
        else round(rto_s - response_s, 4),
        "steps": steps,
        **_timeline(gd, injected, declared),
    }


def _timeline(gd: dict[str, Any], injected: float, declared: float | None) -> dict[str, Any]:
    """A resumed game day: its segments (one drill each) and the gaps between them, kept
    apart; RTO over the one timeline (first fault -> users served by the last step), with
    and without the gaps. Nothing for a game day walked in one go."""
    gaps = list(gd.get("gaps") or [])
    if not gaps:
        return {}
    gap_s = round(sum(float(g["gap_s"]) for g in gaps), 4)
    served = gd["steps"][-1].get("effect_seen_ts") if gd.get("status") == "done" else None
    rto = None if served is None else round(float(served) - injected, 4)
    return {
        "segments": [
            {k: seg.get(k) for k in ("run_dir", "injected_at", "from_step")}
            for seg in gd.get("segments", [])
        ],
        "gaps": [{k: g[k] for k in ("step", "from", "to", "gap_s", "reason")} for g in gaps],
        "gap_s": gap_s,
        "rto_timeline_s": rto,
        "rto_timeline_without_gaps_s": None if rto is None else round(rto - gap_s, 4),
        "rto_from_declaration_s": None
        if served is None or declared is None
        else round(float(served) - declared, 4),
    }


__all__ = ["block"]

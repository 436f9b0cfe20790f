"""The sandbox's detection chain as a drill reads it: the daemon's alarms and pager.

The daemon (``mpac_drill/sandbox/monitoring.py``) evaluates the catalog's alarms on metrics
measured from the sandbox's processes, publishes each transition to its SNS topic and opens
pager incidents; ``state.json`` (``detection``) shows them, with epoch times. Reading it is
a file read: no call counts against any API.
"""

from __future__ import annotations

import time
from typing import Any

from mpac_drill.config import Target
from mpac_drill.measure.detection import AlarmReading, DetectionReading, IncidentReading


def settings(target: Target) -> dict[str, Any]:
    """Bound, poll interval, source label and whether a pager is read (always, here)."""
    return {
        "bound_s": float(target.get("alarms.bound_s", 30.0)),
        "poll_s": 0.25,
        "source": "sandbox",
        "pager": True,
    }


def read(state: dict[str, Any] | None, names: list[str]) -> DetectionReading:
    """The named alarms and the pager's incidents from a sandbox's ``state.json``."""
    det = (state or {}).get("detection") or {}
    alarms = {a["name"]: a for a in det.get("alarms", [])}
    out: list[AlarmReading] = []
    for name in names:
        a = alarms.get(name)
        out.append(
            {
                "name": name,
                "exists": a is not None,
                "state": a["state"] if a else None,
                "state_updated_at": a["state_updated_at"] if a else None,
                "history": list(a["history"]) if a else [],
            }
        )
    incidents: list[IncidentReading] = [
        {
            "id": i["id"],
            "title": f"{i['dedup_key']} {i['title']}",
            "triggered_at": float(i["created_at"]),
            "acknowledged_at": i["acknowledged_at"],
        }
        for i in (det.get("pager") or {}).get("incidents", [])
    ]
    return {"alarms": out, "incidents": incidents, "calls": 0}


def read_live(sandbox_dir: Any, names: list[str]) -> DetectionReading:
    """``read`` of the running sandbox's current ``state.json`` (retried on a torn read)."""
    from mpac_drill.sandbox.control import read_state

    for _ in range(5):
        state = read_state(sandbox_dir)
        if state is not None:
            return read(state, names)
        time.sleep(0.05)
    return read(None, names)


__all__ = ["read", "read_live", "settings"]

"""The sandbox's detection chain as a drill reads it: the daemon's alarms and pager, and
the region drill's checks outside the region.

The daemon (``mpac_drill/sandbox/monitoring.py``) evaluates the catalog's alarms on metrics
measured from the sandbox's processes, publishes each transition to its SNS topic and opens
pager incidents; ``state.json`` (``detection``) shows them, with epoch times. Reading it is
a file read: no call counts against any API.

Route53's health-check alarms (``HealthCheckStatus``) are played outside the "region" by
the region drill (``mpac_drill/sandbox/healthcheck.py``, beside its front door): while it
runs for the primary sandbox, its alarms and its pager's incidents are read from it (in
the harness's memory), the daemon's beside them.

An alarm the sandbox does not model is **not played** here (``played: False``), never
missing: a metric the daemon does not measure, or a Route53 health check while no region
drill checks it (or whose ``HealthCheckId`` ``route53.health_checks`` does not map). An
alarm the sandbox models but its target lists in ``alarms.absent`` is missing (D1).
"""

from __future__ import annotations

import time
from typing import Any

from mpac_drill.config import AlarmDefinition, Target, load_catalog
from mpac_drill.measure.detection import AlarmReading, DetectionReading, IncidentReading


def settings(target: Target) -> dict[str, Any]:
    """Bound, poll interval, source label and whether a pager is read (always, here)."""
    return {
        "bound_s": float(target.get("alarms.bound_s", 30.0)),
        "poll_s": 0.25,
        "source": "sandbox",
        "pager": True,
    }


def not_played(
    name: str, external: dict[str, Any] | None, catalog: list[AlarmDefinition] | None = None
) -> str | None:
    """Why the sandbox does not model alarm ``name`` (``None``: it does; absent = missing)."""
    from mpac_drill.sandbox.healthcheck import route53_alarms
    from mpac_drill.sandbox.monitoring import MEASURED

    defs = {a.name: a for a in (catalog if catalog is not None else load_catalog().alarms())}
    d = defs.get(name)
    if d is None:
        return None  # not the catalog's: nothing says what it watches, so it is missing
    if d.metric in MEASURED:
        return None
    if d.name in {a.name for a in route53_alarms(list(defs.values()))}:
        if external is None:
            return (
                "Route53 health checks are played only by the region drill, outside the "
                "region (none runs for this sandbox)"
            )
        return (external.get("not_played") or {}).get(name)
    return f"the sandbox does not measure {d.namespace} {d.metric}"


def read(
    state: dict[str, Any] | None,
    names: list[str],
    external: dict[str, Any] | None = None,
    catalog: list[AlarmDefinition] | None = None,
) -> DetectionReading:
    """The named alarms and the pager's incidents from a sandbox's ``state.json`` and,
    with ``external`` (``ExternalMonitoring.state()``), from the checks outside the region."""
    det = (state or {}).get("detection") or {}
    alarms = {a["name"]: a for a in det.get("alarms", [])}
    outside = {a["name"]: a for a in (external or {}).get("alarms", [])}
    out: list[AlarmReading] = []
    for name in names:
        a = outside.get(name) or alarms.get(name)
        why = None if a is not None else not_played(name, external, catalog)
        if why is not None:
            out.append(
                {
                    "name": name,
                    "exists": False,
                    "state": None,
                    "state_updated_at": None,
                    "history": [],
                    "played": False,
                    "not_played": why,
                }
            )
            continue
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
            "id": i["id"] if where == "daemon" else f"R53-{i['id']}",
            "title": f"{i['dedup_key']} {i['title']}",
            "triggered_at": float(i["created_at"]),
            "acknowledged_at": i["acknowledged_at"],
        }
        for where, source in (("daemon", det), ("outside", external or {}))
        for i in (source.get("pager") or {}).get("incidents", [])
    ]
    return {"alarms": out, "incidents": incidents, "calls": 0}


def read_live(sandbox_dir: Any, names: list[str]) -> DetectionReading:
    """``read`` of the running sandbox's current ``state.json`` (retried on a torn read; a
    sandbox whose region was lost keeps its last one) and of the region drill's checks
    outside the region, when they run for it."""
    from mpac_drill.sandbox.control import read_state
    from mpac_drill.sandbox.healthcheck import active

    monitor = active(sandbox_dir)
    external = monitor.state() if monitor is not None else None
    catalog = load_catalog().alarms()
    for _ in range(5):
        state = read_state(sandbox_dir)
        if state is not None:
            return read(state, names, external, catalog)
        time.sleep(0.05)
    return read(None, names, external, catalog)


__all__ = ["not_played", "read", "read_live", "settings"]

"""The detection chain in a drill: start the watch before the fault, record it after.

``probes/detection.py`` calls these with the drill and its platform. The watch reads the
platform from the injection on (``DetectionWatch``), never holding up the observer or the
probes; ``finish_watch`` waits for it within its bound and writes ``drill.record.detection``
and its findings. A scenario whose catalog row names no detection records nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mpac_drill.measure.detection import DetectionWatch, figures, findings, wait_for

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext


def _names(ctx: DrillContext) -> list[str]:
    det = ctx.scenario.detection
    return [a.name for a in det.alarms] if det else []


def start_watch(ctx: DrillContext, platform: Any) -> dict[str, Any]:
    """Start the watch (a dry run plans its calls instead)."""
    names = _names(ctx)
    if not names:
        return {"watching": [], "reason": "the catalog names no detection for this scenario"}
    plan = platform.detection_settings()
    watch = DetectionWatch(
        read=lambda since: platform.read_detection(names, since),
        injected_at=lambda: ctx.injected_utc.timestamp() if ctx.injected_utc else None,
        bound_s=float(plan["bound_s"]),
        poll_s=float(plan["poll_s"]),
        pager=bool(plan["pager"]),
        max_readings=int(plan.get("max_readings", 0)),
        source=str(plan["source"]),
    )
    if ctx.dry_run:
        platform.read_detection(names, 0.0)  # records one reading's calls
        ctx.plan(
            "watch detection",
            alarms=names,
            readings=watch.planned_readings(),
            every_s=watch.poll_s,
            bound_s=watch.bound_s,
            calls_per_reading=plan.get("calls_per_reading", 0),
        )
        return {"watching": names, "dry_run": True}
    ctx.handles.detection_watch = watch
    watch.start()
    return {"watching": names, "bound_s": watch.bound_s, "poll_s": watch.poll_s}


def finish_watch(ctx: DrillContext) -> dict[str, Any]:
    """Wait for the watch (bounded), record ``detection`` and its findings."""
    watch: DetectionWatch | None = ctx.handles.detection_watch
    det = ctx.scenario.detection
    if watch is None or det is None or ctx.injected_utc is None:
        return {"recorded": False}
    ctx.phase("waiting for alarm, page and acknowledgement")
    reading = wait_for(watch)
    watch.stop()
    if watch.error:
        ctx.note(f"detection: reading the alarms failed: {watch.error}")
    if reading is None:
        return {"recorded": False}
    response = ctx.catalog.response_targets.get(det.severity)
    record = figures(
        {**reading, "calls": watch.calls},
        injected_at=ctx.injected_utc.timestamp(),
        bound_s=watch.bound_s,
        severity=det.severity,
        respond_s=response.respond_s if response else 0.0,
        update_s=response.update_s if response else 0.0,
        source=watch.source,  # the platform's own label: no target-kind branch here
        pager=watch.pager,
    )
    ctx.record.detection = record
    ctx.record.findings.extend(findings(record, ctx.scenario.runbook_section))
    return {
        "recorded": True,
        "outcome": record["outcome"],
        "time_to_alarm_s": record["time_to_alarm_s"],
        "time_to_page_s": record["time_to_page_s"],
        "time_to_ack_s": record["time_to_ack_s"],
    }


__all__ = ["finish_watch", "start_watch"]

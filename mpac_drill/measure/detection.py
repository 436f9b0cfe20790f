"""The detection chain, measured: alarm → page → acknowledgement (runbook "Detection", §3).

One definition for every target. The platform reads what its monitoring saw
(``Platform.read_detection``: each named alarm's state and transitions, the pager's
incidents with their trigger and acknowledge times, all as epoch seconds); this module
watches it from the injection on (a thread, so the observer and probes are not held up),
bounded and paced, and turns the last reading into ``result.json``'s ``detection``:

- per alarm ``time_to_alarm_s`` (injection → the state became ALARM; ``null`` if it did not
  within the bound) and ``time_to_ok_s`` (→ OK again after that);
- ``time_to_page_s`` (→ the first incident of one of the alarms was triggered) and
  ``time_to_ack_s`` (→ acknowledged), each judged against the declared severity's §3.1
  response time, as is the first alarm;
- findings: a named alarm that does not exist (D1), never fired (D2), or fired without a
  page (D3).

A platform may say an alarm is **not played** on it (``AlarmReading`` ``played: False``
with ``not_played``, the reason): the target does not model that alarm at all (the sandbox
and a metric it does not measure). Such an alarm is neither missing (no D1) nor silent:
its row's outcome is "not played", with an ``inconclusive`` verdict of its own (``passed``
false: never a pass on nothing); the chain's figures come from the alarms that were played,
and a record whose every alarm was not played has outcome "not played" (contract v5).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

from mpac_drill.measure.record import Finding


class AlarmReading(TypedDict):
    """One named alarm as the platform's monitoring shows it."""

    name: str
    exists: bool
    state: str | None
    state_updated_at: float | None
    #: transitions, oldest first: {"at": epoch, "from": state, "to": state}
    history: list[dict[str, Any]]
    #: False: the platform does not model this alarm (it is not played on this target;
    #: ``exists`` is then False too); absent or True: read as any other
    played: NotRequired[bool]
    not_played: NotRequired[str]  # why it is not played here (the platform's words)


class IncidentReading(TypedDict):
    """One page: an incident of the pager (PagerDuty) with its log's times."""

    id: str
    title: str
    triggered_at: float
    acknowledged_at: float | None


class DetectionReading(TypedDict):
    alarms: list[AlarmReading]
    incidents: list[IncidentReading]
    calls: int  # API calls this reading made (AWS: DescribeAlarms, PagerDuty GETs)


class AlarmFigures(TypedDict):
    name: str
    exists: bool
    state_at_injection: str | None
    time_to_alarm_s: float | None
    time_to_ok_s: float | None
    paged: bool
    outcome: str  # fired | never fired | missing | already in alarm | not played
    played: NotRequired[bool]  # contract v5: False when the target does not model it
    not_played: NotRequired[str]  # contract v5: why


class DetectionVerdict(TypedDict):
    metric: str
    value: float | None
    target: float
    passed: bool
    outcome: str  # met | missed | inconclusive (an alarm not played on this target, v5)
    reason: NotRequired[str]


#: the outcome of an alarm (and of a record whose every alarm is) not modelled on the target
NOT_PLAYED = "not played"


class DetectionRecord(TypedDict):
    """``result.json`` ``detection`` (schema_version 3)."""

    source: str  # where the figures come from: sandbox | aws | aws+pagerduty
    severity: str
    respond_s: float
    update_s: float
    bound_s: float
    alarms: list[AlarmFigures]
    time_to_alarm_s: float | None
    time_to_page_s: float | None
    time_to_ack_s: float | None
    outcome: str  # detected | missed detection | not paged | not acknowledged | not played
    verdicts: list[DetectionVerdict]
    incidents: list[dict[str, Any]]
    calls: int
    pager: NotRequired[str]  # "not configured" when no pager is read


def _after(t: float | None, since: float) -> float | None:
    return None if t is None else round(t - since, 3)


def _matches(incident: IncidentReading, alarm: str) -> bool:
    return alarm in incident["title"] or incident["id"].endswith(alarm)


def figures(
    reading: DetectionReading,
    *,
    injected_at: float,
    bound_s: float,
    severity: str,
    respond_s: float,
    update_s: float,
    source: str,
    pager: bool = True,
) -> DetectionRecord:
    """The detection record from one reading (pure: same reading, same record)."""
    horizon = injected_at + bound_s
    rows: list[AlarmFigures] = []
    paged_at: float | None = None
    acked_at: float | None = None
    incidents = [i for i in reading["incidents"] if injected_at <= i["triggered_at"] <= horizon]
    for a in reading["alarms"]:
        if a.get("played") is False:
            rows.append(
                {
                    "name": a["name"],
                    "exists": False,
                    "state_at_injection": None,
                    "time_to_alarm_s": None,
                    "time_to_ok_s": None,
                    "paged": False,
                    "outcome": NOT_PLAYED,
                    "played": False,
                    "not_played": str(a.get("not_played") or "not modelled on this target"),
                }
            )
            continue
        hist = sorted(a["history"], key=lambda h: float(h["at"]))
        before = [h for h in hist if float(h["at"]) < injected_at]
        state_then = before[-1]["to"] if before else (a["state"] if not hist else hist[0]["from"])
        if not a["exists"]:
            state_then = None
        fired = next(
            (
                float(h["at"])
                for h in hist
                if h["to"] == "ALARM" and injected_at <= float(h["at"]) <= horizon
            ),
            None,
        )
        ok = (
            next(
                (
                    float(h["at"])
                    for h in hist
                    if h["to"] == "OK" and fired <= float(h["at"]) <= horizon
                ),
                None,
            )
            if fired is not None
            else None
        )
        mine = [i for i in incidents if _matches(i, a["name"])]
        if not a["exists"]:
            outcome = "missing"
        elif fired is not None:
            outcome = "fired"
        elif state_then == "ALARM":
            outcome = "already in alarm"
        else:
            outcome = "never fired"
        rows.append(
            {
                "name": a["name"],
                "exists": a["exists"],
                "state_at_injection": state_then,
                "time_to_alarm_s": _after(fired, injected_at),
                "time_to_ok_s": _after(ok, injected_at),
                "paged": bool(mine),
                "outcome": outcome,
            }
        )
        for i in mine:
            if paged_at is None or i["triggered_at"] < paged_at:
                paged_at, acked_at = i["triggered_at"], i["acknowledged_at"]
    alarm_times = [r["time_to_alarm_s"] for r in rows if r["time_to_alarm_s"] is not None]
    first_alarm = min(alarm_times) if alarm_times else None
    to_page, to_ack = _after(paged_at, injected_at), _after(acked_at, injected_at)
    if to_ack is not None and to_ack > bound_s:
        to_ack = None
    if rows and all(r["outcome"] == NOT_PLAYED for r in rows):
        outcome = NOT_PLAYED
    elif first_alarm is None:
        outcome = "missed detection"
    elif pager and to_page is None:
        outcome = "not paged"
    elif pager and to_ack is None:
        outcome = "not acknowledged"
    else:
        outcome = "detected"
    judged = [("time_to_alarm_s", first_alarm)]
    if pager:
        judged += [("time_to_page_s", to_page), ("time_to_ack_s", to_ack)]
    verdicts: list[DetectionVerdict] = [
        {
            "metric": metric,
            "value": value,
            "target": respond_s,
            "passed": value is not None and value <= respond_s,
            "outcome": "met" if value is not None and value <= respond_s else "missed",
        }
        if outcome != NOT_PLAYED
        else {  # nothing was played: nothing is judged, and nothing passes
            "metric": metric,
            "value": None,
            "target": respond_s,
            "passed": False,
            "outcome": "inconclusive",
            "reason": "no alarm of this chain is played on this target",
        }
        for metric, value in judged
    ]
    verdicts += [
        {
            "metric": f"alarm {r['name']}",
            "value": None,
            "target": respond_s,
            "passed": False,
            "outcome": "inconclusive",
            "reason": f"not played on this target: {r.get('not_played', '')}",
        }
        for r in rows
        if r["outcome"] == NOT_PLAYED
    ]
    record: DetectionRecord = {
        "source": source,
        "severity": severity,
        "respond_s": respond_s,
        "update_s": update_s,
        "bound_s": bound_s,
        "alarms": rows,
        "time_to_alarm_s": first_alarm,
        "time_to_page_s": to_page,
        "time_to_ack_s": to_ack,
        "outcome": outcome,
        "verdicts": verdicts,
        "incidents": [
            {
                "id": i["id"],
                "title": i["title"][:200],
                "time_to_page_s": _after(i["triggered_at"], injected_at),
                "time_to_ack_s": _after(i["acknowledged_at"], injected_at),
            }
            for i in incidents
        ],
        "calls": reading["calls"],
    }
    if not pager:
        record["pager"] = "not configured"
    return record


def findings(record: DetectionRecord, section: str) -> list[Finding]:
    """D1 (alarm missing), D2 (never fired), D3 (fired without a page). An alarm not
    played on the target is none of these: no finding."""
    out: list[Finding] = []
    for a in record["alarms"]:
        if a["outcome"] == "missing":
            out.append(
                {
                    "id": "D1",
                    "section": section,
                    "summary": f"the runbook's detection names alarm {a['name']}, which does "
                    "not exist",
                    "evidence": f"{a['name']} not found on {record['source']}: missed detection",
                }
            )
        elif a["outcome"] in ("never fired", "already in alarm"):
            why = (
                "was already in ALARM before the fault (it cannot signal this one)"
                if a["outcome"] == "already in alarm"
                else f"stayed {a['state_at_injection'] or 'unknown'}"
            )
            out.append(
                {
                    "id": "D2",
                    "section": section,
                    "summary": f"alarm {a['name']} never fired during the failure",
                    "evidence": f"{a['name']} {why} for {record['bound_s']:g} s after the "
                    f"injection on {record['source']}",
                }
            )
        elif a["outcome"] == "fired" and not a["paged"] and record.get("pager") is None:
            out.append(
                {
                    "id": "D3",
                    "section": section,
                    "summary": f"alarm {a['name']} fired without a page",
                    "evidence": f"ALARM {a['time_to_alarm_s']} s after the injection; no "
                    f"incident within {record['bound_s']:g} s",
                }
            )
    return out


def chain_complete(reading: DetectionReading, injected_at: float, pager: bool) -> bool:
    """Whether nothing more can come: every existing alarm fired and is OK again, and
    (with a pager) an incident for it was acknowledged."""
    for a in reading["alarms"]:
        if not a["exists"]:
            continue
        after = [h for h in a["history"] if float(h["at"]) >= injected_at]
        fired = any(h["to"] == "ALARM" for h in after)
        if not fired or after[-1]["to"] != "OK":
            return False
        if pager and not any(
            _matches(i, a["name"])
            and i["triggered_at"] >= injected_at
            and i["acknowledged_at"] is not None
            for i in reading["incidents"]
        ):
            return False
    return True


@dataclass
class DetectionWatch:
    """Polls ``read`` from the injection until the chain is complete or ``bound_s`` has
    passed; at most ``max_calls`` readings, ``poll_s`` apart. A thread of its own."""

    read: Callable[[float], DetectionReading]
    injected_at: Callable[[], float | None]  # epoch of the injection, None until then
    bound_s: float
    poll_s: float
    pager: bool
    max_readings: int = 0  # 0: bound_s / poll_s + 2
    source: str = ""  # where the figures come from (the platform's label: sandbox, aws, ...)
    last: DetectionReading | None = None
    readings: int = 0
    error: str | None = None
    calls: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def planned_readings(self) -> int:
        return self.max_readings or int(self.bound_s / self.poll_s) + 2

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="detection-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while (since := self.injected_at()) is None:
            if self._stop.wait(0.05):
                return
        deadline = since + self.bound_s
        while self.readings < self.planned_readings():
            try:
                reading = self.read(since)
            except Exception as exc:  # noqa: BLE001 - reported in the record's notes
                self.error = str(exc) or exc.__class__.__name__
                return
            self.last, self.readings = accumulated(self.last, reading), self.readings + 1
            self.calls += reading["calls"]
            if chain_complete(reading, since, self.pager) or time.time() >= deadline:
                return
            if self._stop.wait(min(self.poll_s, max(0.0, deadline - time.time()) + 0.05)):
                return


def accumulated(before: DetectionReading | None, now: DetectionReading) -> DetectionReading:
    """``now`` with each alarm's transitions seen by earlier readings kept: where an alarm's
    own history cannot be read (a role without ``DescribeAlarmHistory``, moto), its state at
    each reading is all there is, and an ALARM that was OK again by the last reading would
    otherwise be lost."""
    if before is None:
        return now
    seen = {a["name"]: a["history"] for a in before["alarms"]}
    alarms: list[AlarmReading] = []
    for a in now["alarms"]:
        merged_history: dict[tuple[float, str], dict[str, Any]] = {}
        for h in [*seen.get(a["name"], []), *a["history"]]:
            key = (round(float(h["at"]), 3), str(h["to"]))
            if key not in merged_history or merged_history[key].get("from") is None:
                merged_history[key] = h
        alarms.append({**a, "history": sorted(merged_history.values(), key=lambda h: h["at"])})
    return {**now, "alarms": alarms}


def wait_for(watch: DetectionWatch, extra_s: float = 5.0) -> DetectionReading | None:
    """Join a watch (bounded by its own bound) and return its last reading."""
    since = watch.injected_at()
    remaining = watch.bound_s if since is None else max(0.0, since + watch.bound_s - time.time())
    watch.join(remaining + extra_s)
    return watch.last


def merged(readings: Sequence[DetectionReading]) -> DetectionReading:
    """Several readings as one (the calls summed)."""
    out: DetectionReading = {"alarms": [], "incidents": [], "calls": 0}
    for r in readings:
        out["alarms"] += r["alarms"]
        out["incidents"] += r["incidents"]
        out["calls"] += r["calls"]
    return out


__all__ = [
    "NOT_PLAYED",
    "AlarmReading",
    "accumulated",
    "DetectionReading",
    "DetectionRecord",
    "DetectionWatch",
    "IncidentReading",
    "chain_complete",
    "figures",
    "findings",
    "wait_for",
]

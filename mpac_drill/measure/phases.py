"""Where recovery time goes: one drill's RTO split into phases, and recovery to the SLO.

Milestones, each in seconds after the injection instant with the evidence it came from
(``None`` and ``seen: false`` when it was not seen: never invented):

- ``first_failed_sample``: the observer's first failed sample (``detect_s``);
- ``platform_recovered``: the platform's own event (``Platform.recovery_events``): an ECS
  replacement task running, the new RDS primary accepting writes, a new Redis primary, a
  region drill's last DR step;
- ``endpoint_serving``: the observer's recovery (``rto_s``: K healthy samples);
- ``first_good_user_request``: the first second of locust's history, after the first one
  with failures above the pre-fault share, whose failure share is back to it (1 s steps);
- ``first_canary_ack``: the canary's first acknowledged write after its longest gap in
  acknowledgements (its outage), or its first after the fault when it never stalled;
- ``recovered_to_slo``: the first observer sample at or after ``rto_s`` that starts
  ``slo.window_s`` seconds of samples with p95 latency under ``slo.p95_ms`` and a failure
  share no higher than before the fault (``rto_slo_s``).

Phases are contiguous and never negative: ``detect`` (0 → first failed sample),
``platform`` (→ platform recovered), ``endpoint`` (→ ``rto_s``) sum to ``rto_s``; a phase
whose milestone was not seen has no duration and the next seen phase starts where the last
seen one ended. A milestone outside its place (a platform event after the endpoint served)
is clamped into the chain for the phase, and keeps its own time among the milestones.
``slo`` runs from ``rto_s`` to ``rto_slo_s`` and may extend past the RTO.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext
    from mpac_drill.platform import RecoveryEvent

#: The phases that sum to ``rto_s``, each ending at its milestone.
CHAIN = (
    ("detect", "first_failed_sample"),
    ("platform", "platform_recovered"),
    ("endpoint", "endpoint_serving"),
)
SLO_PHASE = ("slo", "recovered_to_slo")
MILESTONES = (
    "first_failed_sample",
    "platform_recovered",
    "endpoint_serving",
    "first_good_user_request",
    "first_canary_ack",
    "recovered_to_slo",
)
#: which of the platform's recovery events ends the platform phase, by the fault's action
_PLATFORM_EVENT = {
    "ecs": "task_running",
    "rds": "database_promoted",
    "elasticache": "cache_promoted",
}
_DIGITS = 4


class Milestone(TypedDict):
    name: str
    t_s: float | None  # seconds after the injection; None: not seen
    seen: bool
    evidence: str


class Phase(TypedDict):
    name: str
    start_s: float
    end_s: float | None
    duration_s: float | None
    seen: bool
    evidence: str


class PhasesRecord(TypedDict):
    """result.json ``phases`` (contract version 4)."""

    platform: str
    rto_s: float | None
    rto_slo_s: float | None
    phases: list[Phase]
    milestones: list[Milestone]


class TimedSample(TypedDict):
    t: float  # seconds after the injection
    service: str
    ok: bool
    latency_ms: float


def milestone(name: str, t_s: float | None, evidence: str) -> Milestone:
    seen = t_s is not None
    return Milestone(
        name=name, t_s=None if t_s is None else round(t_s, _DIGITS), seen=seen, evidence=evidence
    )


# ---------------------------------------------------------------- the chain


def chain_phases(rto_s: float | None, marks: dict[str, Milestone]) -> list[Phase]:
    """The phases ending at ``rto_s`` (contiguous, never negative), then ``slo``."""
    out: list[Phase] = []
    prev = 0.0
    for phase, name in CHAIN:
        mark = marks.get(name)
        t = None if mark is None else mark["t_s"]
        if t is None:
            why = mark["evidence"] if mark else "no evidence"
            out.append(
                Phase(
                    name=phase,
                    start_s=prev,
                    end_s=None,
                    duration_s=None,
                    seen=False,
                    evidence=f"not seen: {why}",
                )
            )
            continue
        end = max(t, prev)
        if rto_s is not None:
            end = min(end, rto_s)
        end = round(end, _DIGITS)
        evidence = str(mark["evidence"]) if mark else ""
        if end != round(t, _DIGITS):
            evidence += f" (at {t:.3f} s: placed at {end:.3f} s in the chain)"
        out.append(
            Phase(
                name=phase,
                start_s=prev,
                end_s=end,
                duration_s=round(end - prev, _DIGITS),
                seen=True,
                evidence=evidence,
            )
        )
        prev = end
    slo = marks.get(SLO_PHASE[1])
    slo_t = None if slo is None else slo["t_s"]
    if rto_s is not None and slo_t is not None:
        out.append(
            Phase(
                name=SLO_PHASE[0],
                start_s=round(rto_s, _DIGITS),
                end_s=slo_t,
                duration_s=round(max(slo_t - rto_s, 0.0), _DIGITS),
                seen=True,
                evidence=str(slo["evidence"]) if slo else "",
            )
        )
    else:
        out.append(
            Phase(
                name=SLO_PHASE[0],
                start_s=round(rto_s or 0.0, _DIGITS),
                end_s=None,
                duration_s=None,
                seen=False,
                evidence=f"not seen: {slo['evidence'] if slo else 'no evidence'}",
            )
        )
    return out


def chain_sum(phases: Sequence[Phase]) -> float:
    """The seen phases that end at ``rto_s``, summed (equal to ``rto_s`` to 1e-9)."""
    names = {p for p, _ in CHAIN}
    return math.fsum(p["duration_s"] or 0.0 for p in phases if p["name"] in names and p["seen"])


# ---------------------------------------------------------------- recovered to SLO


def p95(values: Sequence[float]) -> float:
    """The nearest-rank 95th percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def slo_recovery(
    samples: Sequence[TimedSample],
    *,
    rto_s: float | None,
    p95_ms: float,
    window_s: float,
) -> tuple[float | None, str]:
    """``(rto_slo_s, evidence)``: the first sample at or after ``rto_s`` starting
    ``window_s`` seconds in which every service's samples have a p95 latency of at most
    ``p95_ms`` and a failure share no higher than that service's before the fault (the
    worst service decides, as for ``rto_s``). ``None`` when not recovered, or not observed
    long enough."""
    if rto_s is None:
        return None, "the endpoint never served again"
    ordered = sorted(samples, key=lambda s: s["t"])
    services = sorted({s["service"] for s in ordered})
    baseline: dict[str, float] = {}
    for name in services:
        before = [s for s in ordered if s["t"] < 0 and s["service"] == name]
        baseline[name] = sum(not s["ok"] for s in before) / len(before) if before else 0.0
    after = [s for s in ordered if s["t"] >= rto_s - 1e-9]
    if not after:
        return None, "no sample after the endpoint served again"
    last = after[-1]["t"]
    hi = 0
    for lo, start in enumerate(after):
        t0 = start["t"]
        if t0 + window_s > last:
            break
        hi = max(hi, lo)
        while hi < len(after) and after[hi]["t"] < t0 + window_s:
            hi += 1
        worst = _worst_service(after[lo:hi], baseline, p95_ms)
        if worst is None:
            return t0, (
                f"observer: {hi - lo} samples over {t0:.2f}-{t0 + window_s:.2f} s, every "
                f"service's p95 <= SLO {p95_ms:g} ms and failures at its pre-fault share"
            )
    return None, (
        f"each service's p95 under {p95_ms:g} ms with failures at the pre-fault share for "
        f"{window_s:g} s was not observed by {last:.2f} s"
    )


def _worst_service(
    window: Sequence[TimedSample], baseline: dict[str, float], p95_ms: float
) -> str | None:
    """The first service of ``window`` out of its SLO, ``None`` when all are within."""
    by_service: dict[str, list[TimedSample]] = {}
    for s in window:
        by_service.setdefault(s["service"], []).append(s)
    for name, rows in sorted(by_service.items()):
        share = sum(not s["ok"] for s in rows) / len(rows)
        if share > baseline.get(name, 0.0) + 1e-12:
            return name
        if p95([s["latency_ms"] for s in rows]) > p95_ms:
            return name
    return None


# ---------------------------------------------------------------- users and canary


def first_good_second(
    seconds: Sequence[tuple[float, int, int]],
) -> tuple[float | None, str]:
    """From locust's aggregated history ``(t_s of the second's start, requests, failures)``:
    the first second, after the first one failing above the pre-fault share, whose share is
    back to it. ``None`` when users saw no failure or were never served again."""
    ordered = sorted(seconds)
    before = [(r, f) for t, r, f in ordered if t + 1 <= 0]
    req = sum(r for r, _ in before)
    baseline = sum(f for _, f in before) / req if req else 0.0
    after = [row for row in ordered if row[0] + 1 > 0]
    failing = next((i for i, (_, r, f) in enumerate(after) if r and f / r > baseline), None)
    if failing is None:
        return None, f"locust: no second with failures above the pre-fault {baseline:.1%}"
    for t, r, f in after[failing + 1 :]:
        if r and f / r <= baseline:
            return max(t, 0.0), (
                f"locust history: second starting {t:.2f} s, {r - f} of {r} requests good "
                f"(failure share {f / r:.1%} <= pre-fault {baseline:.1%}; 1 s steps)"
            )
    return None, "locust: users were not served as before the fault by the end of the load"


def read_user_seconds(path: Path, injected: datetime) -> list[tuple[float, int, int]]:
    """``load_per_second.csv``'s aggregated rows as ``(t_s, requests, failures)``."""
    rows: list[tuple[float, int, int]] = []
    try:
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("name") != "Aggregated":
                    continue
                at = datetime.fromisoformat(row["t_utc"])
                t = (at - injected).total_seconds()
                rows.append((t, int(row["requests"]), int(row["failures"])))
    except (OSError, KeyError, ValueError, TypeError):
        return []
    return rows


def first_canary_ack(acks: Iterable[float], interval_s: float) -> tuple[float | None, str]:
    """From the canary's acknowledgement times after the fault (seconds after it): the
    first after its longest gap when that gap exceeds three write intervals (its outage),
    else the first after the fault."""
    times = sorted(t for t in acks if t >= 0)
    if not times:
        return None, "canary: no write acknowledged after the fault"
    gaps = [(times[0], times[0])] + [(b - a, b) for a, b in zip(times, times[1:], strict=False)]
    gap, end = max(gaps)
    if gap > 3 * interval_s:
        return end, f"canary: first write acknowledged after a {gap:.2f} s gap in acknowledgements"
    return times[0], (
        f"canary: never stalled (longest gap {gap:.2f} s); first acknowledgement after the fault"
    )


# ---------------------------------------------------------------- the platform's event


def platform_milestone(
    action: str, events: Sequence[RecoveryEvent], injected: datetime, service: str | None
) -> Milestone:
    """The platform's recovery event that ends the platform phase (``None``: not seen)."""
    prefix = action.split(":", 1)[0]
    kind = _PLATFORM_EVENT.get(prefix, "region_step")
    chosen = [e for e in events if e["kind"] == kind]
    if kind == "task_running" and service:
        chosen = [
            e for e in chosen if "/" not in e["resource"] or e["resource"].startswith(f"{service}/")
        ]
    if not chosen:
        return milestone("platform_recovered", None, f"the platform reported no {kind} event")
    event = chosen[-1] if kind == "region_step" else chosen[0]
    at = datetime.fromisoformat(event["at"])
    return milestone("platform_recovered", (at - injected).total_seconds(), event["evidence"])


# ---------------------------------------------------------------- one drill


def build_phases(
    *,
    platform: str,
    detect_s: float | None,
    rto_s: float | None,
    samples: Sequence[TimedSample],
    platform_mark: Milestone,
    user_seconds: Sequence[tuple[float, int, int]] | None,
    canary_acks: Sequence[float] | None,
    canary_interval_s: float,
    slo_p95_ms: float | None,
    slo_window_s: float,
) -> PhasesRecord:
    """The phases record of one drill from its figures (pure)."""
    marks = {
        "first_failed_sample": milestone(
            "first_failed_sample",
            detect_s,
            "observer: first failed sample" if detect_s is not None else "no sample failed",
        ),
        "platform_recovered": platform_mark,
        "endpoint_serving": milestone(
            "endpoint_serving",
            rto_s,
            "observer: first of K consecutive healthy samples of every service (rto_s)"
            if rto_s is not None
            else "not recovered within the bound",
        ),
    }
    if user_seconds is None:
        marks["first_good_user_request"] = milestone("first_good_user_request", None, "no load")
    else:
        marks["first_good_user_request"] = milestone(
            "first_good_user_request", *first_good_second(user_seconds)
        )
    if canary_acks is None:
        marks["first_canary_ack"] = milestone("first_canary_ack", None, "no canary ran")
    else:
        marks["first_canary_ack"] = milestone(
            "first_canary_ack", *first_canary_ack(canary_acks, canary_interval_s)
        )
    if slo_p95_ms is None:
        marks["recovered_to_slo"] = milestone(
            "recovered_to_slo", None, "the target sets no slo.p95_ms"
        )
    else:
        marks["recovered_to_slo"] = milestone(
            "recovered_to_slo",
            *slo_recovery(samples, rto_s=rto_s, p95_ms=slo_p95_ms, window_s=slo_window_s),
        )
    return PhasesRecord(
        platform=platform,
        rto_s=rto_s,
        rto_slo_s=marks["recovered_to_slo"]["t_s"],
        phases=chain_phases(rto_s, marks),
        milestones=[marks[name] for name in MILESTONES],
    )


def timed_samples(drill: DrillContext) -> list[TimedSample]:
    """The observer's samples relative to the injection, with their latency."""
    assert drill.injected_mono is not None
    t0 = drill.injected_mono
    return [
        TimedSample(t=s["mono"] - t0, service=s["service"], ok=s["ok"], latency_ms=s["latency_ms"])
        for s in drill.observer.raw()
    ]


def slo_settings(drill: DrillContext) -> tuple[float | None, float]:
    p95_ms = drill.target.get("slo.p95_ms")
    window = drill.target.get("slo.window_s")
    return (
        None if p95_ms is None else float(p95_ms),
        2.0 if window is None else float(window),
    )


def measure_phases(drill: DrillContext, events: Sequence[RecoveryEvent]) -> PhasesRecord | None:
    """The drill's phases (``None`` when nothing was injected or observed), recorded on the
    drill (``record.phases``, ``measurements["rto_slo_s"]``)."""
    if drill.dry_run or drill.observer is None or drill.injected_utc is None:
        return None
    if drill.injected_mono is None:
        return None
    m = drill.measurements
    injected = drill.injected_utc
    t0 = drill.injected_mono
    load_file = drill.run_dir / "load_per_second.csv"
    canary: Any = drill.canary
    p95_ms, window = slo_settings(drill)
    record = build_phases(
        platform=str(getattr(drill.platform, "kind", drill.target.kind)),
        detect_s=m.get("detect_s"),
        rto_s=m.get("rto_s"),
        samples=timed_samples(drill),
        platform_mark=platform_milestone(
            str(drill.fault.get("action", "")), events, injected, drill.fault.get("service")
        ),
        user_seconds=read_user_seconds(load_file, injected) if load_file.exists() else None,
        canary_acks=None
        if canary is None
        else [w.ack_mono - t0 for w in list(canary.ledger) if w.ack_mono is not None],
        canary_interval_s=float(drill.target.get("drill.canary_interval_s", 0.05)),
        slo_p95_ms=p95_ms,
        slo_window_s=window,
    )
    drill.record.phases = record
    m["rto_slo_s"] = record["rto_slo_s"]
    return record


__all__ = [
    "CHAIN",
    "MILESTONES",
    "Milestone",
    "Phase",
    "PhasesRecord",
    "TimedSample",
    "build_phases",
    "chain_phases",
    "chain_sum",
    "first_canary_ack",
    "first_good_second",
    "measure_phases",
    "p95",
    "platform_milestone",
    "read_user_seconds",
    "slo_recovery",
    "slo_settings",
    "timed_samples",
]

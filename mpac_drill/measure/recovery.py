"""Time to detect and time to recover, from the observer's samples.

``measure_rto`` is the experiment-facing probe: it waits (bounded) until every service is
healthy again after the fault, then computes the figures from the observer's timeline.
``compute_recovery`` is the pure function behind it, tested against hand-made timelines.

Definitions (DESIGN.md "What one drill measures"):
- ``detect_s``: injection → first failed sample of any service.
- ``rto_s``: injection → first sample of the run of K consecutive healthy samples that
  ends each service's outage (the *last* outage, so a flap after a false recovery counts);
  the largest over all services. ``0.0`` when no sample failed; ``None`` when some service
  was still failing at the end of the observation.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext


class Sample(TypedDict):
    t: float  # seconds since injection (monotonic clock)
    service: str
    ok: bool


class Recovery(TypedDict):
    detect_s: float | None
    rto_s: float | None
    per_service: dict[str, float | None]
    samples: int


def service_recovery(samples: Sequence[Sample], k: int) -> tuple[float | None, float | None]:
    """``(detect, recovered)`` for one service's samples in time order (t relative to fault).

    ``recovered`` is ``0.0`` when no sample after the fault failed, ``None`` when the last K
    samples are not all healthy.
    """
    after = [s for s in samples if s["t"] >= 0]
    failed = [i for i, s in enumerate(after) if not s["ok"]]
    if not failed:
        return None, 0.0
    detect = after[failed[0]]["t"]
    tail = after[failed[-1] + 1 :]
    if len(tail) < k:
        return round(detect, 4), None
    return round(detect, 4), round(tail[0]["t"], 4)


def compute_recovery(samples: Iterable[Sample], k: int) -> Recovery:
    """Detection and recovery over all services (see module docstring)."""
    by_service: dict[str, list[Sample]] = {}
    n = 0
    for s in sorted(samples, key=lambda s: s["t"]):
        by_service.setdefault(s["service"], []).append(s)
        n += 1
    per: dict[str, float | None] = {}
    detects: list[float] = []
    for name, rows in sorted(by_service.items()):
        detect, rec = service_recovery(rows, k)
        per[name] = rec
        if detect is not None:
            detects.append(detect)
    recs = list(per.values())
    rto: float | None
    if any(r is None for r in recs):
        rto = None
    else:
        rto = max((r for r in recs if r is not None), default=0.0)
    return Recovery(
        detect_s=min(detects) if detects else None, rto_s=rto, per_service=per, samples=n
    )


def recovered_now(samples: Sequence[Sample], services: Iterable[str], k: int) -> bool:
    """True when each service's last K samples after the fault are all healthy."""
    for name in services:
        rows = [s for s in samples if s["service"] == name and s["t"] >= 0]
        if len(rows) < k or not all(s["ok"] for s in rows[-k:]):
            return False
    return True


def await_recovery(drill: DrillContext, detect_window_s: float = 5.0) -> dict[str, Any]:
    """Wait until every observed service is healthy again (bounded), then measure detect
    and RTO from the injection instant (see the module docs). Nothing to measure in a dry
    run."""
    ctx = drill
    if ctx.dry_run:
        return {"dry_run": True, "detect_s": None, "rto_s": None}
    obs = ctx.observer
    if obs is None or ctx.injected_mono is None:
        raise ctx.failed("measure_rto needs a running observer and an injected fault")
    k = int(ctx.setting("drill.recovery_consecutive"))
    bound = ctx.recovery_bound_s()
    ctx.phase("awaiting recovery")
    t0 = ctx.injected_mono
    while True:
        elapsed = time.monotonic() - t0
        samples = obs.samples(rel_to=t0, since=t0)
        seen_failure = any(not s["ok"] for s in samples)
        if seen_failure and recovered_now(samples, obs.services, k):
            break
        if (
            not seen_failure
            and elapsed >= detect_window_s
            and recovered_now(samples, obs.services, k)
        ):
            break
        if elapsed >= bound:
            result = compute_recovery(obs.samples(rel_to=t0), k)
            ctx.measurements.update(
                detect_s=result["detect_s"],
                rto_s=result["rto_s"],
                rto_per_service=result["per_service"],
            )
            ctx.abort(f"stop condition: not recovered within the hard bound of {bound:g} s")
        ctx.check_stop_conditions()
        time.sleep(obs.interval_s / 2)
    ctx.phase("cooldown")
    cooldown_end = time.monotonic() + float(ctx.setting("drill.cooldown_s"))
    while time.monotonic() < cooldown_end:
        time.sleep(0.05)
    result = compute_recovery(obs.samples(rel_to=t0), k)
    procedure = ctx.record.procedure_rto_s
    if procedure is not None and result["rto_s"] is not None:
        # a declared (not observable) outage: recovery is the procedure's end at the earliest
        result["rto_s"] = max(result["rto_s"], float(procedure))
    await_slo(ctx, result["rto_s"])
    ctx.measurements.update(
        detect_s=result["detect_s"], rto_s=result["rto_s"], rto_per_service=result["per_service"]
    )
    return dict(result)


def await_slo(drill: DrillContext, rto_s: float | None) -> bool:
    """Keep observing until the service is back within its SLO (``slo.p95_ms`` for
    ``slo.window_s``: ``measure/phases.py``), at most ``slo.wait_s`` after ``rto_s`` and
    never past the recovery bound; whether it was. Nothing to wait for without an SLO."""
    from mpac_drill.measure.phases import slo_recovery, slo_settings, timed_samples

    p95_ms, window = slo_settings(drill)
    if p95_ms is None or rto_s is None or drill.observer is None or drill.injected_mono is None:
        return False
    t0 = drill.injected_mono
    wait = float(drill.target.get("slo.wait_s", 60.0))
    deadline = t0 + min(drill.recovery_bound_s(), rto_s + wait + window)
    drill.phase("awaiting recovery to SLO")
    while True:
        found, _ = slo_recovery(timed_samples(drill), rto_s=rto_s, p95_ms=p95_ms, window_s=window)
        if found is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        drill.check_stop_conditions()
        time.sleep(0.2)


__all__ = [
    "await_recovery",
    "await_slo",
    "Recovery",
    "Sample",
    "compute_recovery",
    "recovered_now",
    "service_recovery",
]

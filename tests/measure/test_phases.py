"""Phases of recovery from hand-made figures: contiguous, never negative, ending at rto_s;
what was not seen stays not seen; recovery to the SLO from latency samples."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from mpac_drill.contract import validate_result
from mpac_drill.measure.phases import (
    CHAIN,
    TimedSample,
    build_phases,
    chain_phases,
    chain_sum,
    first_canary_ack,
    first_good_second,
    milestone,
    platform_milestone,
    slo_recovery,
)
from mpac_drill.platform import RecoveryEvent, step_events
from mpac_drill.platform.sandbox.recovery import parse_events
from mpac_drill.timefmt import iso

T0 = datetime(2026, 11, 30, 3, 0, 0, tzinfo=UTC)


def _samples(
    spans: list[tuple[float, float, bool, float]], step: float = 0.1, service: str = "svc-portal"
) -> list[TimedSample]:
    """``(from, to, ok, latency_ms)`` spans of one service sampled every ``step`` seconds."""
    out: list[TimedSample] = []
    for start, end, ok, latency in spans:
        n = round((end - start) / step)
        out += [
            TimedSample(t=round(start + i * step, 4), service=service, ok=ok, latency_ms=latency)
            for i in range(n)
        ]
    return out


def _marks(detect, platform, rto):
    return {
        "first_failed_sample": milestone("first_failed_sample", detect, "observer"),
        "platform_recovered": milestone("platform_recovered", platform, "event"),
        "endpoint_serving": milestone("endpoint_serving", rto, "observer"),
    }


def test_chain_phases_in_order_sum_to_rto_exactly():
    phases = chain_phases(2.35, _marks(0.1, 2.05, 2.35))
    chain = [p for p in phases if p["name"] in dict(CHAIN)]
    assert [(p["name"], p["start_s"], p["end_s"]) for p in chain] == [
        ("detect", 0.0, 0.1),
        ("platform", 0.1, 2.05),
        ("endpoint", 2.05, 2.35),
    ]
    assert math.isclose(chain_sum(phases), 2.35, abs_tol=1e-9)


def test_chain_phases_platform_event_not_seen_is_recorded_not_invented():
    phases = chain_phases(2.35, _marks(0.1, None, 2.35))
    platform = next(p for p in phases if p["name"] == "platform")
    assert platform["seen"] is False and platform["duration_s"] is None
    assert platform["evidence"].startswith("not seen")
    endpoint = next(p for p in phases if p["name"] == "endpoint")
    assert (endpoint["start_s"], endpoint["end_s"]) == (0.1, 2.35)  # it takes the gap
    assert math.isclose(chain_sum(phases), 2.35, abs_tol=1e-9)


def test_chain_phases_event_after_the_endpoint_is_clamped_and_says_so():
    phases = chain_phases(1.0, _marks(0.1, 1.4, 1.0))
    platform = next(p for p in phases if p["name"] == "platform")
    assert platform["end_s"] == 1.0 and "placed at" in platform["evidence"]
    assert next(p for p in phases if p["name"] == "endpoint")["duration_s"] == 0.0


@given(
    rto=st.floats(0, 600, allow_nan=False),
    detect=st.one_of(st.none(), st.floats(0, 700, allow_nan=False)),
    platform=st.one_of(st.none(), st.floats(0, 700, allow_nan=False)),
)
def test_chain_phases_contiguous_never_negative_end_at_rto(rto, detect, platform):
    rto = round(rto, 4)
    phases = chain_phases(rto, _marks(detect, platform, rto))
    seen = [p for p in phases if p["seen"] and p["name"] != "slo"]
    assert all(p["duration_s"] >= 0 for p in seen)
    for a, b in zip(seen, seen[1:], strict=False):
        assert a["end_s"] == b["start_s"]
    assert seen[-1]["end_s"] == rto
    assert math.isclose(chain_sum(phases), rto, abs_tol=1e-9)


def test_slo_recovery_after_a_slow_warm_up():
    samples = _samples([(-2, 0, True, 10), (0, 1, False, 5), (1, 4, True, 400), (4, 9, True, 10)])
    t, evidence = slo_recovery(samples, rto_s=1.0, p95_ms=250, window_s=2)
    assert t is not None and 3.8 <= t <= 4.0, (t, evidence)
    assert "p95" in evidence


def test_slo_recovery_the_slowest_service_decides():
    fast = _samples([(-2, 9, True, 10)], step=0.02, service="pgw")  # many fast samples
    slow = _samples([(-2, 0, True, 10), (0, 1, False, 5), (1, 4, True, 400), (4, 9, True, 10)])
    t, _ = slo_recovery(fast + slow, rto_s=1.0, p95_ms=250, window_s=2)
    assert t is not None and t >= 3.8, t


def test_slo_recovery_needs_failures_back_to_the_pre_fault_share():
    samples = _samples([(-2, 0, True, 10), (0, 1, False, 5)]) + [
        TimedSample(t=1 + i / 10, service="svc-portal", ok=i % 5 != 0, latency_ms=10)
        for i in range(50)
    ]
    t, evidence = slo_recovery(samples, rto_s=1.0, p95_ms=250, window_s=2)
    assert t is None and "not observed" in evidence


def test_slo_recovery_not_observed_long_enough_is_none():
    samples = _samples([(-1, 0, True, 10), (0, 1, False, 5), (1, 2.5, True, 10)])
    assert slo_recovery(samples, rto_s=1.0, p95_ms=250, window_s=2)[0] is None


def test_first_good_second_after_users_failed():
    seconds = [(-2.4, 100, 0), (-1.4, 100, 0), (-0.4, 100, 40), (0.6, 100, 90), (1.6, 100, 0)]
    t, evidence = first_good_second(seconds)
    assert t == 1.6 and "1 s steps" in evidence


def test_first_good_second_users_never_failed_is_not_seen():
    assert first_good_second([(-1.5, 10, 0), (-0.5, 10, 0), (0.5, 10, 0)])[0] is None


def test_first_canary_ack_after_its_outage_and_when_never_stalled():
    stalled = [0.02, 0.07, *[2.1 + i * 0.05 for i in range(10)]]
    assert first_canary_ack(stalled, 0.05)[0] == 2.1
    steady = [0.03 + i * 0.05 for i in range(40)]
    t, evidence = first_canary_ack(steady, 0.05)
    assert t == 0.03 and "never stalled" in evidence


def test_platform_milestone_picks_the_faults_event_and_service():
    events = [
        RecoveryEvent(at=iso(T0 + timedelta(seconds=1.0)), kind="task_running",
                      resource="pgw/task-1", evidence="other service"),
        RecoveryEvent(at=iso(T0 + timedelta(seconds=2.05)), kind="task_running",
                      resource="svc-portal/task-1", evidence="ecs: svc-portal/task-1 running"),
        RecoveryEvent(at=iso(T0 + timedelta(seconds=1.5)), kind="database_promoted",
                      resource="rds-standby", evidence="rds"),
    ]  # fmt: skip
    ecs = platform_milestone("ecs:StopTask", events, T0, "svc-portal")
    assert ecs["t_s"] == 2.05 and "svc-portal" in ecs["evidence"]
    assert platform_milestone("rds:RebootDBInstance", events, T0, None)["t_s"] == 1.5
    assert platform_milestone("elasticache:TestFailover", events, T0, None)["seen"] is False


def test_sandbox_daemon_lines_become_recovery_events_since_the_fault():
    def line(dt: float, text: str) -> dict[str, str]:
        return {"at": iso(T0 + timedelta(seconds=dt)), "event": text}

    lines = [
        line(-5, "rds: promoted rds-a to primary"),
        line(0.01, "ecs: svc-portal/task-1 stopped (exit -9)"),
        line(2.0, "ecs: svc-portal/task-1 running (port 3100 open)"),
        line(1.2, "rds: promoted rds-b to primary"),
        line(2.2, "redis: redis-2 promoted to primary (Sentinel switch)"),
    ]
    events = parse_events(lines, T0.timestamp())
    assert [(e["kind"], e["resource"]) for e in events] == [
        ("database_promoted", "rds-b"),
        ("task_running", "svc-portal/task-1"),
        ("cache_promoted", "redis-2"),
    ]
    assert all(e["evidence"].startswith("sandbox daemon event") for e in events)


def test_step_events_end_each_ok_step():
    steps = [
        {"name": "restore", "started_at": iso(T0), "duration_s": 3.0, "ok": True, "detail": ""},
        {"name": "switch", "started_at": iso(T0 + timedelta(seconds=3)), "duration_s": 0.5,
         "ok": False, "detail": ""},
    ]  # fmt: skip
    events = step_events(steps)
    assert [(e["resource"], e["at"]) for e in events] == [
        ("restore", iso(T0 + timedelta(seconds=3)))
    ]


def test_build_phases_record_fits_contract_v4():
    record = build_phases(
        platform="sandbox",
        detect_s=0.1,
        rto_s=2.3,
        samples=_samples([(-2, 0, True, 10), (0, 2.3, False, 5), (2.3, 6, True, 10)]),
        platform_mark=milestone("platform_recovered", 2.0, "ecs: task running"),
        user_seconds=None,
        canary_acks=[0.05, 0.1],
        canary_interval_s=0.05,
        slo_p95_ms=250,
        slo_window_s=2,
    )
    assert record["rto_slo_s"] == 2.3
    assert [m["name"] for m in record["milestones"]][-1] == "recovered_to_slo"
    slo = next(p for p in record["phases"] if p["name"] == "slo")
    assert slo["seen"] and slo["duration_s"] == 0.0
    from tests.test_contract import PASSED  # a v1 result to extend

    result = {**copy.deepcopy(PASSED), "schema_version": 4, "phases": record}
    result["measurements"] = {**result["measurements"], "rto_slo_s": record["rto_slo_s"]}
    assert validate_result(result) == []
    bad = {**result, "phases": {**record, "phases": [{**record["phases"][0], "name": "x"}]}}
    assert validate_result(bad) != []

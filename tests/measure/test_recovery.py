"""The pure measurement functions: detection, RTO, RPO, from hand-made samples."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from mpac_drill.measure.canary import Write, compute_rpo
from mpac_drill.measure.recovery import Sample, compute_recovery, service_recovery


def _series(service: str, oks: list[bool], start: float = -1.0, step: float = 0.1) -> list[Sample]:
    return [
        Sample(t=round(start + i * step, 4), service=service, ok=ok) for i, ok in enumerate(oks)
    ]


def test_recovery_single_outage_rto_is_first_of_k_healthy():
    # healthy until 0, down for 5 samples (0.0..0.4), healthy from 0.5 on
    s = _series("a", [True] * 10 + [False] * 5 + [True] * 6)
    detect, rto = service_recovery(s, k=3)
    assert detect == 0.0
    assert rto == 0.5


def test_recovery_flap_counts_last_outage():
    oks = [True] * 10 + [False] * 3 + [True] * 2 + [False] * 2 + [True] * 5
    detect, rto = service_recovery(_series("a", oks), k=3)
    assert detect == 0.0
    assert rto == 0.7  # the brief recovery at 0.3-0.4 was not K long


def test_recovery_not_recovered_within_bound_is_none():
    r = compute_recovery(_series("a", [True] * 10 + [False] * 20), k=3)
    assert r["rto_s"] is None
    assert r["detect_s"] == 0.0


def test_recovery_no_failure_gives_zero_rto_and_no_detection():
    r = compute_recovery(_series("a", [True] * 30) + _series("b", [True] * 30), k=3)
    assert r["rto_s"] == 0.0
    assert r["detect_s"] is None


def test_recovery_rto_is_worst_service():
    a = _series("a", [True] * 10 + [False] * 2 + [True] * 5)
    b = _series("b", [True] * 10 + [False] * 8 + [True] * 5)
    r = compute_recovery(a + b, k=3)
    assert r["per_service"] == {"a": 0.2, "b": 0.8}
    assert r["rto_s"] == 0.8


def test_recovery_failures_before_injection_are_ignored():
    r = compute_recovery(_series("a", [False] * 5 + [True] * 20), k=3)
    assert r["rto_s"] == 0.0 and r["detect_s"] is None


@given(
    down=st.integers(min_value=1, max_value=50),
    k=st.integers(min_value=1, max_value=5),
    before=st.integers(min_value=0, max_value=10),
)
def test_recovery_property_rto_equals_outage_length(down: int, k: int, before: int):
    oks = [True] * before + [False] * down + [True] * (k + 2)
    s = _series("svc", oks, start=0.0, step=0.1)
    detect, rto = service_recovery(s, k)
    assert detect == round(before * 0.1, 4)
    assert rto == round((before + down) * 0.1, 4)


def _w(seq: int, t: float, acked: bool, present: bool | None) -> Write:
    return Write(
        seq=seq,
        sent_mono=t - 0.01,
        sent_utc=datetime.now(UTC),
        ack_mono=t if acked else None,
        present=present if acked else None,
    )


def test_rpo_no_loss_is_zero():
    ledger = [_w(i, i * 0.05, True, True) for i in range(100)]
    assert compute_rpo(ledger) == {
        "acked_writes": 100,
        "lost_writes": 0,
        "rpo_s": 0.0,
        "lost_seqs": [],
    }


def test_rpo_window_of_lost_writes():
    # writes every 0.05 s; 40 writes (2 s) acknowledged but lost, then unacked failures
    ledger = [_w(i, i * 0.05, True, True) for i in range(100)]
    ledger += [_w(100 + i, (100 + i) * 0.05, True, False) for i in range(40)]
    ledger += [_w(140 + i, (140 + i) * 0.05, False, None) for i in range(10)]
    r = compute_rpo(ledger)
    assert r["acked_writes"] == 140
    assert r["lost_writes"] == 40
    assert abs(r["rpo_s"] - 2.0) < 1e-6  # last survivor at 4.95, last lost at 6.95
    assert r["lost_seqs"] == list(range(100, 140))


def test_rpo_unacked_missing_rows_are_not_lost():
    ledger = [_w(1, 0.0, True, True), _w(2, 0.05, False, None), _w(3, 0.1, True, True)]
    assert compute_rpo(ledger)["lost_writes"] == 0


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=200))
def test_rpo_property_counts_are_exact(flags: list[tuple[bool, bool]]):
    ledger = [_w(i, i * 0.05, acked, present) for i, (acked, present) in enumerate(flags)]
    r = compute_rpo(ledger)
    assert r["acked_writes"] == sum(1 for a, _ in flags if a)
    assert r["lost_writes"] == sum(1 for a, p in flags if a and not p)
    assert r["rpo_s"] >= 0
    assert (r["rpo_s"] == 0) or r["lost_writes"] > 0

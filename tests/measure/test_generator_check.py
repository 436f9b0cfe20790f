"""The load generator's check over the load's own window: a second with no request is 0,
so a generator that made none (its last worker lost) is 100 % short, not "unknown"."""

from __future__ import annotations

import csv
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mpac_drill.load import PER_SECOND_COLUMNS, PER_SECOND_FILE
from mpac_drill.measure.load import RAMP_S, check_generator, iso_second

T0 = 1_800_000_000  # a whole second


def _write(run_dir: Path, per_second: dict[int, int]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / PER_SECOND_FILE).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(PER_SECOND_COLUMNS)
        for sec, n in sorted(per_second.items()):
            w.writerow((iso_second(sec), "Aggregated", n, 0, ""))


def test_no_request_in_the_window_is_100_percent_short(tmp_path: Path) -> None:
    _write(tmp_path, {})
    out = check_generator(tmp_path, offered_rps=60, window=(T0 + 0.4, T0 + 20.2))
    assert out["rps_achieved"] == 0.0
    assert out["saturated"] is True
    assert "100 % short" in out["saturation_evidence"][0]


def test_without_the_window_nothing_is_known_and_nothing_is_judged(tmp_path: Path) -> None:
    _write(tmp_path, {})
    out = check_generator(tmp_path, offered_rps=60)
    assert out["rps_achieved"] is None and out["saturated"] is False


def test_the_offered_rate_every_second_is_not_short(tmp_path: Path) -> None:
    _write(tmp_path, {T0 + i: 60 for i in range(20)})
    out = check_generator(tmp_path, offered_rps=60, window=(T0, T0 + 20))
    assert (out["rps_achieved"], out["saturated"]) == (60.0, False)


@settings(max_examples=50, deadline=None)
@given(gaps=st.sets(st.integers(min_value=RAMP_S, max_value=18), max_size=17))
def test_missing_seconds_count_as_zero(tmp_path_factory, gaps: set[int]) -> None:
    run_dir = tmp_path_factory.mktemp("gen")
    _write(run_dir, {T0 + i: 60 for i in range(20) if i not in gaps})
    out = check_generator(run_dir, offered_rps=60, window=(T0, T0 + 20))
    judged = range(RAMP_S, 19)  # the ramp and the last second are not compared
    expected = round(sum(0 if i in gaps else 60 for i in judged) / len(judged), 1)
    assert out["rps_achieved"] == expected
    assert out["saturated"] == (expected < 54)


def _cpu(run_dir: Path, label: str, role: str, pct: dict[int, float]) -> None:
    from mpac_drill.load import LOCUST_DIR

    (run_dir / LOCUST_DIR).mkdir(parents=True, exist_ok=True)
    with (run_dir / LOCUST_DIR / f"cpu-{label}.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("role", "second", "cpu_pct"))
        for sec, p in sorted(pct.items()):
            w.writerow((role, sec, p))


def test_a_worker_above_90_percent_cpu_for_5_s_in_a_row_is_saturated(tmp_path: Path) -> None:
    _write(tmp_path, {T0 + i: 60 for i in range(20)})
    _cpu(tmp_path, "w1", "worker", {T0 + i: (97.0 if 5 <= i < 10 else 40.0) for i in range(20)})
    _cpu(tmp_path, "w2", "worker", {T0 + i: (95.0 if i % 5 else 20.0) for i in range(20)})
    out = check_generator(tmp_path, offered_rps=60, window=(T0, T0 + 20))
    assert out["saturated"] is True
    (line,) = out["saturation_evidence"]  # w2 never 5 s in a row above 90 %
    assert line.startswith("worker w1 above 90 % CPU for 5 s in a row"), line
    assert out["cpu_max_pct"] == {"worker w1": 97.0, "worker w2": 95.0}

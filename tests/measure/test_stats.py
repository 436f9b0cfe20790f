"""The statistics of repeated drills, against properties that must hold for any runs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpac_drill.measure.stats import (
    bootstrap_ci,
    default_judge,
    judged,
    median,
    percentile,
    regression,
    spread,
)

FIGURES = st.lists(
    st.floats(0, 1e5, allow_nan=False, allow_infinity=False), min_size=1, max_size=30
)


@settings(max_examples=40, deadline=None)
@given(FIGURES)
def test_spread_is_ordered_and_the_interval_holds_the_median(values):
    s = spread(values)
    assert s["n"] == len(values) and s["missing"] == 0
    assert s["min"] <= s["p5"] <= s["median"] <= s["p95"] <= s["max"]
    assert s["min"] <= s["ci_low"] <= s["ci_high"] <= s["max"]


@settings(max_examples=30, deadline=None)
@given(FIGURES, st.randoms(use_true_random=False))
def test_spread_does_not_depend_on_run_order(values, rnd):
    shuffled = list(values)
    rnd.shuffle(shuffled)
    assert spread(shuffled) == spread(values)  # the bootstrap's seed is fixed


@given(FIGURES, st.floats(0, 100), st.floats(0, 100))
def test_percentile_is_monotone_in_q(values, q1, q2):
    lo, hi = sorted((q1, q2))
    assert percentile(values, lo) <= percentile(values, hi) + 1e-9


def test_percentile_and_median_known_values():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([1.0, 2.0, 3.0, 4.0]) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    with pytest.raises(ValueError):
        percentile([], 50)


def test_bootstrap_ci_narrows_with_more_runs_of_the_same_spread():
    few = [2.0, 2.4, 2.1, 2.3, 2.2]
    many = few * 8
    lo_few, hi_few = bootstrap_ci(few)
    lo_many, hi_many = bootstrap_ci(many)
    assert hi_many - lo_many < hi_few - lo_few
    assert bootstrap_ci([1.5, 1.5]) == (1.5, 1.5)


def test_spread_counts_runs_that_measured_nothing():
    s = spread([2.0, None, 3.0])
    assert (s["n"], s["missing"], s["median"]) == (2, 1, 2.5)
    assert spread([None])["median"] is None


def test_judged_statistics_and_default():
    runs = [2.0, 2.1, 2.2, 2.3, 9.0]
    assert judged(runs, "worst") == 9.0
    assert judged(runs, "median") == 2.2
    assert 2.3 < judged(runs, "p95") < 9.0
    assert judged([2.0, None], "worst") == math.inf  # a run that never recovered
    assert default_judge(4) == "worst" and default_judge(5) == "p95"
    with pytest.raises(ValueError):
        judged(runs, "mean")


def test_regression_needs_both_bounds():
    slower = regression([2.2, 2.25, 2.3], [4.2, 4.25, 4.3], relative=0.25, absolute_s=1.0)
    assert slower["regressed"] and slower["delta_s"] == pytest.approx(2.0)
    same = regression([2.2, 2.25, 2.3], [2.3, 2.2, 2.35], relative=0.25, absolute_s=1.0)
    assert not same["regressed"]
    # 1.5 s slower but only 5 % of a 30 s baseline: not a regression
    long = regression([30.0], [31.5], relative=0.25, absolute_s=1.0)
    assert not long["regressed"] and long["relative"] == pytest.approx(0.05)


@given(FIGURES, FIGURES)
def test_regression_never_flags_a_faster_candidate(base, cand):
    if median(cand) <= median(base):
        assert not regression(base, cand, relative=0.0, absolute_s=0.0)["regressed"]

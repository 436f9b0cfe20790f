"""Statistics of repeated drills: the spread of a figure over N runs, the gate's judged
statistic, and whether a release made recovery slower than a baseline. Pure functions.

- :func:`spread`: median, p95, p5, min, max and a bootstrap 95 % confidence interval of the
  median (percentile bootstrap, a fixed seed: the same runs give the same interval);
- :func:`judged`: the statistic the gate judges (``median``, ``p95`` or ``worst``; by
  default worst below 5 runs, p95 from 5: :func:`default_judge`);
- :func:`regression`: the candidate's median against the baseline's, beyond both the
  relative and the absolute bound of the catalog's ``gate.max_regression``.

Percentiles interpolate linearly between order statistics (numpy's default).

Example::

    s = spread([2.21, 2.25, 2.19, 2.4, 2.22])
    s["median"], s["ci_low"], s["ci_high"]
    judged([2.21, 2.25, 2.4], "worst")  # 2.4
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from typing import TypedDict

JUDGES = ("median", "p95", "worst")
#: from this many runs the gate judges the p95 by default (below: the worst run)
P95_FROM_RUNS = 5
BOOTSTRAP_RESAMPLES = 2000
_SEED = 14


class Spread(TypedDict):
    """A figure over repeated runs (``None`` throughout when no run measured it)."""

    n: int  # runs that measured it
    missing: int  # runs that did not (not recovered, no data path)
    median: float | None
    p95: float | None
    p5: float | None
    min: float | None
    max: float | None
    ci_low: float | None  # bootstrap 95 % confidence interval of the median
    ci_high: float | None


class Regression(TypedDict):
    regressed: bool
    baseline_median: float
    candidate_median: float
    delta_s: float
    relative: float  # delta / baseline median (inf when the baseline is 0 and delta > 0)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` (not empty), interpolating linearly."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], not {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    frac = pos - lo
    return ordered[lo] + (ordered[hi] - ordered[lo]) * frac


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def bootstrap_ci(
    values: Sequence[float],
    *,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = _SEED,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median of ``values`` (not empty):
    ``resamples`` resamples with replacement from a generator seeded with ``seed``."""
    if not values:
        raise ValueError("confidence interval of no values")
    if len(set(values)) == 1:
        return values[0], values[0]
    rng = random.Random(seed)
    ordered = sorted(values)  # the same runs in any order give the same interval
    n, mid = len(ordered), (len(ordered) - 1) / 2
    lo, hi = math.floor(mid), math.ceil(mid)
    medians = []
    for _ in range(resamples):
        sample = sorted(rng.choices(ordered, k=n))
        medians.append((sample[lo] + sample[hi]) / 2)
    tail = (1 - level) / 2 * 100
    return percentile(medians, tail), percentile(medians, 100 - tail)


def spread(values: Iterable[float | None]) -> Spread:
    """The spread of one figure over runs; ``None`` values count as missing."""
    all_values = list(values)
    got = [float(v) for v in all_values if v is not None]
    missing = len(all_values) - len(got)
    if not got:
        return Spread(
            n=0,
            missing=missing,
            median=None,
            p95=None,
            p5=None,
            min=None,
            max=None,
            ci_low=None,
            ci_high=None,
        )
    low, high = bootstrap_ci(got)
    return Spread(
        n=len(got),
        missing=missing,
        median=median(got),
        p95=percentile(got, 95),
        p5=percentile(got, 5),
        min=min(got),
        max=max(got),
        ci_low=low,
        ci_high=high,
    )


def default_judge(runs: int) -> str:
    """``worst`` below :data:`P95_FROM_RUNS` runs, ``p95`` from there."""
    return "worst" if runs < P95_FROM_RUNS else "p95"


def judged(values: Sequence[float | None], how: str) -> float | None:
    """The statistic the gate judges: ``median``, ``p95`` or ``worst`` (the largest; a run
    that measured nothing, e.g. never recovered, is the worst: ``inf``)."""
    if how not in JUDGES:
        raise ValueError(f"judge must be one of {', '.join(JUDGES)}, not {how!r}")
    if not values:
        return None
    if how == "worst" and any(v is None for v in values):
        return math.inf
    got = [float(v) for v in values if v is not None]
    if not got:
        return None
    if how == "worst":
        return max(got)
    return median(got) if how == "median" else percentile(got, 95)


def regression(
    baseline: Sequence[float], candidate: Sequence[float], *, relative: float, absolute_s: float
) -> Regression:
    """Whether the candidate's median RTO is slower than the baseline's by more than
    ``absolute_s`` seconds **and** more than ``relative`` (a fraction) of the baseline: a
    change must be measurable in both to fail the gate."""
    if not baseline or not candidate:
        raise ValueError("regression needs runs on both sides")
    base, cand = median(baseline), median(candidate)
    delta = cand - base
    rel = delta / base if base > 0 else (math.inf if delta > 0 else 0.0)
    return Regression(
        regressed=delta > absolute_s and rel > relative,
        baseline_median=base,
        candidate_median=cand,
        delta_s=delta,
        relative=rel,
    )


__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "JUDGES",
    "P95_FROM_RUNS",
    "Regression",
    "Spread",
    "bootstrap_ci",
    "default_judge",
    "judged",
    "median",
    "percentile",
    "regression",
    "spread",
]

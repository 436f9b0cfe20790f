"""The sandbox's "CloudWatch alarms": metric alarms evaluated with CloudWatch's semantics.

Pure and clock-free (every call takes the time): the daemon feeds samples and asks for
evaluations (``daemon.py``); the tests drive it with made-up times.

CloudWatch's semantics, as implemented here:

- a **period** is a fixed window aligned to multiples of its length (CloudWatch aligns to
  the minute); a period's **datapoint** is the alarm's statistic (Minimum, Maximum, Average,
  Sum, SampleCount) over the samples published in it, or *missing* when none was;
- the alarm is evaluated when a period ends, over the last ``evaluation_periods`` (N)
  complete periods: ALARM when at least ``datapoints_to_alarm`` (M) of them breach the
  threshold, OK otherwise;
- **missing data** (``treat_missing_data``): ``breaching`` counts a missing datapoint as
  breaching, ``notBreaching`` as not breaching; ``ignore`` keeps the current state while
  the present datapoints cannot decide (nor all-missing); ``missing`` decides on the present
  datapoints only and goes to INSUFFICIENT_DATA when every datapoint of the range is
  missing. (CloudWatch retrieves a few more periods than N when datapoints are missing; the
  range here is exactly N.)
- a new alarm starts in INSUFFICIENT_DATA; periods before it existed are never in its range
  (no datapoint, but no "missing" either): its first evaluation is after N whole periods.

Every state change is a transition with its time and reason, as CloudWatch's alarm history;
``StateUpdatedTimestamp`` is the time of the last one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mpac_drill.config import AlarmDefinition

OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"
STATES = (OK, ALARM, INSUFFICIENT)


def aggregate(samples: Sequence[float], statistic: str) -> float | None:
    """A period's datapoint from its samples; ``None`` (missing) when there are none."""
    if not samples:
        return None
    if statistic == "Minimum":
        return min(samples)
    if statistic == "Maximum":
        return max(samples)
    if statistic == "Sum":
        return float(sum(samples))
    if statistic == "SampleCount":
        return float(len(samples))
    if statistic == "Average":
        return sum(samples) / len(samples)
    raise ValueError(f"unknown statistic {statistic!r}")


def breaches(value: float, comparison: str, threshold: float) -> bool:
    """Whether one datapoint breaches the alarm's threshold."""
    if comparison == "LessThanThreshold":
        return value < threshold
    if comparison == "LessThanOrEqualToThreshold":
        return value <= threshold
    if comparison == "GreaterThanThreshold":
        return value > threshold
    if comparison == "GreaterThanOrEqualToThreshold":
        return value >= threshold
    raise ValueError(f"unknown comparison {comparison!r}")


def next_state(
    values: Sequence[float | None],
    *,
    datapoints_to_alarm: int,
    comparison: str,
    threshold: float,
    treat_missing_data: str,
    current: str,
) -> str:
    """The alarm's state after evaluating ``values`` (the last N datapoints, ``None`` =
    missing): the rule described in the module docstring."""
    m, n = datapoints_to_alarm, len(values)
    present = [v for v in values if v is not None]
    missing = n - len(present)
    bad = sum(breaches(v, comparison, threshold) for v in present)
    if treat_missing_data == "breaching":
        return ALARM if bad + missing >= m else OK
    if treat_missing_data == "notBreaching" or missing == 0:
        return ALARM if bad >= m else OK
    if not present:
        return current if treat_missing_data == "ignore" else INSUFFICIENT
    if bad >= m:
        return ALARM
    if treat_missing_data == "ignore" and bad + missing >= m:
        return current  # the missing ones could still make it an ALARM: wait
    return OK


@dataclass
class Transition:
    at: float  # epoch seconds
    old: str
    new: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "from": self.old, "to": self.new, "reason": self.reason}


@dataclass
class Alarm:
    """One metric alarm: its definition run at ``period_s`` (the sandbox's scaled period),
    its samples by period, its state and history."""

    definition: AlarmDefinition
    period_s: float
    created_at: float
    state: str = INSUFFICIENT
    state_updated_at: float = 0.0
    reason: str = "Unchecked: Initial alarm creation"
    history: list[Transition] = field(default_factory=list)
    last_value: float | None = None
    _samples: dict[int, list[float]] = field(default_factory=dict)
    _evaluated_through: int | None = None

    def __post_init__(self) -> None:
        if not self.period_s > 0:
            raise ValueError("period_s must be above 0")
        self.state_updated_at = self.created_at
        # the first period wholly after creation is the first one in any range
        self._first = math.floor(self.created_at / self.period_s) + 1
        self._evaluated_through = self._first - 1

    @property
    def name(self) -> str:
        return self.definition.name

    def period_of(self, t: float) -> int:
        return math.floor(t / self.period_s)

    def add_sample(self, t: float, value: float | None) -> None:
        """A sample published at ``t`` (``None``: the metric had nothing to report)."""
        self.last_value = value
        if value is not None:
            self._samples.setdefault(self.period_of(t), []).append(float(value))

    def datapoint(self, period: int) -> float | None:
        return aggregate(self._samples.get(period, []), self.definition.statistic)

    def evaluate(self, now: float) -> list[Transition]:
        """Evaluate every period that ended by ``now`` and was not evaluated yet; return
        the transitions (stamped ``now``: when the evaluation ran)."""
        d = self.definition
        last_complete = self.period_of(now) - 1
        out: list[Transition] = []
        assert self._evaluated_through is not None
        for end in range(self._evaluated_through + 1, last_complete + 1):
            start = end - d.evaluation_periods + 1
            if start < self._first:
                continue  # not N whole periods since the alarm exists
            values = [self.datapoint(p) for p in range(start, end + 1)]
            new = next_state(
                values,
                datapoints_to_alarm=d.datapoints_to_alarm,
                comparison=d.comparison,
                threshold=d.threshold,
                treat_missing_data=d.treat_missing_data,
                current=self.state,
            )
            if new != self.state:
                shown = ", ".join("missing" if v is None else f"{v:g}" for v in values)
                reason = (
                    f"Threshold Crossed: {d.datapoints_to_alarm} out of the last "
                    f"{d.evaluation_periods} datapoints [{shown}] "
                    f"{'were' if new == ALARM else 'were not'} {d.comparison} "
                    f"the threshold ({d.threshold:g})"
                )
                t = Transition(at=now, old=self.state, new=new, reason=reason)
                out.append(t)
                self.history.append(t)
                self.state, self.state_updated_at, self.reason = new, now, reason
        self._evaluated_through = max(self._evaluated_through, last_complete)
        for p in [p for p in self._samples if p < last_complete - d.evaluation_periods]:
            del self._samples[p]
        del self.history[:-50]
        return out

    def as_dict(self) -> dict[str, Any]:
        """The alarm as ``state.json`` shows it (DescribeAlarms' fields, history)."""
        d = self.definition
        return {
            "name": d.name,
            "namespace": d.namespace,
            "metric": d.metric,
            "dimensions": dict(d.dimensions),
            "statistic": d.statistic,
            "comparison": d.comparison,
            "threshold": d.threshold,
            "period_s": self.period_s,
            "evaluation_periods": d.evaluation_periods,
            "datapoints_to_alarm": d.datapoints_to_alarm,
            "treat_missing_data": d.treat_missing_data,
            "state": self.state,
            "state_updated_at": self.state_updated_at,
            "reason": self.reason,
            "last_value": self.last_value,
            "history": [t.as_dict() for t in self.history],
        }


def sandbox_definitions(
    catalog_alarms: Sequence[AlarmDefinition],
    *,
    absent: Sequence[str] = (),
    overrides: dict[str, dict[str, Any]] | None = None,
) -> list[AlarmDefinition]:
    """The alarms a sandbox creates: the catalog's, without those its target lists in
    ``alarms.absent`` (an alarm nobody created), with ``alarms.overrides`` applied (a
    threshold that was set wrong)."""
    from mpac_drill.config import alarm_definition

    out = []
    for a in catalog_alarms:
        if a.name in absent:
            continue
        change = (overrides or {}).get(a.name)
        if change:
            a = alarm_definition({**a.as_dict(), **change}, "target alarms.overrides")
        out.append(a)
    return out


__all__ = [
    "ALARM",
    "INSUFFICIENT",
    "OK",
    "Alarm",
    "Transition",
    "aggregate",
    "breaches",
    "next_state",
    "sandbox_definitions",
]

"""CloudWatch's alarm semantics of the sandbox's evaluator (``mpac_drill/sandbox/alarms.py``)
and the figures of ``mpac_drill/measure/detection.py``: pure, no clock, no process."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpac_drill.config import AlarmDefinition
from mpac_drill.measure.detection import chain_complete, figures, findings
from mpac_drill.sandbox.alarms import ALARM, INSUFFICIENT, OK, Alarm, aggregate, next_state

FAST = settings(max_examples=200, deadline=None)
TREATS = ("missing", "ignore", "breaching", "notBreaching")
values = st.lists(st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.0])), min_size=1, max_size=6)


def _state(vals, m, treat, current=OK):
    return next_state(
        vals,
        datapoints_to_alarm=m,
        comparison="LessThanThreshold",
        threshold=1.0,
        treat_missing_data=treat,
        current=current,
    )


@FAST
@given(values, st.data(), st.sampled_from(TREATS), st.sampled_from((OK, ALARM, INSUFFICIENT)))
def test_one_more_breaching_datapoint_never_clears_an_alarm(vals, data, treat, current):
    m = data.draw(st.integers(1, len(vals)))
    i = data.draw(st.integers(0, len(vals) - 1))
    worse = [*vals[:i], 0.0, *vals[i + 1 :]]  # 0 < 1: breaching
    if _state(vals, m, treat, current) == ALARM:
        assert _state(worse, m, treat, current) == ALARM


@FAST
@given(values, st.data())
def test_missing_as_breaching_or_not_equals_filling_it_in(vals, data):
    m = data.draw(st.integers(1, len(vals)))
    assert _state(vals, m, "breaching") == _state([0.0 if v is None else v for v in vals], m, "x")
    assert _state(vals, m, "notBreaching") == _state(
        [2.0 if v is None else v for v in vals], m, "x"
    )


@FAST
@given(st.integers(1, 6), st.data())
def test_m_of_n_breaching_datapoints_alarm_and_one_fewer_does_not(n, data):
    m = data.draw(st.integers(1, n))
    where = data.draw(st.permutations(range(n)))
    vals = [2.0] * n
    for i in where[:m]:
        vals[i] = 0.0
    assert _state(vals, m, "missing") == ALARM
    vals[where[0]] = 2.0
    assert _state(vals, m, "missing") == OK


@pytest.mark.parametrize(
    ("treat", "current", "expected"),
    [("missing", OK, INSUFFICIENT), ("ignore", ALARM, ALARM), ("ignore", OK, OK)],
)
def test_all_missing(treat, current, expected):
    assert _state([None, None, None], 2, treat, current) == expected


def test_ignore_waits_while_missing_datapoints_could_still_alarm():
    assert _state([0.0, None, 2.0], 2, "ignore", OK) == OK  # kept: could be 2 of 3
    assert _state([0.0, None, 2.0], 2, "ignore", ALARM) == ALARM
    assert _state([2.0, None, 2.0], 2, "ignore", ALARM) == OK  # cannot reach 2 breaching


def test_statistics():
    s = [3.0, 1.0, 2.0]
    assert [aggregate(s, k) for k in ("Minimum", "Maximum", "Sum", "SampleCount", "Average")] == [
        1.0,
        3.0,
        6.0,
        3.0,
        2.0,
    ]
    assert aggregate([], "Minimum") is None


def _definition(**kw):
    base = dict(
        name="ECS-TaskCount-Low",
        namespace="ECS/ContainerInsights",
        metric="RunningTaskCount",
        statistic="Minimum",
        comparison="LessThanThreshold",
        threshold=1.0,
        period_s=60,
        evaluation_periods=3,
        datapoints_to_alarm=2,
        treat_missing_data="breaching",
    )
    return AlarmDefinition(**{**base, **kw})


def test_alarm_fires_at_the_end_of_the_mth_breaching_period_and_clears():
    alarm = Alarm(definition=_definition(), period_s=1.0, created_at=100.5)
    t = 101.0
    while t < 105.0:  # healthy: 2 tasks
        alarm.add_sample(t, 2)
        alarm.evaluate(t)
        t = round(t + 0.1, 3)
    assert alarm.state == OK and alarm.history[0].at == pytest.approx(104.0)  # N whole periods
    while t < 108.3:  # the fault at 105.0: 0 tasks
        alarm.add_sample(t, 0)
        alarm.evaluate(t)
        t = round(t + 0.1, 3)
    fired = [h for h in alarm.history if h.new == ALARM]
    assert fired[0].at == pytest.approx(107.0)  # periods 105 and 106 breached: 2 of 3
    while t < 112:
        alarm.add_sample(t, 2)
        alarm.evaluate(t)
        t = round(t + 0.1, 3)
    # period 108 still breached (0 until 108.3): [108, 109, 110] is 1 of 3 at 111
    assert alarm.state == OK and alarm.history[-1].at == pytest.approx(111.0)


def _reading(fire_at=None, ok_at=None, page=None, ack=None, exists=True):
    hist = [{"at": 50.0, "from": "INSUFFICIENT_DATA", "to": "OK"}]
    if fire_at is not None:
        hist.append({"at": fire_at, "from": "OK", "to": "ALARM"})
    if ok_at is not None:
        hist.append({"at": ok_at, "from": "ALARM", "to": "OK"})
    incidents = (
        [{"id": "P1", "title": "ECS-TaskCount-Low", "triggered_at": page, "acknowledged_at": ack}]
        if page is not None
        else []
    )
    alarm = {
        "name": "ECS-TaskCount-Low",
        "exists": exists,
        "state": "OK",
        "state_updated_at": 50.0,
        "history": hist if exists else [],
    }
    return {"alarms": [alarm], "incidents": incidents, "calls": 2}


def _figures(reading, pager=True):
    return figures(
        reading,
        injected_at=100.0,
        bound_s=60,
        severity="P0",
        respond_s=300,
        update_s=900,
        source="aws",
        pager=pager,
    )


def test_figures_from_a_complete_chain():
    reading = _reading(fire_at=130.0, ok_at=200.0, page=131.0, ack=400.0)
    rec = _figures(reading)
    assert (rec["time_to_alarm_s"], rec["time_to_page_s"]) == (30.0, 31.0)
    assert rec["time_to_ack_s"] is None  # beyond the bound
    assert rec["alarms"][0]["time_to_ok_s"] is None and rec["outcome"] == "not acknowledged"
    rec = _figures(_reading(fire_at=130.0, ok_at=150.0, page=131.0, ack=140.0))
    assert rec["outcome"] == "detected" and rec["time_to_ack_s"] == 40.0
    assert chain_complete(_reading(130.0, 150.0, 131.0, 140.0), 100.0, pager=True)
    assert not chain_complete(_reading(130.0, 150.0, 131.0, None), 100.0, pager=True)


def test_fired_without_a_page_is_d3_and_missing_alarm_is_d1():
    rec = _figures(_reading(fire_at=130.0))
    assert rec["outcome"] == "not paged"
    assert [f["id"] for f in findings(rec, "1.1")] == ["D3"]
    rec = _figures(_reading(exists=False))
    assert rec["outcome"] == "missed detection"
    assert [f["id"] for f in findings(rec, "1.1")] == ["D1"]


def test_without_pager_only_the_alarm_is_judged():
    rec = _figures(_reading(fire_at=130.0), pager=False)
    assert rec["outcome"] == "detected" and rec["pager"] == "not configured"
    assert [v["metric"] for v in rec["verdicts"]] == ["time_to_alarm_s"]
    assert findings(rec, "1.1") == []


def test_transitions_seen_by_earlier_readings_are_kept():
    """Without the alarm's own history (moto, a role lacking DescribeAlarmHistory), an
    ALARM seen at one reading and OK at the next are both judged."""
    from mpac_drill.measure.detection import accumulated, figures

    def reading(state, at):
        alarm = {"name": "A", "exists": True, "state": state, "state_updated_at": at,
                 "history": [{"at": at, "from": None, "to": state}]}  # fmt: skip
        return {"alarms": [alarm], "incidents": [], "calls": 1}

    r = accumulated(None, reading("OK", 90.0))
    r = accumulated(r, reading("ALARM", 104.0))
    r = accumulated(r, reading("OK", 110.0))
    rec = figures(r, injected_at=100.0, bound_s=60, severity="P1", respond_s=900,
                  update_s=1800, source="aws", pager=False)  # fmt: skip
    (a,) = rec["alarms"]
    assert (a["state_at_injection"], a["time_to_alarm_s"], a["time_to_ok_s"]) == ("OK", 4.0, 10.0)
    last_only = figures(reading("OK", 110.0), injected_at=100.0, bound_s=60, severity="P1",
                        respond_s=900, update_s=1800, source="aws", pager=False)  # fmt: skip
    assert last_only["alarms"][0]["time_to_alarm_s"] is None

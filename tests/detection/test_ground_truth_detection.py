"""The detection chain's figures are true: measured against what the sandbox was set to do.

On the sandbox, ``ECS-TaskCount-Low`` (Minimum of RunningTaskCount < 1, 2 of 3 datapoints)
fires after about ``alarms.period_s`` × datapoints-to-alarm (± one period + 0.5 s: where in
its period the fault falls, and the ALB's health check), the page follows at once, and
on-call acknowledges ``pager.ack_delay_s`` after the page (± 0.5 s). An alarm missing from
the target, or whose threshold cannot trip, is a finding and a missed detection.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mpac_drill import TARGETS_DIR
from mpac_drill.config import load_catalog, load_target
from mpac_drill.drill.runner import run_drill

pytestmark = pytest.mark.sandbox
ALARM = "ECS-TaskCount-Low"
USERS = 2


def _drill(runs_dir: Path, target: str = "sandbox", **sets):
    return run_drill("ecs-task-failure", load_target(target, sets), runs_dir=runs_dir, users=USERS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("detection-runs")


@pytest.fixture(scope="module")
def ecs_runs(sandbox, runs):
    """Two drills (period 1 s, ack 2 s; period 0.5 s, ack 1 s); the task stays down 4 s."""
    out = []
    for period, ack in ((1.0, 2.0), (0.5, 1.0)):
        o = _drill(
            runs,
            **{
                "ecs.task_start_delay_s": 4.0,
                "alarms.period_s": period,
                "pager.ack_delay_s": ack,
            },
        )
        out.append((period, ack, o))
    return out


def test_ecs_alarm_time_tracks_period_times_datapoints_to_alarm(ecs_runs):
    (definition,) = load_catalog().get("ecs-task-failure").detection.alarms
    for period, _, o in ecs_runs:
        det = o.result["detection"]
        (alarm,) = det["alarms"]
        assert alarm["name"] == ALARM and alarm["outcome"] == "fired", det
        expected = period * definition.datapoints_to_alarm
        assert abs(alarm["time_to_alarm_s"] - expected) <= period + 0.5, (period, alarm)
        assert alarm["time_to_ok_s"] > alarm["time_to_alarm_s"]
        assert det["outcome"] == "detected"
        assert o.result["schema_version"] >= 3  # detection came with version 3
    fast, slow = ecs_runs[1][2], ecs_runs[0][2]
    assert (
        fast.result["detection"]["time_to_alarm_s"]
        < slow.result["detection"]["time_to_alarm_s"] + 0.5
    )


def test_ecs_page_follows_the_alarm_and_ack_tracks_ack_delay(ecs_runs):
    for _, ack, o in ecs_runs:
        det = o.result["detection"]
        assert 0 <= det["time_to_page_s"] - det["time_to_alarm_s"] <= 0.5, det
        assert abs((det["time_to_ack_s"] - det["time_to_page_s"]) - ack) <= 0.5, det
        assert [v["outcome"] for v in det["verdicts"]] == ["met"] * 3
        assert {v["target"] for v in det["verdicts"]} == {900.0}  # P1: respond in 15 min
        assert not [f for f in o.result["findings"] if f["id"].startswith("D")]


def test_alarm_absent_from_target_is_a_finding_and_missed_detection(sandbox, runs):
    o = _drill(runs, **{"alarms.absent": [ALARM], "alarms.bound_s": 3.0})
    det = o.result["detection"]
    assert det["outcome"] == "missed detection"
    assert det["alarms"][0]["outcome"] == "missing" and det["time_to_alarm_s"] is None
    (finding,) = [f for f in o.result["findings"] if f["id"] == "D1"]
    assert ALARM in finding["summary"] and finding["section"] == "1.1"
    assert {v["outcome"] for v in det["verdicts"]} == {"missed"}


def test_alarm_that_cannot_trip_never_fires(sandbox, runs, tmp_path):
    settings = yaml.safe_load((TARGETS_DIR / "sandbox.yaml").read_text())
    settings["alarms"]["overrides"] = {ALARM: {"threshold": 0}}  # task count < 0: never
    settings["alarms"]["bound_s"] = 4.0
    path = tmp_path / "sandbox-untrippable.yaml"
    path.write_text(yaml.safe_dump(settings))
    o = _drill(runs, target=str(path))
    det = o.result["detection"]
    assert det["alarms"][0]["exists"] and det["alarms"][0]["outcome"] == "never fired", det
    assert det["outcome"] == "missed detection" and det["time_to_page_s"] is None
    assert [f["id"] for f in o.result["findings"] if f["id"].startswith("D")] == ["D2"]

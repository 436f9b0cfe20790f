"""Issue 12's detection verdict on a real sandbox drill: ``ECS-TaskCount-Low`` absent from
the target (the chain cannot detect). With the scenario's ``detection.gating`` true the run
fails on its ``detection`` verdict (exit 1, the gate fails); with the catalog's default
(false) the same verdict is listed as informational and the run passes."""

from __future__ import annotations

import dataclasses

import pytest

from mpac_drill.config import load_catalog, load_target
from mpac_drill.drill.runner import run_drill
from mpac_drill.errors import ExitCode

pytestmark = pytest.mark.sandbox
ALARM = "ECS-TaskCount-Low"


def _drill(runs, gating: bool):
    catalog = load_catalog()
    sc = catalog.get("ecs-task-failure")
    assert sc.detection is not None and sc.detection.gating is False  # the default
    if gating:
        detection = dataclasses.replace(sc.detection, gating=True)
        catalog.scenarios[sc.id] = dataclasses.replace(sc, detection=detection)
    target = load_target("sandbox", {"alarms.absent": [ALARM], "alarms.bound_s": 3.0})
    return run_drill("ecs-task-failure", target, runs_dir=runs, users=2, catalog=catalog)


def _by_metric(result):
    return {v["metric"]: v for v in result["verdicts"]}


def test_gating_detection_missed_fails_the_drill(sandbox, tmp_path):
    o = _drill(tmp_path, gating=True)
    r = o.result
    v = _by_metric(r)
    assert r["status"] == "completed" and r["detection"]["outcome"] == "missed detection"
    assert v["detection"]["outcome"] == "missed" and v["detection"]["gating"] is True
    assert f"alarm {ALARM} missing" in v["detection"]["reason"]
    assert all(x["passed"] for m, x in v.items() if m != "detection")  # only detection failed
    assert r["passed"] is False and r["outcome"] == "missed"
    assert o.exit_code == ExitCode.TARGET_MISSED


def test_non_gating_detection_missed_is_informational_and_the_drill_passes(sandbox, tmp_path):
    o = _drill(tmp_path, gating=False)
    r = o.result
    v = _by_metric(r)["detection"]
    assert v["outcome"] == "informational" and v["passed"] is False and v["gating"] is False
    assert r["passed"] is True and r["outcome"] == "met"
    assert o.exit_code == ExitCode.OK

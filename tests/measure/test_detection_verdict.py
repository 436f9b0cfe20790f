"""The detection chain as a verdict of the drill (``measure/detection_verdict.py``): pure,
over records made by ``detection.figures`` from readings; the catalog's ``gating`` key."""

from __future__ import annotations

import pytest
import yaml

from mpac_drill import EXPERIMENTS_DIR
from mpac_drill.config import load_catalog
from mpac_drill.errors import UsageError
from mpac_drill.measure.detection import figures
from mpac_drill.measure.detection_verdict import counts, drill_verdict

ALARM = "ECS-TaskCount-Low"


def _record(fire_at=None, page=None, ack=None, exists=True, pager=True, respond_s=30.0):
    """Injection at 100; alarm OK since 50; the bound 60 s."""
    hist = [{"at": 50.0, "from": "INSUFFICIENT_DATA", "to": "OK"}]
    if fire_at is not None:
        hist.append({"at": fire_at, "from": "OK", "to": "ALARM"})
    incidents = (
        [{"id": "Q1", "title": ALARM, "triggered_at": page, "acknowledged_at": ack}]
        if page is not None
        else []
    )
    reading = {
        "alarms": [
            {
                "name": ALARM,
                "exists": exists,
                "state": "OK",
                "state_updated_at": 50.0,
                "history": hist if exists else [],
            }
        ],
        "incidents": incidents,
        "calls": 2,
    }
    return figures(
        reading,
        injected_at=100.0,
        bound_s=60.0,
        severity="P1",
        respond_s=respond_s,
        update_s=900.0,
        source="sandbox",
        pager=pager,
    )


def test_detection_verdict_chain_within_response_time_is_met():
    v = drill_verdict(_record(fire_at=105.0, page=105.5, ack=110.0), gating=True)
    assert (v["metric"], v["value"], v["target"], v["passed"]) == ("detection", 10.0, 30.0, True)
    assert v["outcome"] == "met" and v["margin"] == 20.0 and counts(v)


@pytest.mark.parametrize(
    "record, why",
    [
        (dict(exists=False), f"alarm {ALARM} missing"),
        (dict(), f"alarm {ALARM} never fired"),
        (dict(fire_at=105.0), f"alarm {ALARM} fired without a page"),
        (dict(fire_at=105.0, page=105.5), "never acknowledged"),
        (dict(fire_at=105.0, page=105.5, ack=140.0), "acknowledged after 40 s, over §3.1's 30 s"),
    ],
    ids=["missing", "never-fired", "not-paged", "not-acked", "ack-too-late"],
)
def test_detection_verdict_failed_chain_is_missed_when_gating(record, why):
    v = drill_verdict(_record(**record), gating=True)
    assert v["passed"] is False and v["outcome"] == "missed" and counts(v)
    assert why in v["reason"], v["reason"]


def test_detection_verdict_without_pager_judges_the_alarm_only():
    v = drill_verdict(_record(fire_at=105.0, pager=False), gating=True)
    assert v["passed"] and v["value"] == 5.0  # no page, no ack: not a failure here
    v = drill_verdict(_record(pager=False), gating=True)
    assert not v["passed"] and "never fired" in v["reason"]


def test_detection_verdict_not_gating_is_informational_and_not_counted():
    v = drill_verdict(_record(exists=False), gating=False)
    assert v["outcome"] == "informational" and v["passed"] is False and not v["gating"]
    assert not counts(v)
    assert not counts(drill_verdict(_record(fire_at=105.0, page=105.5, ack=110.0), gating=False))


def test_catalog_detection_gating_defaults_false_and_must_be_a_boolean(tmp_path):
    catalog = load_catalog()
    assert all(sc.detection.gating is False for sc in catalog.scenarios.values() if sc.detection)
    data = yaml.safe_load((EXPERIMENTS_DIR / "catalog.yaml").read_text())
    row = next(r for r in data["scenarios"] if r["id"] == "ecs-task-failure")
    row["detection"]["gating"] = True
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_catalog(path).get("ecs-task-failure").detection.gating is True
    del row["detection"]["gating"]
    path.write_text(yaml.safe_dump(data))
    assert load_catalog(path).get("ecs-task-failure").detection.gating is False
    row["detection"]["gating"] = "yes"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UsageError, match="gating must be true or false"):
        load_catalog(path)

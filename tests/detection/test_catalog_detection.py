"""The catalog names each scenario's detection: alarms, severity, §3.1 response targets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mpac_drill import CATALOG_PATH
from mpac_drill.config import load_catalog
from mpac_drill.errors import UsageError


def _write(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(CATALOG_PATH.read_text())
    change(data)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_catalog_names_the_runbook_alarm_and_section_3_1_targets():
    catalog = load_catalog()
    ecs = catalog.get("ecs-task-failure").detection
    assert ecs is not None and ecs.severity == "P1"
    (alarm,) = ecs.alarms
    assert (alarm.name, alarm.metric, alarm.source) == (
        "ECS-TaskCount-Low",
        "RunningTaskCount",
        "runbook",
    )
    assert alarm.datapoints_to_alarm <= alarm.evaluation_periods
    targets = {s: (t.respond_s, t.update_s) for s, t in catalog.response_targets.items()}
    assert targets == {
        "P0": (300, 900),
        "P1": (900, 1800),
        "P2": (3600, 7200),
        "P3": (14400, 86400),
    }
    names = [a.name for a in catalog.alarms()]
    assert len(names) == len(set(names)) >= 5


def _ecs_alarm(data):
    return next(s for s in data["scenarios"] if s["id"] == "ecs-task-failure")["detection"][
        "alarms"
    ][0]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: _ecs_alarm(d).update(datapoints_to_alarm=5), "exceeds evaluation_periods"),
        (lambda d: _ecs_alarm(d).update(statistic="Median"), "statistic must be one of"),
        (lambda d: _ecs_alarm(d).update(comparison="Below"), "comparison must be one of"),
        (lambda d: _ecs_alarm(d).update(treat_missing_data="zero"), "treat_missing_data"),
        (lambda d: _ecs_alarm(d).update(period_s=0), "period_s must be above 0"),
        (lambda d: _ecs_alarm(d).update(threshold="low"), "threshold must be a number"),
        (lambda d: _ecs_alarm(d).pop("metric"), "lacks 'metric'"),
        (lambda d: _ecs_alarm(d).update(evaluation_periods=True), "whole number"),
        (
            lambda d: next(s for s in d["scenarios"] if s["id"] == "ecs-task-failure")[
                "detection"
            ].update(severity="P9"),
            "severity must be one of",
        ),
        (lambda d: d["response_targets"].pop("P1"), "has no response_targets entry"),
        (lambda d: d["response_targets"]["P0"].update(respond_s=-1), "non-negative"),
        (
            lambda d: next(s for s in d["scenarios"] if s["id"] == "region-failover")["detection"][
                "alarms"
            ].append(dict(_ecs_alarm(d), threshold=3)),
            "defined differently",
        ),
    ],
)
def test_bad_detection_in_catalog_is_one_clear_line(tmp_path, change, words):
    with pytest.raises(UsageError) as err:
        load_catalog(_write(tmp_path, change))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_catalog_without_detection_still_loads(tmp_path):
    def strip(data):
        data.pop("response_targets")
        for s in data["scenarios"]:
            s.pop("detection", None)

    catalog = load_catalog(_write(tmp_path, strip))
    assert catalog.alarms() == [] and catalog.response_targets == {}

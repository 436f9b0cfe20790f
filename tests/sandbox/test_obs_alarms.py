"""mpac-obs shows the sandbox's CloudWatch alarms (issue 12: "the sandbox's mpac-obs shows
them too"): its alarm list reads the daemon's alarms when asked, as Grafana's CloudWatch
data source does, so it can never disagree with ``sandbox status``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mpac_drill.config import load_catalog
from mpac_drill.grafana import DASHBOARDS_DIR
from mpac_drill.sandbox.alarms import Alarm
from mpac_drill.sandbox.control import read_state, state_dir, view
from mpac_drill.sandbox.obs import create_obs_app
from tests.sandbox.obs_server import serve
from tests.sandbox.test_obs_app import get


def _alarm(name: str, samples: list[float]) -> Alarm:
    (d,) = [a for a in load_catalog().alarms() if a.name == name]
    alarm = Alarm(definition=d, period_s=1.0, created_at=1000.5)
    for i, v in enumerate(samples):
        alarm.add_sample(1001.2 + i, v)
    alarm.evaluate(1001.0 + len(samples) + 0.1)
    return alarm


def test_the_alarm_list_is_the_data_sources_state_now(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    low = _alarm("ECS-TaskCount-Low", [0.0, 0.0, 0.0])
    ok = _alarm("ElastiCache-CacheHits-Low", [5.0, 5.0, 5.0])
    assert (low.state, ok.state) == ("ALARM", "OK")
    state.write_text(json.dumps({"detection": {"alarms": [low.as_dict(), ok.as_dict()]}}))
    app = create_obs_app(tmp_path / "bucket", DASHBOARDS_DIR, "tok", cloudwatch=state)
    with serve(app) as url:
        assert get(f"{url}/api/cloudwatch/alarms")[0] == 401  # Grafana's API: token needed
        status, body = get(f"{url}/api/cloudwatch/alarms", "tok")
        assert status == 200
        shown = {a["name"]: a for a in body["alarms"]}
        assert {n: a["state"] for n, a in shown.items()} == {
            "ECS-TaskCount-Low": "ALARM",
            "ElastiCache-CacheHits-Low": "OK",
        }
        assert shown["ECS-TaskCount-Low"]["state_updated_at"].endswith("Z")
        assert shown["ECS-TaskCount-Low"]["reason"].startswith("Threshold Crossed")
        state.write_text(json.dumps({"detection": {"alarms": [ok.as_dict()]}}))
        _, again = get(f"{url}/api/cloudwatch/alarms", "tok")
        assert [a["name"] for a in again["alarms"]] == ["ElastiCache-CacheHits-Low"]
        state.unlink()
        assert get(f"{url}/api/cloudwatch/alarms", "tok") == (
            502,
            {"message": "CloudWatch data source unreachable"},
        )


@pytest.mark.sandbox
def test_the_sandboxs_mpac_obs_lists_the_alarms_sandbox_status_shows(sandbox) -> None:
    url = view(sandbox).endpoints["services"]["mpac-obs"]
    deadline = time.monotonic() + 10
    while True:  # compare one read of each, taken while no alarm changed state
        before = read_state(state_dir(sandbox))["detection"]["alarms"]
        status, body = get(f"{url}/api/cloudwatch/alarms")
        after = read_state(state_dir(sandbox))["detection"]["alarms"]
        if [a["state"] for a in before] == [a["state"] for a in after]:
            break
        assert time.monotonic() < deadline, "alarms kept changing state"
    assert status == 200
    assert [(a["name"], a["state"]) for a in body["alarms"]] == [
        (a["name"], a["state"]) for a in after
    ]
    assert {a["name"] for a in body["alarms"]} >= {"ECS-TaskCount-Low", "ElastiCache-CacheHits-Low"}

"""The region drills' detection on the sandbox, against ground truth.

The region loss kills the primary sandbox's daemon, its alarms and its pager; Route53's
health checks, their alarm and a pager outside the region (``sandbox/healthcheck.py``,
beside the front door) see the primary's endpoints go and page on-call. Measured:
``Route53-HealthCheck-Failed`` (Minimum of HealthCheckStatus < 1, 5 of 5 datapoints) fires
about ``alarms.period_s`` × 5 after the loss (± one period + 0.5 s), plus the checkers'
failure threshold (3 probes at Route53's 30 s, scaled: 0.75 period); the page follows at
once; on-call acknowledges ``pager.ack_delay_s`` after the page (± 0.5 s).

Its own sandbox (ports 28xxx, DR 29xxx, front door 30xxx) so it never touches another.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from mpac_drill import EXPERIMENTS_DIR
from mpac_drill.config import Target, load_catalog, load_target
from mpac_drill.contract import schema_version
from mpac_drill.drill.runner import run_drill
from mpac_drill.sandbox import control, snapshots
from mpac_drill.sandbox.procs import postgres_home

pytestmark = pytest.mark.sandbox
BLOCK = 28000
RUNS = (("region-failover", 0.5, 1.0), ("pgw-region-failover", 0.5, 2.0))


@pytest.fixture(scope="module")
def region_sandbox(tmp_path_factory) -> Target:
    folder = tmp_path_factory.mktemp("region-detection")
    state = folder / "state"
    base = yaml.safe_load((EXPERIMENTS_DIR / "targets" / "sandbox.yaml").read_text())
    settings = control.private_settings(
        base, name="sandbox-region-detection", state_dir=state, port_block=BLOCK
    )
    settings["backup"]["base_interval_s"] = 600
    settings["region"].update(dr_port_offset=1000, front_door_port_offset=2000)
    path = folder / "sandbox-region-detection.yaml"
    path.write_text(yaml.safe_dump(settings))
    target = load_target(str(path))
    control.up(target)
    yield target
    control.down(target)  # also the DR stack, if one was left
    for b in (state, folder / "state-dr"):
        for d in (snapshots.bucket_dir(b), postgres_home(b / "rds")):
            if not str(d).startswith(str(folder)):
                shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def region_runs(region_sandbox, tmp_path_factory):
    runs = tmp_path_factory.mktemp("region-detection-runs")
    out = []
    for scenario, period, ack in RUNS:
        target = load_target(
            str(region_sandbox.path), {"alarms.period_s": period, "pager.ack_delay_s": ack}
        )
        out.append((scenario, period, ack, run_drill(scenario, target, runs_dir=runs, users=2)))
    return out


def test_route53_alarm_fires_after_period_times_datapoints_to_alarm(region_runs):
    catalog = load_catalog()
    for scenario, period, _, o in region_runs:
        r = o.result
        assert r["status"] == "completed", (scenario, r.get("reason"))
        det = r["detection"]
        (definition,) = catalog.get(scenario).detection.alarms
        (alarm,) = det["alarms"]
        assert alarm["name"] == definition.name and alarm["outcome"] == "fired", det
        assert alarm["state_at_injection"] == "OK", det  # healthy until the loss
        m = definition.datapoints_to_alarm
        assert abs(alarm["time_to_alarm_s"] - period * m) <= period + 0.5, (period, alarm)
        # with the checkers' failure threshold: 3 probes at 30 s scaled to period_s / 60
        expected = 3 * 30 * period / 60 + period * m
        assert abs(alarm["time_to_alarm_s"] - expected) <= period + 0.5, (expected, alarm)
        assert alarm["time_to_ok_s"] is None  # the primary's endpoint stays lost
        assert det["source"] == "sandbox" and det["outcome"] == "detected"
        assert not [f for f in r["findings"] if f["id"] in ("D1", "D2", "D3")]


def test_page_follows_and_ack_tracks_ack_delay_outside_the_region(region_runs):
    for scenario, _, ack, o in region_runs:
        det = o.result["detection"]
        assert 0 <= det["time_to_page_s"] - det["time_to_alarm_s"] <= 0.5, (scenario, det)
        assert abs((det["time_to_ack_s"] - det["time_to_page_s"]) - ack) <= 0.5, det
        assert [v["outcome"] for v in det["verdicts"]] == ["met"] * 3
        # the region loss takes both health checks' endpoints (api and pgw share the
        # region): each alarm pages; the pager outside the region paged them
        (incident,) = [i for i in det["incidents"] if det["alarms"][0]["name"] in i["title"]]
        assert (
            incident["id"].startswith("R53-")
            and incident["time_to_page_s"] == (det["time_to_page_s"])
        )
        # the primary's daemon was killed with its region: the page did not come from it
        state = json.loads((o.run_dir / "route53-health-checks.json").read_text())
        assert state["sns"]["delivered"] >= 1 and state["health_checks"][0]["status"] == 0
        (verdict,) = [v for v in o.result["verdicts"] if v["metric"] == "detection"]
        assert verdict["passed"] and verdict["outcome"] == "informational"


def test_region_drill_results_keep_to_the_contract(region_runs):
    from mpac_drill.contract import validate_result

    for _, _, _, o in region_runs:
        assert o.result["schema_version"] == schema_version()  # what the harness writes
        assert validate_result(o.result) == []


def test_the_drill_leaves_no_checker_running(region_runs, region_sandbox):
    from mpac_drill.sandbox.healthcheck import active

    assert active(Path(str(region_sandbox.require("state_dir")))) is None

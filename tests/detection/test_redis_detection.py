"""The Redis scenario's default CacheHits alarm (catalog: SampleCount of CacheHits < 1,
missing data breaching): OK on an idle sandbox and under a drill's load, so a Redis drill
no longer starts "already in alarm", and ALARM when the primary fails."""

from __future__ import annotations

import time

import pytest

from mpac_drill.config import load_catalog, load_target
from mpac_drill.drill.runner import run_drill
from mpac_drill.platform.sandbox.detection import read_live
from mpac_drill.sandbox.control import state_dir

pytestmark = pytest.mark.sandbox
ALARM = "ElastiCache-CacheHits-Low"


def _state(sandbox) -> str | None:
    (alarm,) = read_live(state_dir(sandbox), [ALARM])["alarms"]
    assert alarm["exists"], "the sandbox creates the catalog's CacheHits alarm"
    return alarm["state"]


def test_catalog_default_counts_reports_not_hits():
    (hits,) = [a for a in load_catalog().get("redis-failover").detection.alarms if a.name == ALARM]
    assert (hits.statistic, hits.comparison, hits.threshold) == (
        "SampleCount",
        "LessThanThreshold",
        1,
    )
    assert hits.treat_missing_data == "breaching"


def test_cache_hits_alarm_is_ok_on_an_idle_sandbox(sandbox):
    period = float(sandbox.get("alarms.period_s"))
    deadline = time.monotonic() + 6 * period + 5
    while _state(sandbox) != "OK" and time.monotonic() < deadline:
        time.sleep(0.1)
    seen = set()
    for _ in range(int(4 * period / 0.1)):  # four idle periods: no request reaches Redis
        seen.add(_state(sandbox))
        time.sleep(0.1)
    assert seen == {"OK"}


def test_redis_drill_under_load_starts_ok_and_its_alarm_fires(sandbox, tmp_path):
    o = run_drill(
        "redis-failover",
        load_target("sandbox"),
        runs_dir=tmp_path / "runs",
        users=2,
    )
    det = o.result["detection"]
    (hits,) = [a for a in det["alarms"] if a["name"] == ALARM]
    assert hits["state_at_injection"] == "OK", det
    assert hits["outcome"] == "fired" and hits["time_to_alarm_s"] is not None, det
    assert det["time_to_page_s"] is not None
    assert not [f for f in o.result["findings"] if f["id"] == "D2" and ALARM in f["summary"]], (
        o.result["findings"]
    )

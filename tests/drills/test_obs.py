"""obs-failure (runbook 1.6): the stack is really replaced, and its history survives it."""

from __future__ import annotations

import json
import urllib.request

import pytest

from mpac_drill.config import load_target
from mpac_drill.drill.runner import run_drill
from mpac_drill.sandbox import control

pytestmark = pytest.mark.sandbox


def test_obs_redeployed_history_readable_dashboards_provisioned(sandbox, runs_dir):
    before = control.view(sandbox).component("mpac-obs/task-1")["pid"]
    target = load_target("sandbox", {"ecs.task_start_delay_s": 1.5})
    outcome = run_drill("obs-failure", target, runs_dir=runs_dir, users=2)
    r = outcome.result
    assert r["status"] == "completed", r.get("reason")
    after = control.view(sandbox).component("mpac-obs/task-1")["pid"]
    assert after != before  # a new task: nothing survived in the old process
    m, obs = r["measurements"], r["obs"]
    assert m["rto_s"] >= 1.5  # never before the configured redeploy delay
    assert obs["history_lines_acked"] > 10 and obs["history_lines_lost"] == 0
    assert m["lost_writes"] == 0 and m["rpo_s"] == 0.0
    assert obs["dashboards_missing"] == 0 and obs["dashboards_expected"] == 3
    assert {v["metric"]: v["passed"] for v in r["verdicts"]} == {
        "rto_s": True,
        "rpo_s": True,
        "dashboards_missing": True,
        "steady_state_restored": True,
    }
    # the history really is in the bucket: the new task serves lines the old one stored
    url = control.view(sandbox).endpoints["services"]["mpac-obs"]
    stream = f"drill-{outcome.run_dir.name.lower()[:50]}"
    with urllib.request.urlopen(f"{url}/query?stream={stream}", timeout=5) as resp:
        lines = json.loads(resp.read())["lines"]
    assert len(lines) >= obs["history_lines_acked"]

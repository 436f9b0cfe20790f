"""`gameday resume` refuses what it cannot continue: one clear line, exit 2, nothing run."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import run_cli


def _state(tmp_path, **kw):
    run = tmp_path / "20261130T000000Z-region-failover-sandbox"
    run.mkdir()
    gd = {"scenario": "region-failover", "target": "sandbox", "status": "interrupted",
          "current": 3, "harness_pid": None, "severity": "P0",
          "targets": {"respond_s": 300, "update_s": 900},
          "steps": [{"number": 1, "name": "detect region loss", "manual": True}]} | kw  # fmt: skip
    (run / "gameday.json").write_text(json.dumps(gd))
    return run


@pytest.mark.parametrize(
    ("state", "says"),
    [
        ({"status": "done"}, "is done"),
        ({"status": "walking", "harness_pid": os.getpid()}, "still walked by process"),
        ({"target": "staging"}, "ran on 'staging'"),
    ],
)
def test_resume_refuses_with_one_line(tmp_path, state, says):
    run = _state(tmp_path, **state)
    res = run_cli("gameday", "resume", str(run), "--runs-dir", str(tmp_path))
    assert res.code == 2, res.err
    assert len(res.err.strip().splitlines()) == 1 and says in res.err, res.err
    assert sorted(p.name for p in tmp_path.iterdir()) == [run.name]  # no drill started


def test_resume_of_no_game_day_is_one_line(tmp_path):
    res = run_cli("gameday", "resume", "nothing-here", "--runs-dir", str(tmp_path))
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1, res.err

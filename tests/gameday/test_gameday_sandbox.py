"""A sandbox game day driven by a scripted operator (a separate process running the
plan's commands and `mpac-drill gameday ack` at known delays)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mpac_drill.sandbox import control
from tests.conftest import run_cli
from tests.gameday.scripted import start_operator

#: seconds from "shown" to the operator's ack, per step
DELAYS = {1: 1.0, 2: 2.0, 3: 0.6, 4: 0.8, 5: 0.6, 6: 0.9, 7: 0.7}
TOLERANCE_S = 0.3


@pytest.fixture(scope="module")
def scripted_run(gameday_target, tmp_path_factory):
    runs = tmp_path_factory.mktemp("gameday-runs")
    operator = start_operator(runs, gameday_target.path, DELAYS)
    try:
        res = run_cli(
            "gameday",
            "region-failover",
            "--target",
            str(gameday_target.path),
            "--runs-dir",
            str(runs),
            "--users",
            "1",
            "--manual",
            "all",
            timeout=400,
        )
        op_out, op_err = operator.communicate(timeout=30)
    finally:
        operator.kill()
    run_dir = next(runs.glob("*/result.json")).parent
    result = json.loads((run_dir / "result.json").read_text())
    return res, result, run_dir, op_err


def test_people_time_is_the_scripted_delay(scripted_run):
    res, result, _, op_err = scripted_run
    assert res.code == 0, (res.out[-2000:], res.err[-2000:], op_err[-2000:])
    steps = result["gameday"]["steps"]
    assert [s["number"] for s in steps] == list(range(1, 8))
    for s in steps:
        assert abs(s["people_s"] - DELAYS[s["number"]]) <= TOLERANCE_S, s
        assert s["who"] and "@" in s["who"]
        assert s["notes"] == [f"scripted {DELAYS[s['number']]} s"]


def test_effects_are_seen_by_the_checks(scripted_run):
    _, result, _, _ = scripted_run
    for s in result["gameday"]["steps"]:
        assert s["effect_seen_at"] is not None, s
        assert s["machine_s"] is not None and s["machine_s"] >= 0
    # the record switch takes effect only when the operator's switch is applied
    switch = result["gameday"]["steps"][5]
    assert switch["effect_seen_at"] >= switch["shown_at"]
    assert result["region"]["route53_change"]["region"] == "us-east-1"


def test_rto_includes_the_people_time(scripted_run):
    _, result, _, _ = scripted_run
    g = result["gameday"]
    rto = result["measurements"]["rto_s"]
    assert rto is not None
    assert rto >= sum(DELAYS.values()) - TOLERANCE_S
    assert g["response_s"] >= g["steps"][0]["people_s"]  # injection -> declared
    assert g["rto_from_declaration_s"] == pytest.approx(rto - g["response_s"], abs=1e-3)
    assert g["response_met"] is True  # P0: 300 s
    assert [s["name"] for s in result["steps"]] == [s["name"] for s in g["steps"]]


def test_dry_run_prints_every_command_and_calls_nothing(gameday_target, tmp_path):
    dr_dir = Path(str(control.state_dir(gameday_target)) + "-dr")
    before = sorted(p.name for p in dr_dir.iterdir()) if dr_dir.exists() else []
    res = run_cli(
        "gameday",
        "region-failover",
        "--target",
        str(gameday_target.path),
        "--runs-dir",
        str(tmp_path),
        "--dry-run",
    )
    assert res.code == 0, res.err
    for sub in ("activate", "set-parameter DATABASE_URL", "restart", "switch", "verify"):
        assert f"mpac-drill sandbox dr {sub} --target {gameday_target.path}" in res.out
    assert "nothing was called" in res.out
    assert list(tmp_path.iterdir()) == []
    after = sorted(p.name for p in dr_dir.iterdir()) if dr_dir.exists() else []
    assert after == before


def test_bad_input_is_one_line_exit_2(tmp_path):
    for args in (
        ("gameday", "no-such", "--dry-run"),
        ("gameday", "region-failover", "--manual", "9", "--dry-run"),
        ("gameday", "ack", str(tmp_path), "1"),
    ):
        res = run_cli(*args)
        assert res.code == 2, (args, res.err)
        assert len(res.err.strip().splitlines()) == 1, res.err

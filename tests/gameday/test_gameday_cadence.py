"""Runbook §3 cadence on a sandbox game day with a short update interval: the harness
prompts when an update is due, `mpac-drill gameday update RUN` records one, and the result
holds the response time and whether the updates kept the cadence."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from mpac_drill import PROJECT_ROOT
from tests.conftest import run_cli
from tests.gameday.scripted import start_operator

DELAYS = {1: 1.0, 2: 9.0}  # steps 1 and 2 manual, the rest automated
EVERY_S = 4.0

#: posts an update every ``sys.argv[2]`` seconds from the declaration (step 1 confirmed)
#: until the walk ends
UPDATER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from mpac_drill.cli import main
    runs, every = Path(sys.argv[1]), float(sys.argv[2])
    deadline = time.time() + 240
    while True:
        found = list(runs.glob("*/gameday.json"))
        if found:
            try:
                gd = json.loads(found[0].read_text())
            except ValueError:
                continue
            if gd["steps"][0].get("confirmed_ts"):
                break
        assert time.time() < deadline
        time.sleep(0.02)
    run, n = found[0].parent, 0
    while gd["status"] == "walking" and time.time() < deadline:
        time.sleep(every)
        n += 1
        main(["gameday", "update", str(run), "--note", f"update {n}"])
        try:
            gd = json.loads((run / "gameday.json").read_text())
        except ValueError:
            pass
    """
)


def _game_day(target, runs, updates_every: float | None):
    operator = start_operator(runs, target.path, DELAYS)
    updater = None
    if updates_every is not None:
        updater = subprocess.Popen(
            [sys.executable, "-c", UPDATER, str(runs), str(updates_every)],
            cwd=PROJECT_ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        res = run_cli(
            "gameday", "region-failover", "--target", str(target.path), "--runs-dir",
            str(runs), "--users", "1", "--manual", "1,2", "--update-every", str(EVERY_S),
            timeout=400,
        )  # fmt: skip
        operator.communicate(timeout=30)
        if updater is not None:
            updater.communicate(timeout=30)
    finally:
        operator.kill()
        if updater is not None:
            updater.kill()
    assert res.code == 0, (res.out[-2000:], res.err[-2000:])
    (path,) = runs.glob("*/result.json")
    return res, json.loads(path.read_text())["gameday"]


@pytest.fixture(scope="module")
def kept(gameday_target, tmp_path_factory):
    return _game_day(gameday_target, tmp_path_factory.mktemp("cadence-kept"), EVERY_S / 4)


@pytest.fixture(scope="module")
def missed(gameday_target, tmp_path_factory):
    return _game_day(gameday_target, tmp_path_factory.mktemp("cadence-missed"), None)


def test_updates_on_cadence_are_recorded_and_compliant(kept):
    _, g = kept
    assert g["update_target_s"] == EVERY_S
    assert len(g["updates"]) >= 2, g["updates"]
    assert g["updates"][0]["note"] == "update 1" and "@" in g["updates"][0]["who"]
    assert g["max_update_gap_s"] <= EVERY_S, g
    assert g["update_compliant"] is True
    # response: injection -> incident declared (step 1 confirmed), against P0's 300 s
    assert g["response_s"] >= DELAYS[1] - 0.3
    assert g["response_met"] is True and g["respond_target_s"] == 300


def test_a_missed_update_is_prompted_and_not_compliant(missed):
    res, g = missed
    assert g["updates"] == []
    assert g["update_prompts"] >= 2  # step 2 alone outlasts two intervals
    assert "UPDATE DUE" in res.out and "gameday update" in res.out
    assert g["max_update_gap_s"] > EVERY_S * 2
    assert g["update_compliant"] is False
    assert g["response_met"] is True  # the response was on time; only the cadence failed

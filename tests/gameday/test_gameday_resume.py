"""An interrupted game day (SIGINT, then SIGTERM, to the harness mid-plan) resumed with
`mpac-drill gameday resume RUN`: one timeline, the gap marked, never merged into a step."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from mpac_drill import PROJECT_ROOT
from tests.conftest import run_cli
from tests.gameday.scripted import acked_after, start_operator

BEFORE = {1: 0.8, 2: 1.2}  # acked before the interruption
AFTER = {3: 1.2, 4: 1.2, 5: 1.5, 6: 1.2, 7: 1.2}  # after `resume`, with room for commands
AWAY_S = 2.0  # the harness stays down at least this long
TOLERANCE_S = 0.3


def _gameday(target, runs) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from mpac_drill.cli import main; sys.exit(main())",
            "gameday",
            "region-failover",
            "--target",
            str(target.path),
            "--runs-dir",
            str(runs),
            "--users",
            "1",
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_shown(run_dir, number: int, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            gd = json.loads((run_dir / "gameday.json").read_text())
        except (OSError, ValueError):
            gd = {}
        if gd.get("current") == number and gd["steps"][number - 1].get("shown_at_ts"):
            return
        time.sleep(0.05)
    raise AssertionError(f"step {number} was never shown")


@pytest.fixture(scope="module", params=[signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def resumed(request, gameday_target, tmp_path_factory):
    runs = tmp_path_factory.mktemp("gameday-resume")
    operator = start_operator(runs, gameday_target.path, BEFORE)
    harness = _gameday(gameday_target, runs)
    try:
        while not list(runs.glob("*/gameday.json")):
            assert harness.poll() is None, harness.communicate()
            time.sleep(0.05)
        first = next(runs.glob("*/gameday.json")).parent
        _wait_shown(first, 3)
        time.sleep(0.3)
        harness.send_signal(request.param)
        out1, err1 = harness.communicate(timeout=120)
        op1, _ = operator.communicate(timeout=30)
    finally:
        harness.kill()
        operator.kill()
    stopped_at = time.time()
    time.sleep(max(0.0, AWAY_S - (time.time() - stopped_at)))
    operator = start_operator(runs, gameday_target.path, AFTER)
    try:
        res = run_cli(
            "gameday", "resume", first.name, "--target", str(gameday_target.path),
            "--runs-dir", str(runs), "--users", "1", timeout=400,
        )  # fmt: skip
        op2, op_err = operator.communicate(timeout=30)
    finally:
        operator.kill()
    first_result = json.loads((first / "result.json").read_text())
    second = [p.parent for p in runs.glob("*/result.json") if p.parent != first]
    assert len(second) == 1, (res.out[-2000:], res.err[-2000:], op_err[-2000:])
    result = json.loads((second[0] / "result.json").read_text())
    acked = acked_after(op1) | acked_after(op2)
    return (
        harness.returncode,
        (out1, err1),
        first_result,
        res,
        result,
        op_err,
        first,
        request.param,
        acked,
    )


def test_the_interruption_stops_the_walk_and_says_how_to_resume(resumed):
    code, (out1, err1), first_result, _, _, _, first, _, _ = resumed
    assert code != 0, (out1[-1500:], err1[-1500:])
    g = first_result["gameday"]
    assert g["status"] == "interrupted", g["status"]
    assert f"gameday resume {first}" in out1
    assert [s["confirmed_at"] is not None for s in g["steps"]][:3] == [True, True, False]


def test_resume_continues_at_the_step_with_the_gap_marked(resumed):
    _, _, _, res, result, op_err, first, sig, acked = resumed
    assert res.code == 0, (res.out[-2000:], res.err[-2000:], op_err[-2000:])
    g = result["gameday"]
    assert g["status"] == "done"
    assert [seg["from_step"] for seg in g["segments"]] == [1, 3]
    assert g["segments"][0]["run_dir"] == str(first)
    (gap,) = g["gaps"]
    assert gap["step"] == 3 and gap["reason"] == sig.name
    assert gap["gap_s"] >= AWAY_S, gap
    steps = {s["number"]: s for s in g["steps"]}
    # one timeline: the steps before the gap kept as measured, the others walked after it
    for n, delay in {**BEFORE, **AFTER}.items():
        # the scripted delay, or later when the operator's own command took longer
        began, ended = acked[n]
        assert began >= delay - 0.05, acked
        assert began - 0.05 <= steps[n]["people_s"] <= ended + 0.05, (steps[n], acked[n])
        assert steps[n]["effect_seen_at"] is not None, steps[n]
    assert steps[2]["confirmed_at"] < gap["from"] < gap["to"] <= steps[3]["shown_at"]
    # the gap is not people time: step 3's people time is the operator's time only
    assert sum(a for a, _ in acked.values()) - 0.5 <= g["people_s"]
    assert g["people_s"] <= sum(b for _, b in acked.values()) + 0.5  # the gap is not in it
    assert g["rto_timeline_s"] >= gap["gap_s"] + sum(AFTER.values())
    assert g["rto_timeline_without_gaps_s"] == pytest.approx(
        g["rto_timeline_s"] - g["gap_s"], abs=1e-3
    )
    assert any("replayed by the harness after the gap" in n for n in steps[2]["notes"])

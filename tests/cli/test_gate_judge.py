"""The gate over repeated runs and against a baseline, from hand-made result.json files:
the judged statistic, the regression bounds, the JUnit text, and usage errors."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mpac_drill.cli.gate import judge_regressions, judge_runs, load_baseline
from mpac_drill.config import load_catalog
from mpac_drill.junit import JUDGED_SUITE, write_junit
from tests.conftest import run_cli
from tests.test_contract import PASSED


def _result(run_id: str, rto: float | None, *, quarter: str = "2026-Q3", **extra):
    r = copy.deepcopy(PASSED)
    r.update(run_id=run_id, scenario="rds-failover", target="sandbox", quarter=quarter, **extra)
    r["measurements"]["rto_s"] = rto
    r["measurements"]["rpo_s"] = 0.0
    return r


def _write(folder: Path, results: list[dict]) -> None:
    for r in results:
        (folder / r["run_id"]).mkdir(parents=True)
        (folder / r["run_id"] / "result.json").write_text(json.dumps(r))


def test_judge_runs_worst_fails_on_one_slow_run_median_does_not():
    runs = [_result(f"r{i}", rto) for i, rto in enumerate([2.0, 2.1, 400.0])]
    catalog = load_catalog()  # rds-failover: rto_s 300
    worst = {j.name: j for j in judge_runs(runs, catalog, "worst")}
    median = {j.name: j for j in judge_runs(runs, catalog, "median")}
    assert not worst["rto_s worst of 3 runs"].passed
    assert median["rto_s median of 3 runs"].passed
    assert "400.00 s" in worst["rto_s worst of 3 runs"].message


def test_regression_beyond_both_bounds_fails_and_names_both_run_sets():
    base = [_result(f"base{i}", 2.2 + i / 100) for i in range(3)]
    slower = [_result(f"cand{i}", 4.2 + i / 100, quarter="2026-Q4") for i in range(3)]
    same = [_result(f"same{i}", 2.25 + i / 100, quarter="2026-Q4") for i in range(3)]
    (bad,) = judge_regressions(slower, base, "2026-Q3 runs in runs", "this gate", (0.25, 1.0))
    (good,) = judge_regressions(same, base, "2026-Q3 runs in runs", "this gate", (0.25, 1.0))
    assert not bad.passed and good.passed
    for text in ("4.21 s", "2.21 s", "cand0", "base0", "2026-Q3 runs in runs", "this gate"):
        assert text in bad.message, text


def test_regression_without_baseline_runs_of_the_scenario_is_skipped():
    (j,) = judge_regressions([_result("c", 4.0)], [], "runs in x", "this gate", (0.25, 1.0))
    assert j.skipped and j.passed and "no baseline run" in j.message


def test_load_baseline_by_quarter_and_by_folder(tmp_path: Path):
    _write(tmp_path, [_result("q3", 2.0), _result("q4", 3.0, quarter="2026-Q4")])
    _write(tmp_path / "failed", [_result("bad", 1.0, status="failed")])
    label, q3 = load_baseline("2026-Q3", tmp_path)
    assert [r["run_id"] for r in q3] == ["q3"] and "2026-Q3" in label
    _, every = load_baseline(str(tmp_path), tmp_path / "elsewhere")
    assert sorted(r["run_id"] for r in every) == ["q3", "q4"]


def test_junit_judged_suite_fails_on_regression_and_keeps_run_misses_informational(
    tmp_path: Path,
):
    base = [_result(f"base{i}", 2.2) for i in range(2)]
    cand = [_result(f"cand{i}", 4.3) for i in range(2)]
    cand[0]["verdicts"][0]["passed"] = False  # one run's own miss: shown, not failed
    judged = [j.__dict__ for j in judge_regressions(cand, base, "B", "C", (0.25, 1.0))]
    path = tmp_path / "gate.xml"
    write_junit(cand, path, judged=judged, runs_informational=True)
    root = ET.parse(path).getroot()
    suite = next(s for s in root.findall("testsuite") if s.get("name") == JUDGED_SUITE)
    failure = suite.find("testcase/failure")
    assert failure is not None and failure.get("type") == "Regressed"
    assert "4.30 s" in failure.get("message") and "2.20 s" in failure.get("message")
    assert root.get("failures") == "1"


@pytest.mark.parametrize(
    "args, words",
    [
        (("gate", "--baseline", "not-a-quarter-nor-a-folder"), "--baseline"),
        (("gate", "--repeat", "0"), "--repeat"),
        (("gate", "--judge", "mean"), "--judge"),
        (("run", "rds-failover", "--repeat", "x"), "--repeat"),
    ],
)
def test_bad_repeat_judge_baseline_is_one_line_exit_2(args, words):
    r = run_cli(*args, timeout=60)
    assert r.code == 2, r
    assert len(r.err.strip().splitlines()) == 1 and words in r.err

"""``mpac-drill check`` end to end on moto: exit codes, call count, time, history, JUnit,
and a dry run that sends nothing."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from mpac_drill.cli import main
from mpac_drill.config import Target
from mpac_drill.errors import HarnessError
from mpac_drill.readiness import history
from mpac_drill.readiness.history import load_checks, validate_check

pytestmark = pytest.mark.aws


def test_full_check_on_moto_fails_counts_calls_stores_history_and_junit(
    staging: Callable[..., Target],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = staging()  # staging's names: nothing exists in moto, so checks fail
    runs, junit = tmp_path / "runs", tmp_path / "check.xml"
    t0 = time.monotonic()
    code = main(
        ["check", "--target", str(target.path), "--runs-dir", str(runs), "--junit", str(junit)]
    )
    took = time.monotonic() - t0
    out = capsys.readouterr().out
    assert code == 1
    assert took <= 5.0, f"a full check on moto took {took:.2f} s"
    assert "AWS read call(s)" in out and "figures from AWS staging" in out
    stored, problems = load_checks(runs)
    assert not problems and len(stored) == 1
    doc = stored[0]
    assert 10 <= doc["calls"] <= 20, doc["calls"]  # bounded: one call per resource group
    assert f"{doc['calls']} AWS read call(s)" in out
    assert doc["summary"]["fail"] >= 1 and doc["exit_code"] == 1
    assert {r["scenario"] for r in doc["rows"]} >= {"ecs-task-failure", "rds-failover", "all"}
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and int(suite.get("failures", "0")) == doc["summary"]["fail"]


def test_json_output_is_the_stored_document(
    staging: Callable[..., Target], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "check",
            "--target",
            str(staging().path),
            "--runs-dir",
            str(tmp_path),
            "--scenarios",
            "redis-failover",
            "--json",
        ]
    )
    printed = json.loads(capsys.readouterr().out)
    assert code == 1 and validate_check(printed) == []
    assert {r["scenario"] for r in printed["rows"]} <= {"redis-failover", "all"}


def test_dry_run_lists_calls_and_sends_nothing(
    staging: Callable[..., Target],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    loopback_only: list[tuple[str, int]],
) -> None:
    target = staging()
    loopback_only.clear()
    code = main(["check", "--target", str(target.path), "--runs-dir", str(tmp_path), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "dry-run ecs DescribeServices (ap-northeast-1)" in out
    assert "dry-run rds DescribeDBSnapshots (us-east-1)" in out
    assert "none made" in out
    assert loopback_only == []  # not even the moto server was contacted
    assert not (tmp_path / "checks").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--scenarios", "nope"], "unknown scenario 'nope'"),
        (["--scenarios", ","], "--scenarios is empty"),
        (["--target", "no-such-target"], "no-such-target"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert words in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_missing_schema_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, staging: Callable[..., Target]
) -> None:
    monkeypatch.setattr(history, "SCHEMA_PATH", tmp_path / "gone.schema.json")
    with pytest.raises(HarnessError, match="is missing"):
        history.validate_check({"kind": "check"})


def test_invalid_history_file_is_refused_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "checks"
    folder.mkdir()
    (folder / "20260101T000000Z.json").write_text(json.dumps({"kind": "check"}))
    runs, problems = load_checks(tmp_path)
    assert runs == [] and "20260101T000000Z.json" in problems[0] and "lacks" in problems[0]

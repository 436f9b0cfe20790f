"""Stop conditions, secrets, and the gate with its report, on real sandbox drills."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mpac_drill.sandbox import control
from tests.conftest import run_cli

pytestmark = pytest.mark.sandbox

AWS_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAMPACDRILLTEST0001",
    "AWS_SECRET_ACCESS_KEY": "mpacDrillSecretKeyNeverWritten0123456789",
    "AWS_SESSION_TOKEN": "mpacDrillSessionTokenNeverWritten987",
}


def _files(*roots: Path):
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file():
                yield p


def test_recovery_past_hard_bound_aborts_with_reason_and_rolls_back(sandbox, runs_dir):
    r = run_cli(
        "run",
        "ecs-task-failure",
        "--users",
        "2",
        "--runs-dir",
        str(runs_dir),
        "--set",
        "drill.recovery_bound_s=1",
        "--set",
        "ecs.task_start_delay_s=3",
    )
    assert r.code == 1, r.err
    result = json.loads(next(runs_dir.glob("*/result.json")).read_text())
    assert result["status"] == "aborted"
    assert "hard bound of 1 s" in result["reason"]
    assert result["passed"] is False
    journal = json.loads(next(runs_dir.glob("*/journal.json")).read_text())
    assert [rb["activity"]["name"] for rb in journal["rollbacks"]] == [
        "stop-observers",
        "stop-load",
        "await-recovery",
    ]
    control.wait_healthy(sandbox, timeout_s=30)


def test_load_failure_rate_stop_condition_aborts(sandbox, runs_dir):
    r = run_cli(
        "run",
        "ecs-task-failure",
        "--users",
        "6",
        "--runs-dir",
        str(runs_dir),
        "--set",
        "stop.max_failure_rate=0.1",
        "--set",
        "stop.max_failure_rate_for_s=1",
        "--set",
        "ecs.task_start_delay_s=8",
    )
    assert r.code == 1, r.err
    result = json.loads(next(runs_dir.glob("*/result.json")).read_text())
    assert result["status"] == "aborted", result.get("reason")
    assert "load failure share above 10%" in result["reason"]
    control.wait_healthy(sandbox, timeout_s=30)


def test_no_secret_in_run_folder_journal_or_report(sandbox, runs_dir, tmp_path):
    env = {**os.environ, **AWS_SECRETS}
    r = run_cli("run", "redis-failover", "--users", "3", "--runs-dir", str(runs_dir), env=env)
    assert r.code == 0, r.err
    out = tmp_path / "report"
    rep = run_cli("report", "--runs-dir", str(runs_dir), "--out", str(out), env=env)
    assert rep.code in (0, 1), rep.err
    view = control.view(sandbox)
    secrets = [view.secrets["db_password"], view.secrets["jwt_secret"], *AWS_SECRETS.values()]
    checked = 0
    for path in _files(runs_dir, out):
        data = path.read_bytes()
        checked += 1
        for secret in secrets:
            assert secret.encode() not in data, f"{secret[:4]}... found in {path}"
        assert b"eyJhbGciOi" not in data, f"a JWT found in {path}"  # no issued token
        assert b"password=" not in data, f"a DSN password in {path}"
    assert checked >= 8
    for text in (r.out, r.err, rep.out, rep.err):
        for secret in secrets:
            assert secret not in text


def test_gate_writes_junit_and_report_matches_runs(sandbox, runs_dir, tmp_path):
    junit = tmp_path / "gate.xml"
    r = run_cli("gate", "--users", "3", "--runs-dir", str(runs_dir), "--junit", str(junit))
    assert r.code == 0, r.out + r.err
    results = [json.loads(p.read_text()) for p in runs_dir.glob("*/result.json")]
    assert sorted(x["scenario"] for x in results) == [
        "ecs-task-failure",
        "rds-failover",
        "redis-failover",
    ]
    tree = ET.parse(junit)
    cases = tree.getroot().iter("testcase")
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert ("rds-failover", "rto_s") in names and ("redis-failover", "duplicate_orders") in names
    assert not list(tree.getroot().iter("failure"))
    out = tmp_path / "report"
    quarter = (
        results[0]["started_at"][:4] + "-Q" + str((int(results[0]["started_at"][5:7]) - 1) // 3 + 1)
    )
    rep = run_cli("report", quarter, "--runs-dir", str(runs_dir), "--out", str(out))
    md = (out / f"{quarter}.md").read_text()
    assert (out / f"{quarter}.html").is_file() and (out / f"{quarter}.csv").is_file()
    for x in results:  # the measured RTO of every run is in the report
        assert x["run_id"] in md
    csv_text = (out / f"{quarter}.csv").read_text()
    for x in results:
        assert x["run_id"] in csv_text
    # Q4's schedule holds all seven scenarios; four have no drill yet: not compliant, exit 1
    assert rep.code in (0, 1)
    assert "not run" in md.lower()


def test_second_drill_on_same_target_is_refused_while_one_runs(sandbox, runs_dir):
    import subprocess
    import sys
    import time

    from mpac_drill import PROJECT_ROOT

    first = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from mpac_drill.cli import main; sys.exit(main())",
            "run",
            "ecs-task-failure",
            "--users",
            "2",
            "--runs-dir",
            str(runs_dir),
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(runs_dir.glob("*-ecs-task-failure-sandbox")):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.1)
        second = run_cli("run", "rds-failover", "--runs-dir", str(runs_dir))
        assert second.code == 2, second.err
        assert "already running against target sandbox: ecs-task-failure" in second.err
        assert second.err.strip().count("\n") == 0
    finally:
        assert first.wait(timeout=120) == 0
    assert len(list(runs_dir.glob("*/result.json"))) == 1  # the refused one wrote nothing
    control.wait_healthy(sandbox, timeout_s=30)

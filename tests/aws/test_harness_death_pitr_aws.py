"""AWS drills (moto) with the harness killed for real (SIGKILL): the point-in-time drill
once its restored instance exists (``mpac-drill recover`` deletes it), and the RDS failover
drill with its canary writing to a real local PostgreSQL (recover purges the run's canary
rows). Both runs get their result.json (aborted, "harness died").

The AWS point-in-time drill runs no canary (the restore is not verified there), so the
canary-rows undo is exercised through the failover drill.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from mpac_drill import PROJECT_ROOT
from mpac_drill.drill.inflight import INFLIGHT_FILE
from tests.aws.hold_proxy import holding
from tests.aws.test_canary_aws import (  # noqa: F401 - fixtures
    CanaryDb,
    canary_db,
    health_url,
    rds_target,
)
from tests.conftest import run_cli
from tests.drills.death import CLI

pytestmark = pytest.mark.aws


def _rows(db: CanaryDb, run_id: str) -> int:
    with psycopg.connect(db.dsn()) as conn:
        if conn.execute("SELECT to_regclass('canary')").fetchone()[0] is None:
            return 0  # the harness has not created it yet
        return conn.execute("SELECT count(*) FROM canary WHERE run_id = %s", (run_id,)).fetchone()[
            0
        ]


def _pitr_instances(moto: Callable[[str], Any], source: str) -> list[str]:
    return [
        d["DBInstanceIdentifier"]
        for d in moto("rds").describe_db_instances()["DBInstances"]
        if d["DBInstanceIdentifier"].startswith(f"{source}-pitr-")
    ]


def _run_and_kill(
    target: Any,
    tmp_path: Path,
    scenario: str,
    ready: Callable,
) -> Path:
    """``mpac-drill run SCENARIO`` on a target file written from ``target``; SIGKILL once
    ``ready(undo)`` holds for its inflight record's undo plan; the run folder."""
    path = tmp_path / "target.yaml"  # the harness reads it in its own process
    path.write_text(yaml.safe_dump(target.settings), encoding="utf-8")
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [*CLI, "run", scenario, "--target", str(path), "--users", "0", "--runs-dir", str(runs)],
        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for found in runs.glob(f"*/{INFLIGHT_FILE}"):
                try:
                    undo = json.loads(found.read_text())["undo"]
                except ValueError:
                    continue
                if ready(undo, found.parent):
                    proc.kill()
                    proc.wait(10)
                    return found.parent
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.01)
        raise AssertionError(f"{scenario}: the kill point never came")
    finally:
        if proc.poll() is None:
            proc.kill()


def _recover(run_dir: Path) -> dict[str, Any]:
    """``mpac-drill recover`` of the run; its result.json."""
    target = run_dir.parent.parent / "target.yaml"
    rec = run_cli("recover", "--target", str(target), "--runs-dir", str(run_dir.parent))
    assert rec.code == 0, rec.err + rec.out
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "aborted" and result["reason"] == "harness died"
    assert all(s["ok"] for s in result["recovery"]["steps"]), result["recovery"]
    assert not (run_dir / INFLIGHT_FILE).exists()
    return result


def _fast(url: str) -> dict[str, Any]:
    return {
        "account_id": "123456789012",  # moto's
        **{
            f"endpoints.{name}": f"{url}/{name}/health"
            for name in ("svc-portal", "svc-smarttab", "pgw")
        },
        "drill.warmup_s": 1,
        # the kill comes while the fault's effect is live: the drill must not reach its
        # rollbacks (which delete the instance) between the test's look and its SIGKILL
        "drill.cooldown_s": 30,
        "drill.observer_interval_s": 0.1,
        "drill.canary_interval_s": 0.05,
    }


def test_pitr_drill_killed_after_the_restore_then_recover_deletes_the_instance(
    health_url: str,  # noqa: F811
    moto: Callable[[str], Any],
    moto_url: str,
    make_target: Callable[..., Any],
    tmp_path: Path,
):
    source = f"mpac-smartpos-{uuid.uuid4().hex[:8]}"
    moto("rds").create_db_instance(
        DBInstanceIdentifier=source,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="mpac",
        MasterUserPassword="not-a-secret-1",
    )
    # the harness reaches moto through a proxy that holds its DeleteDBInstance: killed
    # then, it died after the restore and before the delete reached AWS (no race with it)
    with holding(moto_url, "DeleteDBInstance") as proxy:
        target = make_target(
            **{
                "rds.smartpos.identifier": source,
                "database.dsn_ssm_parameter": None,
                "aws.endpoint_url": proxy.url,
            },
            **_fast(health_url),
        )
        run_dir = _run_and_kill(target, tmp_path, "rds-pitr", lambda *_: proxy.seen.is_set())
        (restored,) = _pitr_instances(moto, source)  # left running (and billed) by the death
        plan = {s["id"]: s for s in json.loads((run_dir / INFLIGHT_FILE).read_text())["undo"]}
        assert plan["pitr-instance"]["resources"] == [restored]
        assert plan["pitr-instance"]["state"] == "pending"

        result = _recover(run_dir)  # its delete goes through: only the first was held
    assert _pitr_instances(moto, source) == []
    assert any(s["id"] == "pitr-instance" for s in result["recovery"]["steps"])


@pytest.mark.sandbox  # starts a real PostgreSQL
def test_failover_drill_killed_with_canary_rows_then_recover_purges_them(
    canary_db: CanaryDb,  # noqa: F811
    rds_target: Callable[..., Any],  # noqa: F811
    tmp_path: Path,
):
    param = f"/test/{uuid.uuid4().hex}/DSN"
    target = rds_target(param, canary_db.dsn())
    run_dir = _run_and_kill(
        target,
        tmp_path,
        "rds-failover",
        lambda undo, run: (
            any(s["id"] == "canary-rows" for s in undo) and _rows(canary_db, run.name) >= 3
        ),
    )
    assert _rows(canary_db, run_dir.name) >= 3  # the canary wrote before the harness died

    result = _recover(run_dir)
    assert _rows(canary_db, run_dir.name) == 0
    step = next(s for s in result["recovery"]["steps"] if s["id"] == "canary-rows")
    assert step["outcome"].endswith("row(s) deleted") and not step["outcome"].startswith("0 ")
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert canary_db.password.encode() not in path.read_bytes(), path

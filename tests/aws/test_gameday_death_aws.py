"""An AWS game day (moto) whose harness is SIGKILLed after the team did every change by
hand: the write-ahead undo steps recorded when the walk started let ``mpac-drill recover``
put the team's record and parameter back and delete the instance they restored; then
``gameday resume`` replays the steps done before the gap (the harness performs them with
the automated drill's code), the operator confirms the last, and fail-back leaves AWS as
it was before the game day.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mpac_drill import PROJECT_ROOT
from mpac_drill.drill.inflight import INFLIGHT_FILE
from mpac_drill.gameday import state
from tests.aws.conftest import TEST_SLO
from tests.aws.dr_world import RECORD, dr_region, switch_record
from tests.aws.test_harness_death_aws import CLI, _c, _Health, _state, _target_file
from tests.conftest import run_cli

pytestmark = pytest.mark.aws
DR_DNS = "dr-alb.us-east-1.example"


def _aws(moto_url: str, tag: str) -> dict[str, Any]:
    ident, name = f"mpac-smartpos-{tag}", f"/mpac-smartpos/{tag}/DATABASE_URL"
    world = dr_region(
        moto_url,
        tag,
        db_ident=ident,
        param_name=name,
        param_value=f"postgresql://app:pw{tag}DoNotWrite@{ident}.old.rds.amazonaws.com:5432/x",
        primary_alb="primary-alb.ap-northeast-1.example",
    )
    return {"ident": ident, "name": name, **world}


def _at_step(runs: Path, n: int, deadline: float) -> tuple[Path, dict[str, Any]]:
    while True:
        found = list(runs.glob(f"*/{state.STATE}"))
        if found:
            try:
                gd = json.loads(found[0].read_text())
            except ValueError:
                gd = {}
            if gd.get("current") == n and gd["steps"][n - 1].get("shown_at_ts"):
                return found[0].parent, gd
        assert time.monotonic() < deadline, f"step {n} never shown"
        time.sleep(0.02)


def test_aws_game_day_killed_after_the_teams_changes_is_recovered_and_resumed(moto_url, tmp_path):
    tag = uuid.uuid4().hex[:6]
    aws = _aws(moto_url, tag)
    ident, name, zid = aws["ident"], aws["name"], aws["zid"]
    _Health.failing.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    health = f"http://127.0.0.1:{server.server_address[1]}/health"
    target = _target_file(
        tmp_path,
        {
            "aws.endpoint_url": moto_url,
            "account_id": "123456789012",
            "ecs.cluster": aws["cluster"],
            "rds.smartpos.identifier": ident,
            "ssm.database_url": name,
            "route53.hosted_zone_id": zid,
            "route53.record": RECORD,
            "route53.dr_dns_name": DR_DNS,
            "endpoints": {"svc-portal": health, "svc-smarttab": health, "pgw": health},
            "drill.warmup_s": 1,
            "drill.cooldown_s": 0.5,
            "drill.observer_interval_s": 0.1,
            "drill.recovery_bound_s": 120,
            "database.dsn_ssm_parameter": None,
            **TEST_SLO,  # the SLO phase's wait: seconds, not the shipped minute
        },
    )
    before = _state(moto_url, zid, name, ident)
    t0 = time.monotonic()
    runs = tmp_path / "runs"
    env = {**os.environ, "COLUMNS": "200"}
    start = [*CLI, "gameday", "region-failover", "--target", str(target), "--users", "0",
             "--runs-dir", str(runs), "--manual", "all", "--effect-timeout", "30"]  # fmt: skip
    proc = subprocess.Popen(
        start, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        # the team, by hand: restore <ident>-dr, write the parameter, switch the record
        for n in range(1, 7):
            run_dir, gd = _at_step(runs, n, deadline)
            if n == 3:
                _c("rds", moto_url).restore_db_instance_from_db_snapshot(
                    DBInstanceIdentifier=f"{ident}-dr", DBSnapshotIdentifier=f"{ident}-snap"
                )
            if n == 4:
                _c("ssm", moto_url).put_parameter(
                    Name=name, Value="postgresql://app:x@dr:5432/smartpos",
                    Type="SecureString", Overwrite=True,
                )  # fmt: skip
            if n == 6:
                switch_record(moto_url, zid, DR_DNS)
            state.write_ack(run_dir, n, note="scripted")
        run_dir, gd = _at_step(runs, 7, deadline)
        time.sleep(0.5)  # the operator at work on step 7: the walk's heartbeat saves
        killed_at = time.time()
        print(f"killed at step 7 after {time.monotonic() - t0:.1f} s")
        proc.kill()
        proc.wait(10)
        assert proc.returncode == -9
    finally:
        if proc.poll() is None:
            proc.kill()
    during = _state(moto_url, zid, name, ident)
    assert during != before and f"{ident}-dr" in during["instances"]
    plan = {s["id"]: s for s in json.loads((run_dir / INFLIGHT_FILE).read_text())["undo"]}
    # recorded when the walk started, before any change: the team's changes are covered
    assert {"restored-instance", "ssm:database_url", "route53-record"} <= set(plan)

    refused = run_cli("gameday", "resume", str(run_dir), "--target", str(target),
                      "--runs-dir", str(runs))  # fmt: skip
    assert refused.code == 3 and "mpac-drill recover" in refused.err + refused.out
    rec = run_cli("recover", "--target", str(target), "--runs-dir", str(runs))
    assert rec.code == 0, rec.err + rec.out
    print(f"recovered after {time.monotonic() - t0:.1f} s")
    assert _state(moto_url, zid, name, ident) == before  # the team's changes undone

    # resumed: the harness replays steps 1-6 itself, the operator confirms step 7
    op_errors: list[BaseException] = []

    def operator() -> None:
        try:
            time.sleep(0.2)
            deadline = time.monotonic() + 120
            while True:
                gd = state.read(run_dir)
                shown_again = gd["steps"][6].get("shown_at_ts", 0) > killed_at
                if gd["status"] == "walking" and gd["current"] == 7 and shown_again:
                    break
                assert time.monotonic() < deadline
                time.sleep(0.02)
            state.write_ack(run_dir, 7, note="verified after the resume")
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            op_errors.append(exc)

    op = threading.Thread(target=operator, daemon=True)
    op.start()
    try:
        res = run_cli("gameday", "resume", str(run_dir), "--target", str(target),
                      "--runs-dir", str(runs), "--users", "0", timeout=180)  # fmt: skip
    finally:
        op.join(10)
        server.shutdown()
    print(f"resumed game day done after {time.monotonic() - t0:.1f} s")
    assert not op_errors, op_errors
    assert res.code == 0, res.err[-2000:] + res.out[-2000:]
    gd = state.read(run_dir)
    assert gd["status"] == "done"
    (gap,) = gd["gaps"]
    assert gap["reason"] == "harness died" and gap["step"] == 7
    assert abs(gap["from_ts"] - killed_at) <= 0.5  # the heartbeat: from the death
    replayed = [s for s in gd["steps"][:6] if any("replayed" in x for x in s["notes"])]
    assert len(replayed) == 6
    assert f"{ident}-dr-" in " ".join(gd["steps"][2]["notes"])  # the harness's own restore
    assert _state(moto_url, zid, name, ident) == before  # fail-back after the resume

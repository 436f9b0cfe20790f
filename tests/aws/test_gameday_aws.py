"""A game day on AWS (moto): the §1.4 plan walked with people in it.

The scripted operator (a thread) performs two manual steps as the team would, with the
plan's AWS calls (boto3 against moto, as the printed AWS CLI commands do), and confirms
each at a known delay; the harness performs the automated steps with the automated drill's
own code, reads each step's effect from AWS independently of the confirmation, and fails
back everything: its own changes and the team's.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from mpac_drill.cli.gameday import _edit, _run
from mpac_drill.errors import ExitCode
from mpac_drill.gameday import state
from tests.aws.test_region_aws import OLD_URL, _c, _dr_region, _touched

pytestmark = [pytest.mark.aws, pytest.mark.sandbox]
DR_DNS = "dr-alb.us-east-1.elb.amazonaws.com"
DELAY = {1: 0.6, 4: 1.5, 6: 1.0}  # step -> seconds from shown to the operator's ack


def _operator(runs: Path, moto_url: str, zid: str, ssm_name: str, log: dict[int, Any]) -> None:
    """Waits for each manual step to be shown; steps 4 and 6 make their change right
    away (put-parameter, change-resource-record-sets), then every step is acked ``DELAY``
    after it was shown."""
    deadline = time.time() + 180
    while not list(runs.glob("*/gameday.json")):
        assert time.time() < deadline, "no game day started"
        time.sleep(0.02)
    run = next(runs.glob("*/gameday.json")).parent
    for n, delay in DELAY.items():
        while True:
            try:
                gd = json.loads((run / state.STATE).read_text())
            except ValueError:
                continue
            step = gd["steps"][n - 1]
            if gd["current"] == n and step.get("shown_at_ts"):
                break
            assert gd["status"] == "walking" and time.time() < deadline, gd["status"]
            time.sleep(0.01)
        if n == 4:
            value = _c("ssm", moto_url).get_parameter(Name=ssm_name, WithDecryption=True)
            old = value["Parameter"]["Value"]
            restored = gd["steps"][2]["notes"][-1]  # the harness's restore: "<id> at <host>"
            host = restored.split(" at ")[-1]
            new = old.replace(old.split("@")[1].split(":")[0], host)
            _c("ssm", moto_url).put_parameter(
                Name=ssm_name, Value=new, Type="SecureString", Overwrite=True
            )
            log["parameter_written"] = time.time()
        if n == 6:
            _c("route53", moto_url).change_resource_record_sets(
                HostedZoneId=zid,
                ChangeBatch={
                    "Changes": [
                        {
                            "Action": "UPSERT",
                            "ResourceRecordSet": {
                                "Name": "api.staging.mpac-cloud.com",
                                "Type": "CNAME",
                                "TTL": 60,
                                "ResourceRecords": [{"Value": DR_DNS}],
                            },
                        }
                    ]
                },
            )
            log["record_switched"] = time.time()
        time.sleep(max(0.0, step["shown_at_ts"] + delay - time.time()))
        state.write_ack(run, n, note=f"scripted {delay} s")
        log[n] = time.time()


@pytest.fixture(scope="module")
def walked(sandbox, moto_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gameday-aws")
    tag = uuid.uuid4().hex[:6]
    ident = f"mpac-smartpos-{tag}"
    secret = f"pw{tag}DoNotWrite"
    ssm_name = f"/mpac-smartpos/{tag}/DATABASE_URL"
    runs = tmp / "runs"
    log: dict[Any, Any] = {}
    errors: list[BaseException] = []
    zids: list[str] = []

    def operate() -> None:
        try:
            _operator(runs, moto_url, zids[0], ssm_name, log)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    with pytest.MonkeyPatch.context() as mp:  # conftest's aws_env, for the whole module
        for key in list(os.environ):
            if key.startswith("AWS_") or key.lower() in ("http_proxy", "https_proxy"):
                mp.delenv(key)
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
            "NO_PROXY": "127.0.0.1,localhost",
        }.items():
            mp.setenv(key, value)
        mp.setattr("mpac_drill.drill.runner.LOCK_DIR", tmp / "locks")
        target, zid = _dr_region(
            moto_url,
            sandbox,
            tmp,
            db_ident=ident,
            param_name=ssm_name,
            param_value=OLD_URL.format(secret=secret),
            **{"rds.smartpos.identifier": ident, "ssm.database_url": ssm_name},
        )
        before = _touched(moto_url, zid, ssm_name)
        zids.append(zid)
        op = threading.Thread(target=operate, daemon=True)
        op.start()
        code = _run("region-failover", target, str(runs), 2, _edit("1,4,6", "P0", 0, 30), None)
        op.join(10)
        after = _touched(moto_url, zid, ssm_name)
    assert not errors, errors
    (run,) = [p.parent for p in runs.glob("*/result.json")]
    result = json.loads((run / "result.json").read_text())
    return {
        "code": code,
        "result": result,
        "state": state.read(run),
        "run": run,
        "log": log,
        "before": before,
        "after": after,
        "moto_url": moto_url,
        "ident": ident,
        "secret": secret,
    }


def test_the_game_day_on_aws_completes_with_every_step(walked):
    r = walked["result"]
    assert r["status"] == "completed", r.get("reason")
    assert walked["code"] == ExitCode.OK
    assert r["target"] == "staging" and r["phases"]["platform"] == "aws"
    steps = r["gameday"]["steps"]
    assert [s["manual"] for s in steps] == [n in DELAY for n in range(1, 8)]
    assert [s["who"] == "harness" for s in steps] == [n not in DELAY for n in range(1, 8)]


def test_people_time_is_the_operators_delay(walked):
    steps = {s["number"]: s for s in walked["result"]["gameday"]["steps"]}
    for n, delay in DELAY.items():
        assert steps[n]["people_s"] == pytest.approx(delay, abs=0.2), n


def test_the_teams_changes_are_seen_on_aws_when_they_were_made(walked):
    """The parameter and the record were read from AWS: first seen after the operator's
    write and within the checks' polling (not at the confirmation, which came later)."""
    gd = walked["state"]["steps"]
    log = walked["log"]
    for n, made in ((4, log["parameter_written"]), (6, log["record_switched"])):
        seen = gd[n - 1]["effect_seen_ts"]
        assert made <= seen <= made + 0.5, (n, seen - made)
        assert seen < gd[n - 1]["confirmed_ts"]
        assert gd[n - 1]["machine_s"] == 0  # the effect was there before the confirmation


def test_automated_steps_ran_the_drills_aws_calls_and_were_checked(walked):
    gd = walked["state"]["steps"]
    restore = gd[2]
    assert restore["who"] == "harness"
    assert f"{walked['ident']}-dr-" in " ".join(restore["notes"])
    assert restore["effect_seen_ts"] is not None  # the restored instance read available
    verify = gd[6]
    assert verify["effect_seen_ts"] is not None  # the endpoints answered
    # checks AWS cannot answer are said to be unchecked, never invented
    for n in (1, 2, 5):
        assert gd[n - 1]["machine_s"] is None, n
        assert any("not checked on aws" in x for x in gd[n - 1]["notes"]), n


def test_fail_back_undoes_the_teams_changes_and_the_harnesss(walked):
    assert walked["after"] == walked["before"]  # record set and parameter, field by field
    dbs = _c("rds", walked["moto_url"]).describe_db_instances()["DBInstances"]
    assert not [d for d in dbs if d["DBInstanceIdentifier"].startswith(f"{walked['ident']}-dr")]
    assert walked["state"]["undone_by_fail_back"] == [
        f"SSM {walked['state']['steps'][3]['commands'][0].split('--name ')[1].split()[0]}",
        "Route53 api.staging.mpac-cloud.com",
    ]
    for path in walked["run"].rglob("*"):
        if path.is_file():
            assert walked["secret"].encode() not in path.read_bytes(), path


def test_the_procedure_is_the_outage_on_aws(walked):
    """The region is declared lost, so users never fail: RTO is the procedure, people
    time included."""
    r = walked["result"]
    people = sum(DELAY.values())
    assert r["measurements"]["rto_s"] >= people
    assert r["gameday"]["people_s"] >= people - 0.2

"""The AWS region drill (moto) with its harness killed for real (SIGKILL) right after it
switched the Route53 record to the DR region: the run folder's ``inflight.json`` names the
record, the parameter (by name and version, never its value) and the restored instance;
``mpac-drill recover`` puts the record and the parameter back as they were and deletes the
instance, and writes the run's result.json (aborted, "harness died").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from mpac_drill import PROJECT_ROOT
from mpac_drill.config import resolve_target_path
from mpac_drill.drill.inflight import INFLIGHT_FILE
from tests.aws.dr_world import RECORD, dr_region
from tests.conftest import run_cli

pytestmark = pytest.mark.aws
DR = "us-east-1"
CLI = [sys.executable, "-c", "import sys; from mpac_drill.cli import main; sys.exit(main())"]


def _c(service: str, url: str, region: str = DR) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=url)


class _Health(BaseHTTPRequestHandler):
    failing = threading.Event()  # set: the "DR services" answer 503 (verify health waits)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(503 if self.failing.is_set() else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _target_file(folder: Path, settings: dict[str, Any]) -> Path:
    data = yaml.safe_load(resolve_target_path("staging").read_text(encoding="utf-8"))
    for key, value in settings.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path = folder / f"target-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _state(moto_url: str, zid: str, name: str, ident: str) -> dict[str, Any]:
    ssm = _c("ssm", moto_url)
    (meta,) = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}]
    )["Parameters"]
    skip = {"Version", "LastModifiedDate", "LastModifiedUser"}
    return {
        "records": sorted(
            _c("route53", moto_url).list_resource_record_sets(HostedZoneId=zid)[
                "ResourceRecordSets"
            ],
            key=lambda r: (r["Name"], r["Type"]),
        ),
        "parameter": {k: v for k, v in meta.items() if k not in skip}
        | {"Value": ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]},
        "instances": sorted(
            d["DBInstanceIdentifier"]
            for d in _c("rds", moto_url).describe_db_instances()["DBInstances"]
            if d["DBInstanceIdentifier"].startswith(ident)
        ),
    }


def test_region_drill_killed_after_route53_switch_is_recovered(moto_url, tmp_path):
    tag = uuid.uuid4().hex[:6]
    ident, secret = f"mpac-smartpos-{tag}", f"pw{tag}DoNotWrite"
    name = f"/mpac-smartpos/{tag}/DATABASE_URL"
    world = dr_region(
        moto_url,
        tag,
        db_ident=ident,
        param_name=name,
        param_value=f"postgresql://app:{secret}@{ident}.old.rds.amazonaws.com:5432/smartpos",
        primary_alb="primary-alb.ap-northeast-1.example",
    )
    cluster, zid, record = world["cluster"], world["zid"], RECORD
    _Health.failing.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    health = f"http://127.0.0.1:{server.server_address[1]}/health"
    target = _target_file(
        tmp_path,
        {
            "aws.endpoint_url": moto_url,
            "account_id": "123456789012",
            "ecs.cluster": cluster,
            "rds.smartpos.identifier": ident,
            "ssm.database_url": name,
            "route53.hosted_zone_id": zid,
            "route53.record": record,
            "route53.dr_dns_name": "dr-alb.us-east-1.example",
            "endpoints": {"svc-portal": health, "svc-smarttab": health, "pgw": health},
            "drill.warmup_s": 1,
            "drill.cooldown_s": 0.5,
            "drill.observer_interval_s": 0.1,
            "drill.recovery_bound_s": 120,
            "database.dsn_ssm_parameter": None,
        },
    )
    before = _state(moto_url, zid, name, ident)
    runs = tmp_path / "runs"
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(
        [*CLI, "run", "region-failover", "--target", str(target), "--users", "0",
         "--runs-dir", str(runs)],
        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        run_dir = None
        while time.monotonic() < deadline:
            found = list(runs.glob(f"*/{INFLIGHT_FILE}"))
            if found:
                run_dir = found[0].parent
                try:
                    steps = [s["name"] for s in json.loads(found[0].read_text())["steps"]]
                except ValueError:
                    steps = []
                if "update DATABASE_URL (SSM)" in steps:
                    _Health.failing.set()  # the DR services never get healthy: no fail-back
                if "switch Route53 record" in steps:
                    proc.kill()
                    break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.01)
        proc.wait(10)
        assert run_dir is not None and proc.returncode == -9
    finally:
        if proc.poll() is None:
            proc.kill()
        server.shutdown()
    # the harness died with the record on the DR load balancer and the parameter changed
    during = _state(moto_url, zid, name, ident)
    cname = next(r for r in during["records"] if r["Type"] == "CNAME")
    assert cname["ResourceRecords"][0]["Value"] == "dr-alb.us-east-1.example"
    assert during["parameter"]["Value"] != before["parameter"]["Value"]
    assert len(during["instances"]) == 2  # the restored one is running (and billed)
    text = (run_dir / INFLIGHT_FILE).read_text()
    assert secret not in text and "postgresql://" not in text  # names and versions only
    plan = {s["id"]: s for s in json.loads(text)["undo"]}
    assert {"restored-instance", "ssm:database_url", "route53-record"} <= set(plan)
    assert plan["ssm:database_url"]["data"]["version_before"] == 1

    dry = run_cli("recover", "--target", str(target), "--runs-dir", str(runs), "--dry-run")
    assert dry.code == 0, dry.err
    assert "Route53 record" in dry.out and name in dry.out
    assert _state(moto_url, zid, name, ident) == during  # no call made

    started = time.monotonic()
    rec = run_cli("recover", "--target", str(target), "--runs-dir", str(runs))
    took = time.monotonic() - started
    assert rec.code == 0, rec.err + rec.out
    print(f"region-failover (moto): recover took {took:.1f} s")
    assert _state(moto_url, zid, name, ident) == before  # record, parameter, instances
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "aborted" and result["reason"] == "harness died"
    assert result["recovery"]["harness_died_after"] == "switch Route53 record"
    assert all(s["ok"] for s in result["recovery"]["steps"])
    assert not (run_dir / INFLIGHT_FILE).exists()
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path

"""The sandbox as a real miniature MPAC platform: components, failovers, restarts, teardown."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import psycopg
import pytest
import redis
import yaml

from mpac_drill import PROJECT_ROOT
from mpac_drill.config import load_target
from mpac_drill.sandbox import control, snapshots
from mpac_drill.sandbox.procs import kill_tree, marked_processes, port_is_free, postgres_home
from tests.conftest import run_cli

pytestmark = pytest.mark.sandbox


def _name(p) -> str:
    with contextlib.suppress(Exception):
        return p.name()
    return ""


def _wait(pred, timeout: float, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return None


def _sentinel(view: control.SandboxView) -> redis.Sentinel:
    """The sandbox's Sentinels, logged in (they refuse commands without the password)."""
    return redis.Sentinel(
        [("127.0.0.1", int(a.rsplit(":", 1)[1])) for a in view.endpoints["sentinels"]],
        sentinel_kwargs={"socket_timeout": 0.5, "password": view.secrets["redis_password"]},
        socket_timeout=0.5,
    )


def _write_ok(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO canary (run_id, seq) VALUES ('test', "
                "(SELECT coalesce(max(seq), 0) + 1 FROM canary WHERE run_id='test'))"
            )
        return True
    except psycopg.Error:
        return False


def test_sandbox_up_every_component_answers(sandbox):
    view = control.view(sandbox)
    roles = sorted((c["kind"], c["role"]) for c in view.state["components"])
    assert roles.count(("rds", "primary")) == 1 and roles.count(("rds", "standby")) == 1
    assert roles.count(("elasticache", "sentinel")) == 3
    assert all(c["healthy"] for c in view.state["components"])
    with psycopg.connect(view.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    standby = view.by_role("rds", "standby")[0]
    port = int(standby["address"].rsplit(":", 1)[1])
    with psycopg.connect(
        f"host=127.0.0.1 port={port} dbname=smartpos user=mpac "
        f"password={view.secrets['db_password']}"
    ) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    s = _sentinel(view)
    app = {"username": view.endpoints["redis_user"], "password": view.secrets["redis_password"]}
    assert s.master_for("mpac", socket_timeout=0.5, **app).ping()
    for url in view.endpoints["services"].values():
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            assert resp.status == 200


def test_status_json_has_endpoints_without_password(sandbox):
    r = run_cli("sandbox", "status", "--json")
    assert r.code == 0, r.err
    view = control.view(sandbox)
    assert view.secrets["db_password"] not in r.out
    assert "target_session_attrs=read-write" in r.out and "sentinels" in r.out


def test_postgres_primary_killed_standby_takes_writes_after_delay(sandbox):
    view = control.view(sandbox)
    delay = float(sandbox.require("rds.failover_delay_s"))
    primary = view.by_role("rds", "primary")[0]
    assert _write_ok(view.dsn())
    t0 = time.monotonic()
    kill_tree(int(primary["pid"]), signal.SIGKILL)
    assert _wait(lambda: _write_ok(view.dsn()), 15, 0.01)
    took = time.monotonic() - t0
    assert delay <= took <= delay + 1.5, took
    after = control.wait_healthy(sandbox, timeout_s=30)
    new_primary = after.by_role("rds", "primary")[0]
    assert new_primary["name"] != primary["name"]
    assert after.by_role("rds", "standby")[0]["name"] == primary["name"]  # rebuilt


def test_redis_primary_killed_sentinel_promotes_replica(sandbox):
    view = control.view(sandbox)
    primary = view.by_role("elasticache", "primary")[0]
    s = _sentinel(view)
    kill_tree(int(primary["pid"]), signal.SIGKILL)
    old_port = int(primary["address"].split(":")[1])

    def moved_away():
        try:
            return s.discover_master("mpac")[1] != old_port
        except redis.RedisError:  # no master known while the failover runs
            return False

    moved = _wait(moved_away, 20, 0.05)
    assert moved
    after = control.wait_healthy(sandbox, timeout_s=30)
    assert after.by_role("elasticache", "primary")[0]["name"] != primary["name"]


def test_stopped_task_restarted_after_configured_delay(sandbox):
    view = control.view(sandbox)
    delay = float(sandbox.require("ecs.task_start_delay_s"))
    task = next(c for c in view.state["components"] if c["name"] == "svc-smarttab/task-1")
    t0 = time.monotonic()
    kill_tree(int(task["pid"]), signal.SIGKILL)

    url = f"http://{task['address']}/health"

    def serving():
        try:
            with urllib.request.urlopen(url, timeout=0.5) as resp:
                return resp.status == 200
        except OSError:
            return False

    assert _wait(serving, delay + 10, 0.01)
    took = time.monotonic() - t0
    assert delay <= took <= delay + 0.5, took  # the replacement serves at the delay
    st = control.read_state(view.dir) or {}
    assert next(c for c in st["components"] if c["name"] == task["name"])["pid"] != task["pid"]
    control.wait_healthy(sandbox, timeout_s=30)


def test_up_is_idempotent(sandbox):
    before = control.view(sandbox).state["daemon_pid"]
    r = run_cli("sandbox", "up")
    assert r.code == 0, r.err
    assert control.view(sandbox).state["daemon_pid"] == before


def test_busy_port_is_a_usage_error(sandbox, tmp_path):
    # another sandbox whose RDS port collides with the running one
    target = tmp_path / "t.yaml"
    text = (PROJECT_ROOT / "experiments/targets/sandbox.yaml").read_text()
    target.write_text(text.replace("state_dir: .sandbox", f"state_dir: {tmp_path / 'state'}"))
    r = run_cli("sandbox", "up", "--target", str(target))
    assert r.code == 2
    assert r.err.count("\n") == 1 and "already in use" in r.err and "Traceback" not in r.err


def test_down_after_killed_up_leaves_no_process(tmp_path):
    """A second sandbox on other ports: `up` killed half-way, then `down` sweeps it all."""
    base = yaml.safe_load((PROJECT_ROOT / "experiments/targets/sandbox.yaml").read_text())
    path = tmp_path / "other.yaml"
    for block in (12000, 13000, 14000, 19000, 20000):  # the first block wholly free now
        path.write_text(
            yaml.safe_dump(
                control.private_settings(
                    base, name="sandbox-killed-up", state_dir=tmp_path / "state", port_block=block
                )
            )
        )
        target = load_target(str(path))
        if all(port_is_free(p) for _, p in control.port_settings(target)):
            break
    errlog = tmp_path / "up.err"
    with errlog.open("wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from mpac_drill.cli import main; sys.exit(main())",
                "sandbox",
                "up",
                "--target",
                str(path),
            ],
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    sdir = control.state_dir(target)
    # kill the CLI and the daemon as soon as a server runs that outlives them (a Redis node:
    # its own session, its log a file); initdb and the like die with the daemon's pipes.
    # Its name: redis-server, valkey-server, or Debian's redis-check-rdb (redis_binary.py)
    assert _wait(
        lambda: any(_name(p).startswith(("redis-", "valkey-")) for p in marked_processes(sdir)),
        30,
        0.05,
    ), errlog.read_text()
    proc.kill()
    proc.wait()
    st = control.read_state(sdir)
    if st:  # the daemon alone, as an OOM kill would: its children keep running
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(st["daemon_pid"]), signal.SIGKILL)
    assert marked_processes(sdir), "something should be left running before down"
    r = run_cli("sandbox", "down", "--target", str(path))
    assert r.code == 0, r.err
    assert marked_processes(sdir) == []
    for d in (snapshots.bucket_dir(sdir), postgres_home(sdir / "rds")):
        if not str(d).startswith(str(tmp_path)):  # moved to /tmp for PostgreSQL's user
            shutil.rmtree(d, ignore_errors=True)

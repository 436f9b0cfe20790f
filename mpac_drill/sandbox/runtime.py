"""What one sandbox service task runs on: its settings, its PostgreSQL pool and Redis client.

Every call to PostgreSQL or Redis goes through :meth:`Context.call`, bounded by
``io_timeout_s``, so a dead dependency makes a request fail fast instead of hanging; a
connection error drops every pooled connection, so after a failover the multi-host DSN
(``target_session_attrs=read-write``) and Sentinel lead new connections to the new primary.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from mpac_drill.errors import SandboxError

logger = logging.getLogger("mpac_drill")

T = TypeVar("T")
#: Errors after which a PostgreSQL connection (and its idle siblings) is not trusted again.
_FATAL_PG = (psycopg.OperationalError, psycopg.InterfaceError, pg_errors.ReadOnlySqlTransaction)


@dataclass(frozen=True)
class AppSettings:
    """What a service task needs; secrets are kept out of ``repr``."""

    service: str = "svc-portal"
    database_url: str = field(default="", repr=False)
    pgw_database_url: str = field(default="", repr=False)
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_master: str = "mpac"
    redis_url: str = field(default="", repr=False)
    redis_username: str = ""  # the services' ACL user on the nodes ("": the default user)
    redis_password: str = field(default="", repr=False)  # nodes and (by default) Sentinels
    redis_sentinel_password: str = field(default="", repr=False)  # "": redis_password
    pgw_base_url: str = ""  # svc-smarttab's PGW (the SSM parameter PGW_BASE_URL)
    jwt_secret: str = field(default="", repr=False)
    jwt_lifetime_s: int = 900
    rate_limit_per_s: int = 1000
    orders_unique: bool = True
    io_timeout_s: float = 1.0
    #: a cold cache after the task starts: every request but the ALB's shallow check takes
    #: ``warmup_slow_ms`` longer for the first ``warmup_s`` (0: no warm-up)
    warmup_s: float = 0.0
    warmup_slow_ms: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppSettings:
        """Read the ``MPAC_*`` variables (``os.environ`` by default); a bad value raises."""
        env = os.environ if environ is None else environ

        def number(name: str, default: float, kind: type = int) -> Any:
            raw = env.get(name, "").strip()
            try:
                value = kind(raw) if raw else kind(default)
            except ValueError:
                value = 0
            if not value > 0:
                raise SandboxError(f"{name} must be a positive number, got {raw!r}")
            return value

        return cls(
            service=env.get("MPAC_SERVICE", "svc-portal"),
            database_url=env.get("MPAC_DATABASE_URL", ""),
            pgw_database_url=env.get("MPAC_PGW_DATABASE_URL", ""),
            redis_sentinels=_parse_sentinels(env.get("MPAC_REDIS_SENTINELS", "")),
            redis_master=env.get("MPAC_REDIS_MASTER", "") or "mpac",
            redis_url=env.get("MPAC_REDIS_URL", ""),
            redis_username=env.get("MPAC_REDIS_USERNAME", ""),
            redis_password=env.get("MPAC_REDIS_PASSWORD", ""),
            redis_sentinel_password=env.get("MPAC_REDIS_SENTINEL_PASSWORD", ""),
            pgw_base_url=env.get("MPAC_PGW_BASE_URL", "").strip().rstrip("/"),
            jwt_secret=env.get("MPAC_JWT_SECRET", ""),
            jwt_lifetime_s=number("MPAC_JWT_LIFETIME_S", 900),
            rate_limit_per_s=number("MPAC_RATE_LIMIT_PER_S", 1000),
            orders_unique=env.get("MPAC_ORDERS_UNIQUE", "1").strip().lower()
            not in ("0", "false", "no", "off"),
            io_timeout_s=number("MPAC_IO_TIMEOUT_S", 1.0, float),
            warmup_s=_non_negative(env, "MPAC_WARMUP_S"),
            warmup_slow_ms=_non_negative(env, "MPAC_WARMUP_SLOW_MS"),
        )


def _non_negative(env: Mapping[str, str], name: str) -> float:
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else 0.0
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise SandboxError(f"{name} must be a number >= 0, got {raw!r}")
    return value


def _parse_sentinels(raw: str) -> tuple[tuple[str, int], ...]:
    """``"127.0.0.1:26379,127.0.0.1:26380"`` → ``(("127.0.0.1", 26379), ...)``."""
    out = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise SandboxError(f"MPAC_REDIS_SENTINELS: expected host:port, got {item!r}")
        out.append((host, int(port)))
    return tuple(out)


class Unavailable(Exception):
    """A dependency (``database`` or ``redis``) did not answer in time or failed."""

    def __init__(self, dependency: str, reason: str) -> None:
        super().__init__(f"{dependency} unavailable ({reason})")
        self.dependency = dependency
        self.reason = reason


class PgPool:
    """A few autocommit connections; a connection error discards every idle one.

    After a failover the pooled connections point at the dead primary. An idle connection
    whose server hung up is dropped before use; the first connection error drops every idle
    one (a generation counter also retires those in use); new connections go through the
    multi-host DSN to whichever host now accepts writes.
    """

    def __init__(self, conninfo: str, *, max_size: int = 4) -> None:
        self._conninfo = conninfo
        self._idle: list[tuple[int, psycopg.AsyncConnection]] = []
        self._slots = asyncio.Semaphore(max_size)
        self._generation = 0

    async def run(
        self, op: Callable[[psycopg.AsyncConnection], Awaitable[T]], *, idempotent: bool = False
    ) -> T:
        """Run ``op`` on a pooled connection; an idempotent op retries once after a stale one."""
        async with self._slots:
            for attempt in (1, 2):
                generation = self._generation
                conn, reused = await self._acquire()
                try:
                    result = await op(conn)
                except BaseException as exc:
                    fatal = await self._release(conn, generation, exc)
                    if not (fatal and reused and idempotent and attempt == 1):
                        raise
                    continue
                await self._release(conn, generation, None)
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _acquire(self) -> tuple[psycopg.AsyncConnection, bool]:
        """An idle connection of the current generation (reused=True) or a new one."""
        while self._idle:
            generation, conn = self._idle.pop()
            if generation == self._generation and not conn.closed and not _has_input(conn):
                return conn, True
            await conn.close()
        return await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True), False

    async def _release(
        self, conn: psycopg.AsyncConnection, generation: int, exc: BaseException | None
    ) -> bool:
        """Keep or close ``conn``; True when ``exc`` means the server is gone."""
        fatal = isinstance(exc, _FATAL_PG) or bool(conn.broken)
        keep = (
            (exc is None or isinstance(exc, psycopg.Error))
            and not fatal
            and not conn.closed
            and conn.info.transaction_status == TransactionStatus.IDLE
            and generation == self._generation
        )
        if keep:
            self._idle.append((generation, conn))
        else:
            await conn.close()
        if fatal:
            self._generation += 1
            await self.close()
        return fatal

    async def close(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, []
        for _, conn in idle:
            await conn.close()


def _has_input(conn: psycopg.AsyncConnection) -> bool:
    """An idle connection with bytes to read was closed by its server (shutdown, crash)."""
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


def _make_redis(settings: AppSettings) -> tuple[Redis, list[Redis]]:
    """The Redis master client (through Sentinel when configured) and the Sentinel clients,
    logged in with ``MPAC_REDIS_USERNAME``/``MPAC_REDIS_PASSWORD`` when set (the Sentinels
    with ``MPAC_REDIS_SENTINEL_PASSWORD``, by default the same password)."""
    timeouts = {
        "socket_timeout": settings.io_timeout_s,
        "socket_connect_timeout": settings.io_timeout_s,
    }
    options: dict[str, Any] = {**timeouts, "retry": Retry(NoBackoff(), 1), "decode_responses": True}
    if settings.redis_password:
        options["password"] = settings.redis_password
        if settings.redis_username:
            options["username"] = settings.redis_username
    if settings.redis_sentinels:
        sentinel_pw = settings.redis_sentinel_password or settings.redis_password
        sentinel = Sentinel(
            list(settings.redis_sentinels),
            sentinel_kwargs={
                **timeouts,
                "retry": Retry(NoBackoff(), 0),
                **({"password": sentinel_pw} if sentinel_pw else {}),
            },
        )
        return sentinel.master_for(settings.redis_master, **options), list(sentinel.sentinels)
    return Redis.from_url(settings.redis_url, **options), []


class Context:
    """One task's dependencies: settings, the Redis client, the PostgreSQL pool."""

    def __init__(self, service: str, settings: AppSettings) -> None:
        self.service = service
        self.settings = settings
        self.redis, self._sentinels = _make_redis(settings)
        dsn = settings.pgw_database_url if service == "pgw" else settings.database_url
        self.db = PgPool(dsn) if service != "svc-portal" else None
        self._down: set[str] = set()
        self._background: set[asyncio.Future[Any]] = set()

    async def call(self, dependency: str, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` for at most ``io_timeout_s``; any failure is ``Unavailable``.

        A call that overruns is cancelled in the background: the request does not wait
        for the driver to clean up.
        """
        task = asyncio.ensure_future(awaitable)
        try:
            done, _ = await asyncio.wait({task}, timeout=self.settings.io_timeout_s)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            task.cancel()
            self._background.add(task)
            task.add_done_callback(self._reap)
            self._mark(dependency, "timeout")
            raise Unavailable(dependency, "timeout")
        try:
            result = task.result()
        except (psycopg.Error, RedisError, OSError) as exc:
            self._mark(dependency, type(exc).__name__)
            raise Unavailable(dependency, type(exc).__name__) from exc
        self._mark(dependency, None)
        return result

    def _reap(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not warn

    def _mark(self, dependency: str, failure: str | None) -> None:
        """Log once when a dependency goes down and once when it is back."""
        if failure is not None and dependency not in self._down:
            self._down.add(dependency)
            logger.warning("%s: %s unavailable (%s)", self.service, dependency, failure)
        elif failure is None and dependency in self._down:
            self._down.discard(dependency)
            logger.warning("%s: %s available again", self.service, dependency)

    async def close(self) -> None:
        """Release every connection."""
        await self.redis.aclose()
        for client in self._sentinels:
            await client.aclose()
        if self.db is not None:
            await self.db.close()


__all__ = ["AppSettings", "Context", "PgPool", "Unavailable"]

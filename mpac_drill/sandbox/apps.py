"""The miniature MPAC services: svc-portal, svc-smarttab and pgw as Starlette apps.

Each app is what one ECS task runs (see ``mpac_drill.sandbox.task``). Every call to
PostgreSQL or Redis is bounded by ``io_timeout_s``, so a dead dependency makes a request
fail fast (503) instead of hanging; a connection error drops every pooled connection, so
after a failover the multi-host DSN (``target_session_attrs=read-write``) and Sentinel lead
new connections to the new primary. Where runbook 1.3 says a service degrades without
Redis, it does, and says so in a response header:

- svc-portal ``GET /verify`` fails open (``X-Revocation-Check: skipped``);
- svc-smarttab ``POST /orders`` skips the idempotency cache (``X-Idempotency-Cache: off``);
- pgw ``POST /payments/qr`` skips rate limiting (``X-RateLimit: off``) and records it.

Secrets (passwords, the JWT secret, tokens) are never logged nor returned.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jwt
import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mpac_drill.errors import SandboxError

logger = logging.getLogger("mpac_drill")

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[JSONResponse]]

SERVICES = ("svc-portal", "svc-smarttab", "pgw")
IDEMPOTENCY_TTL_S = 24 * 3600
_MAX_TEXT = 200
_MAX_INT4 = 2**31 - 1
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
    jwt_secret: str = field(default="", repr=False)
    jwt_lifetime_s: int = 900
    rate_limit_per_s: int = 1000
    orders_unique: bool = True
    io_timeout_s: float = 1.0

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
            jwt_secret=env.get("MPAC_JWT_SECRET", ""),
            jwt_lifetime_s=number("MPAC_JWT_LIFETIME_S", 900),
            rate_limit_per_s=number("MPAC_RATE_LIMIT_PER_S", 1000),
            orders_unique=env.get("MPAC_ORDERS_UNIQUE", "1").strip().lower()
            not in ("0", "false", "no", "off"),
            io_timeout_s=number("MPAC_IO_TIMEOUT_S", 1.0, float),
        )


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
    """The Redis master client (through Sentinel when configured) and the Sentinel clients."""
    timeouts = {"socket_timeout": settings.io_timeout_s,
                "socket_connect_timeout": settings.io_timeout_s}
    options: dict[str, Any] = {**timeouts, "retry": Retry(NoBackoff(), 1),
                               "decode_responses": True}
    if settings.redis_sentinels:
        sentinel = Sentinel(list(settings.redis_sentinels),
                            sentinel_kwargs={**timeouts, "retry": Retry(NoBackoff(), 0)})
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


# --- shared helpers ------------------------------------------------------------------------


async def _fields(request: Request, texts: tuple[str, ...], ints: tuple[str, ...] = ()
                  ) -> dict[str, Any] | None:
    """The JSON body's ``texts`` (non-empty strings) and ``ints`` (int4 >= 0), or None."""
    try:
        body = await request.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    ok = all(isinstance(body.get(k), str) and 0 < len(body[k]) <= _MAX_TEXT for k in texts)
    ok = ok and all(type(body.get(k)) is int and 0 <= body[k] <= _MAX_INT4 for k in ints)
    return {k: body[k] for k in (*texts, *ints)} if ok else None


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


def _unavailable(exc: Unavailable, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": f"{exc.dependency} unavailable", "dependency": exc.dependency,
            "reason": exc.reason}
    return JSONResponse(body, status_code=503, headers=headers)


async def _heartbeat(conn: psycopg.AsyncConnection) -> None:
    await conn.execute(
        "INSERT INTO heartbeat (id, at) VALUES (1, clock_timestamp()) "
        "ON CONFLICT (id) DO UPDATE SET at = excluded.at"
    )


def _health(ctx: Context) -> Handler:
    """``GET /health``: a real write to each dependency; 503 names the failed ones.

    Without ``?deep=1`` (what the ALB checks) only the dependencies the service cannot serve
    without make it 503: the database. Redis is a cache, a revocation list and a rate
    limiter that the services fail open on (runbook 1.3), so a Redis outage leaves the
    tasks in service and shows as ``"degraded"``. With ``?deep=1`` (what the drill's
    observer samples) every dependency must work: "auth, idempotency and rate limiting
    work again".
    """

    async def check(name: str, awaitable: Awaitable[Any]) -> tuple[str, str]:
        try:
            await ctx.call(name, awaitable)
        except Unavailable as exc:
            return name, f"unavailable: {exc.reason}"
        return name, "ok"

    async def health(request: Request) -> JSONResponse:
        probes = [check("redis", ctx.redis.set(f"health:{ctx.service}", int(time.time()), ex=30))]
        if ctx.db is not None:
            probes.append(check("database", ctx.db.run(_heartbeat, idempotent=True)))
        checks = dict(await asyncio.gather(*probes))
        deep = request.query_params.get("deep") in ("1", "true", "yes")
        bad = sorted(name for name, state in checks.items() if state != "ok")
        failed = bad if deep else [name for name in bad if name != "redis"]
        body: dict[str, Any] = {"ok": not failed, "service": ctx.service, "checks": checks}
        if failed:
            body["failed"] = failed
        degraded = sorted(set(bad) - set(failed))
        if degraded:
            body["degraded"] = degraded
        return JSONResponse(body, status_code=503 if failed else 200)

    return health


# --- svc-portal ----------------------------------------------------------------------------


def _portal_routes(ctx: Context) -> list[Route]:
    secret, lifetime = ctx.settings.jwt_secret, ctx.settings.jwt_lifetime_s

    def claims_of(request: Request) -> dict[str, Any] | JSONResponse:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return JSONResponse({"error": "missing bearer token"}, status_code=401)
        try:
            return jwt.decode(token.strip(), secret, algorithms=["HS256"],
                              options={"require": ["exp", "jti"]})
        except jwt.ExpiredSignatureError:
            return JSONResponse({"error": "token expired"}, status_code=401)
        except jwt.InvalidTokenError:
            return JSONResponse({"error": "invalid token"}, status_code=401)

    async def login(request: Request) -> JSONResponse:
        fields = await _fields(request, ("user",))
        if fields is None:
            return _bad_request("need 'user' (string)")
        now, jti = int(time.time()), uuid.uuid4().hex
        claims = {"sub": fields["user"], "jti": jti, "iat": now, "exp": now + lifetime}
        token = jwt.encode(claims, secret, algorithm="HS256")
        return JSONResponse({"token": token, "jti": jti, "expires_in": lifetime})

    async def verify(request: Request) -> JSONResponse:
        claims = claims_of(request)
        if isinstance(claims, JSONResponse):
            return claims
        body = {"ok": True, "sub": claims.get("sub"), "jti": claims["jti"]}
        try:
            revoked = await ctx.call("redis", ctx.redis.exists(f"revoked:{claims['jti']}"))
        except Unavailable:  # runbook 1.3: fail open, revocation unenforced until Redis is back
            return JSONResponse({**body, "revocation_check": "skipped"},
                                headers={"X-Revocation-Check": "skipped"})
        if revoked:
            return JSONResponse({"error": "token revoked"}, status_code=401,
                                headers={"X-Revocation-Check": "ok"})
        return JSONResponse({**body, "revocation_check": "ok"},
                            headers={"X-Revocation-Check": "ok"})

    async def revoke(request: Request) -> JSONResponse:
        claims = claims_of(request)
        if isinstance(claims, JSONResponse):
            return claims
        ttl = max(1, int(claims["exp"]) - int(time.time()))
        try:
            await ctx.call("redis", ctx.redis.set(f"revoked:{claims['jti']}", "1", ex=ttl))
        except Unavailable as exc:
            return _unavailable(exc)
        return JSONResponse({"revoked": True, "jti": claims["jti"], "ttl_s": ttl})

    return [Route("/login", login, methods=["POST"]), Route("/verify", verify, methods=["GET"]),
            Route("/revoke", revoke, methods=["POST"])]


# --- svc-smarttab and pgw ------------------------------------------------------------------


async def _insert_or_replay(
    conn: psycopg.AsyncConnection, table: str, key_column: str, row: dict[str, Any],
    *, on_conflict: bool = True,
) -> tuple[int, bool]:
    """Insert ``row`` and return ``(id, False)``, or the existing row's ``(id, True)``.

    ``on_conflict=False`` is a plain INSERT: without a unique constraint on ``key_column``
    nothing dedupes (runbook finding F8); with one, a violation still replays.
    """
    columns = ", ".join(row)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(row))})"
    if on_conflict:
        sql += f" ON CONFLICT ({key_column}) DO NOTHING"
    try:
        cur = await conn.execute(sql + " RETURNING id", tuple(row.values()))
        inserted = await cur.fetchone()
        if inserted is not None:
            return int(inserted[0]), False
    except pg_errors.UniqueViolation:
        pass
    cur = await conn.execute(
        f"SELECT id FROM {table} WHERE {key_column} = %s ORDER BY id LIMIT 1", (row[key_column],))
    existing = await cur.fetchone()
    if existing is None:  # the conflicting row vanished: report as a database failure
        raise pg_errors.NoDataFound(f"{table} conflict without a row")
    return int(existing[0]), True


def _smarttab_routes(ctx: Context) -> list[Route]:
    db, unique = ctx.db, ctx.settings.orders_unique
    assert db is not None

    async def orders(request: Request) -> JSONResponse:
        fields = await _fields(request, ("idempotency_key",), ("amount",))
        if fields is None:
            return _bad_request("need 'idempotency_key' (string) and 'amount' (int >= 0)")
        key, cache = fields["idempotency_key"], "miss"
        try:
            cached = await ctx.call("redis", ctx.redis.get(f"idem:{key}"))
        except Unavailable:
            cached, cache = None, "off"
        if cached is not None:
            return JSONResponse({"order_id": int(cached), "replay": True},
                                headers={"X-Idempotency-Cache": "hit"})
        try:
            order_id, replay = await ctx.call("database", db.run(
                lambda conn: _insert_or_replay(conn, "orders", "idempotency_key", fields,
                                               on_conflict=unique),
                idempotent=unique))
        except Unavailable as exc:
            return _unavailable(exc, {"X-Idempotency-Cache": cache})
        if cache != "off":
            try:
                await ctx.call("redis", ctx.redis.set(f"idem:{key}", order_id,
                                                      ex=IDEMPOTENCY_TTL_S))
            except Unavailable:
                cache = "off"
        return JSONResponse({"order_id": order_id, "replay": replay},
                            status_code=200 if replay else 201,
                            headers={"X-Idempotency-Cache": cache})

    return [Route("/orders", orders, methods=["POST"])]


async def _rate_count(redis: Redis, key: str) -> int:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)  # queued, sent by execute()
        pipe.expire(key, 2)
        count, _ = await pipe.execute()
    return int(count)


def _pgw_routes(ctx: Context) -> list[Route]:
    db, limit = ctx.db, ctx.settings.rate_limit_per_s
    assert db is not None

    async def qr_payment(request: Request) -> JSONResponse:
        fields = await _fields(request, ("payment_id", "client"), ("amount",))
        if fields is None:
            return _bad_request("need 'payment_id', 'client' (strings) and 'amount' (int >= 0)")
        headers, checked = {"X-RateLimit": "on"}, True
        window = f"rl:{fields['client']}:{int(time.time())}"
        try:
            count = await ctx.call("redis", _rate_count(ctx.redis, window))
        except Unavailable:  # runbook 1.3: payments pass unthrottled while Redis is down
            headers["X-RateLimit"], checked = "off", False
        else:
            if count > limit:
                return JSONResponse({"error": "rate limited", "limit_per_s": limit},
                                    status_code=429, headers=headers)
        row = {**fields, "rate_limit_checked": checked}
        try:
            row_id, replay = await ctx.call("database", db.run(
                lambda conn: _insert_or_replay(conn, "qr_payments", "payment_id", row),
                idempotent=True))
        except Unavailable as exc:
            return _unavailable(exc, headers)
        body = {"payment_id": fields["payment_id"], "id": row_id, "replay": replay,
                "rate_limit_checked": checked}
        return JSONResponse(body, status_code=200 if replay else 201, headers=headers)

    return [Route("/payments/qr", qr_payment, methods=["POST"])]


# --- the app -------------------------------------------------------------------------------

_ROUTES = {"svc-portal": _portal_routes, "svc-smarttab": _smarttab_routes, "pgw": _pgw_routes}
_REQUIRED = {
    "svc-portal": (("jwt_secret", "MPAC_JWT_SECRET"),),
    "svc-smarttab": (("database_url", "MPAC_DATABASE_URL"),),
    "pgw": (("pgw_database_url", "MPAC_PGW_DATABASE_URL"),),
}


def create_app(service: str, settings: AppSettings | None = None) -> Starlette:
    """The Starlette app of ``service`` (svc-portal, svc-smarttab or pgw).

    :param service: which MPAC service this task runs.
    :param settings: defaults to ``AppSettings.from_env()``.
    :raises SandboxError: unknown service or a required setting missing.
    """
    if service not in _ROUTES:
        raise SandboxError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
    settings = settings if settings is not None else AppSettings.from_env()
    for attr, env_name in _REQUIRED[service]:
        if not getattr(settings, attr):
            raise SandboxError(f"{service} needs {env_name}")
    if not settings.redis_sentinels and not settings.redis_url:
        raise SandboxError(f"{service} needs MPAC_REDIS_SENTINELS or MPAC_REDIS_URL")
    ctx = Context(service, settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await ctx.close()

    routes = [Route("/health", _health(ctx), methods=["GET"]), *_ROUTES[service](ctx)]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.ctx = ctx
    return app


__all__ = ["SERVICES", "AppSettings", "Context", "PgPool", "Unavailable", "create_app"]

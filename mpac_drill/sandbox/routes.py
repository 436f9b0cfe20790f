"""The routes of the miniature MPAC services (svc-portal, svc-smarttab, pgw).

Where runbook 1.3 says a service degrades without Redis, it does, and says so in a header:

- svc-portal ``GET /verify`` fails open (``X-Revocation-Check: skipped``);
- svc-smarttab ``POST /orders`` skips the idempotency cache (``X-Idempotency-Cache: off``);
- pgw ``POST /payments/qr`` skips rate limiting (``X-RateLimit: off``) and records it.

svc-smarttab ``POST /payments/qr`` is mpac-smartpos taking a QR payment: it forwards it to
the PGW named by ``PGW_BASE_URL`` (runbook 1.5 step 2 moves that parameter to the DR PGW)
and says which one in ``X-PGW``. Secrets are never logged nor returned.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import jwt
import psycopg
from psycopg import errors as pg_errors
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mpac_drill.sandbox.runtime import Context, Unavailable

Handler = Callable[[Request], Awaitable[JSONResponse]]
IDEMPOTENCY_TTL_S = 24 * 3600
_MAX_TEXT = 200
_MAX_INT4 = 2**31 - 1


# --- shared helpers ------------------------------------------------------------------------


async def _fields(
    request: Request, texts: tuple[str, ...], ints: tuple[str, ...] = ()
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


async def http_json(
    method: str, base_url: str, path: str, body: dict[str, Any] | None, timeout_s: float
) -> tuple[int, dict[str, Any]]:
    """One HTTP/1.1 exchange with a JSON body, bounded by ``timeout_s`` as a whole.

    :raises OSError, TimeoutError, ValueError: unreachable, too slow, or not HTTP/JSON.
    """
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = json.dumps(body).encode() if body is not None else b""

    async def exchange() -> tuple[int, dict[str, Any]]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(
                f"{method} {parts.path.rstrip('/')}{path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].split(b" ", 2)
        if len(status_line) < 2 or not status_line[1].isdigit():
            raise ValueError("not an HTTP response")
        parsed = json.loads(rest) if rest.strip() else {}
        return int(status_line[1]), parsed if isinstance(parsed, dict) else {}

    return await asyncio.wait_for(exchange(), timeout_s)


async def _pgw_state(ctx: Context) -> dict[str, Any]:
    """Which PGW svc-smarttab sends QR payments to, and whether it answers."""
    base = ctx.settings.pgw_base_url
    if not base:
        return {"pgw": "not configured", "pgw_base_url": ""}
    try:
        status, _ = await http_json("GET", base, "/health", None, ctx.settings.io_timeout_s)
    except (OSError, TimeoutError, ValueError) as exc:
        return {"pgw": f"unreachable: {type(exc).__name__}", "pgw_base_url": base}
    return {"pgw": "ok" if status == 200 else f"answers {status}", "pgw_base_url": base}


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


def _unavailable(exc: Unavailable, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "error": f"{exc.dependency} unavailable",
        "dependency": exc.dependency,
        "reason": exc.reason,
    }
    return JSONResponse(body, status_code=503, headers=headers)


async def _heartbeat(conn: psycopg.AsyncConnection) -> None:
    await conn.execute(
        "INSERT INTO heartbeat (id, at) VALUES (1, clock_timestamp()) "
        "ON CONFLICT (id) DO UPDATE SET at = excluded.at"
    )


def health_route(ctx: Context) -> Handler:
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
        if deep and ctx.service == "svc-smarttab":  # reported, never failing: runbook 1.5,
            body["downstream"] = await _pgw_state(ctx)  # card and cash work without PGW
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
            return jwt.decode(
                token.strip(), secret, algorithms=["HS256"], options={"require": ["exp", "jti"]}
            )
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
            return JSONResponse(
                {**body, "revocation_check": "skipped"}, headers={"X-Revocation-Check": "skipped"}
            )
        if revoked:
            return JSONResponse(
                {"error": "token revoked"}, status_code=401, headers={"X-Revocation-Check": "ok"}
            )
        return JSONResponse(
            {**body, "revocation_check": "ok"}, headers={"X-Revocation-Check": "ok"}
        )

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

    return [
        Route("/login", login, methods=["POST"]),
        Route("/verify", verify, methods=["GET"]),
        Route("/revoke", revoke, methods=["POST"]),
    ]


# --- svc-smarttab and pgw ------------------------------------------------------------------


async def _insert_or_replay(
    conn: psycopg.AsyncConnection,
    table: str,
    key_column: str,
    row: dict[str, Any],
    *,
    on_conflict: bool = True,
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
        f"SELECT id FROM {table} WHERE {key_column} = %s ORDER BY id LIMIT 1", (row[key_column],)
    )
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
            return JSONResponse(
                {"order_id": int(cached), "replay": True}, headers={"X-Idempotency-Cache": "hit"}
            )
        try:
            order_id, replay = await ctx.call(
                "database",
                db.run(
                    lambda conn: _insert_or_replay(
                        conn, "orders", "idempotency_key", fields, on_conflict=unique
                    ),
                    idempotent=unique,
                ),
            )
        except Unavailable as exc:
            return _unavailable(exc, {"X-Idempotency-Cache": cache})
        if cache != "off":
            try:
                await ctx.call(
                    "redis", ctx.redis.set(f"idem:{key}", order_id, ex=IDEMPOTENCY_TTL_S)
                )
            except Unavailable:
                cache = "off"
        return JSONResponse(
            {"order_id": order_id, "replay": replay},
            status_code=200 if replay else 201,
            headers={"X-Idempotency-Cache": cache},
        )

    async def qr_payment(request: Request) -> JSONResponse:
        """mpac-smartpos takes a QR payment: forwarded to the PGW of ``PGW_BASE_URL``."""
        base = ctx.settings.pgw_base_url
        if not base:
            return JSONResponse({"error": "PGW_BASE_URL is not set"}, status_code=503)
        fields = await _fields(request, ("payment_id", "client"), ("amount",))
        if fields is None:
            return _bad_request("need 'payment_id', 'client' (strings) and 'amount' (int >= 0)")
        headers = {"X-PGW": base}
        try:
            status, body = await http_json(
                "POST", base, "/payments/qr", fields, ctx.settings.io_timeout_s + 0.5
            )
        except (OSError, TimeoutError, ValueError) as exc:
            return JSONResponse(
                {"error": "pgw unreachable", "pgw_base_url": base, "reason": type(exc).__name__},
                status_code=502,
                headers=headers,
            )
        return JSONResponse(body, status_code=status, headers=headers)

    return [
        Route("/orders", orders, methods=["POST"]),
        Route("/payments/qr", qr_payment, methods=["POST"]),
    ]


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
                return JSONResponse(
                    {"error": "rate limited", "limit_per_s": limit},
                    status_code=429,
                    headers=headers,
                )
        row = {**fields, "rate_limit_checked": checked}
        try:
            row_id, replay = await ctx.call(
                "database",
                db.run(
                    lambda conn: _insert_or_replay(conn, "qr_payments", "payment_id", row),
                    idempotent=True,
                ),
            )
        except Unavailable as exc:
            return _unavailable(exc, headers)
        body = {
            "payment_id": fields["payment_id"],
            "id": row_id,
            "replay": replay,
            "rate_limit_checked": checked,
        }
        return JSONResponse(body, status_code=200 if replay else 201, headers=headers)

    return [Route("/payments/qr", qr_payment, methods=["POST"])]


ROUTES: dict[str, Callable[[Context], list[Route]]] = {
    "svc-portal": _portal_routes,
    "svc-smarttab": _smarttab_routes,
    "pgw": _pgw_routes,
}

__all__ = ["ROUTES", "health_route", "http_json"]

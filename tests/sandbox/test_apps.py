"""The three MPAC services against real PostgreSQL and Redis, in real task processes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import psycopg
import pytest
import requests

from mpac_drill.errors import SandboxError
from mpac_drill.sandbox.apps import AppSettings, create_app
from mpac_drill.sandbox.schema import ORDERS_UNIQUE_CONSTRAINT, apply_schema

pytestmark = pytest.mark.sandbox

# The fixtures' types live in conftest.py (AppTask, PgServer, RedisServer).
AppTask = PgServer = RedisServer = Any
Apps = dict[str, Any]
Poll = Callable[[Callable[[], bool], float, str], None]

#: A dependency that is down must make a request fail fast, never hang.
FAST_S = 2.5


def call(method: str, url: str, **kwargs: object) -> requests.Response:
    started = time.monotonic()
    response = requests.request(method, url, timeout=10, **kwargs)  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert elapsed < FAST_S, f"{method} {url} took {elapsed:.2f} s"
    return response


def login(portal: AppTask, user: str = "alice") -> dict:
    response = call("POST", f"{portal.url}/login", json={"user": user})
    assert response.status_code == 200
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def order(task: AppTask, key: str, amount: int = 500) -> requests.Response:
    return call("POST", f"{task.url}/orders", json={"idempotency_key": key, "amount": amount})


def pay(task: AppTask, payment_id: str, client: str = "kiosk-1") -> requests.Response:
    body = {"payment_id": payment_id, "amount": 1200, "client": client}
    return call("POST", f"{task.url}/payments/qr", json=body)


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


# --- health ---------------------------------------------------------------------------------


def test_health_all_dependencies_up_200(apps: Apps) -> None:
    for name, expected in (
        ("portal", {"redis"}),
        ("smarttab", {"redis", "database"}),
        ("smarttab_nu", {"redis", "database"}),
        ("pgw", {"redis", "database"}),
    ):
        response = call("GET", f"{apps[name].url}/health")
        assert response.status_code == 200, (name, response.text)
        body = response.json()
        assert body["ok"] is True and set(body["checks"]) == expected
        assert all(state == "ok" for state in body["checks"].values())


def test_health_redis_stopped_deep_503_shallow_degraded(
    apps: Apps, redis_server: RedisServer, poll: Poll
) -> None:
    with redis_server.stopped():
        for name in ("portal", "smarttab", "pgw"):
            response = call("GET", f"{apps[name].url}/health?deep=1")
            assert response.status_code == 503, name
            body = response.json()
            assert body["failed"] == ["redis"], body
            assert body["checks"]["redis"].startswith("unavailable")
            assert body["checks"].get("database", "ok") == "ok"
            # the ALB's check: the service fails open on Redis, so it stays in service
            shallow = call("GET", f"{apps[name].url}/health")
            assert shallow.status_code == 200, name
            assert shallow.json()["degraded"] == ["redis"]
    poll(
        lambda: call("GET", f"{apps['portal'].url}/health?deep=1").status_code == 200,
        10,
        "portal healthy again once Redis is back (through Sentinel)",
    )


def test_health_database_stopped_503_then_recovers(apps: Apps, pg: PgServer) -> None:
    # Warm the pools so they hold connections to the server that is about to die.
    assert call("GET", f"{apps['smarttab'].url}/health").status_code == 200
    assert order(apps["smarttab"], key()).status_code == 201
    pg.stop()
    try:
        for name in ("smarttab", "pgw"):
            response = call("GET", f"{apps[name].url}/health")
            assert response.status_code == 503, name
            assert response.json()["failed"] == ["database"]
        response = order(apps["smarttab"], key())
        assert response.status_code == 503
        assert response.json()["dependency"] == "database"
        assert pay(apps["pgw"], key()).status_code == 503
    finally:
        pg.start()
    # Stale connections are discarded: the very first request after the restart succeeds.
    assert call("GET", f"{apps['smarttab'].url}/health").status_code == 200
    assert order(apps["smarttab"], key()).status_code == 201
    assert pay(apps["pgw"], key()).status_code == 201


def test_dependencies_hung_requests_fail_fast(
    apps: Apps, pg: PgServer, redis_server: RedisServer, poll: Poll
) -> None:
    """SIGSTOP: sockets stay open but nothing answers; every call is bounded (~1 s)."""
    token = login(apps["portal"])["token"]
    assert call("GET", f"{apps['smarttab'].url}/health").status_code == 200
    with redis_server.frozen():
        response = call("GET", f"{apps['portal'].url}/verify", headers=bearer(token))
        assert response.headers["X-Revocation-Check"] == "skipped"
        assert call("GET", f"{apps['smarttab'].url}/health?deep=1").json()["failed"] == ["redis"]
    with pg.frozen():
        assert call("GET", f"{apps['pgw'].url}/health").json()["failed"] == ["database"]
        assert order(apps["smarttab"], key()).status_code == 503
    poll(
        lambda: call("GET", f"{apps['smarttab'].url}/health").status_code == 200,
        15,
        "smarttab healthy once PostgreSQL runs again",
    )


# --- svc-portal -----------------------------------------------------------------------------


def test_portal_login_verify_revoke_revoked_token_401(
    apps: Apps, redis_server: RedisServer, app_secrets: dict[str, Any]
) -> None:
    portal = apps["portal"]
    issued = login(portal)
    assert issued["expires_in"] == 900
    claims = jwt.decode(issued["token"], app_secrets["jwt_secret"], algorithms=["HS256"])
    assert claims["jti"] == issued["jti"] and claims["exp"] - claims["iat"] == 900

    response = call("GET", f"{portal.url}/verify", headers=bearer(issued["token"]))
    assert response.status_code == 200
    assert response.headers["X-Revocation-Check"] == "ok"

    response = call("POST", f"{portal.url}/revoke", headers=bearer(issued["token"]))
    assert response.status_code == 200
    ttl = redis_server.client().ttl(f"revoked:{issued['jti']}")
    assert 890 <= ttl <= 900

    response = call("GET", f"{portal.url}/verify", headers=bearer(issued["token"]))
    assert response.status_code == 401
    assert issued["token"] not in response.text


def test_portal_verify_bad_tokens_401(apps: Apps, app_secrets: dict[str, Any]) -> None:
    url, secret = f"{apps['portal'].url}/verify", app_secrets["jwt_secret"]
    now = int(time.time())
    expired = jwt.encode(
        {"sub": "a", "jti": "j1", "iat": now - 1000, "exp": now - 100}, secret, algorithm="HS256"
    )
    forged = jwt.encode(
        {"sub": "a", "jti": "j2", "exp": now + 100}, secret[::-1], algorithm="HS256"
    )
    no_jti = jwt.encode({"sub": "a", "exp": now + 100}, secret, algorithm="HS256")
    assert call("GET", url).status_code == 401
    for token in (expired, forged, no_jti, "garbage"):
        assert call("GET", url, headers=bearer(token)).status_code == 401, token
    assert call("POST", f"{apps['portal'].url}/login", json={"user": ""}).status_code == 400


def test_portal_verify_redis_stopped_fails_open_revoked_token_accepted(
    apps: Apps, redis_server: RedisServer, poll: Poll
) -> None:
    portal = apps["portal"]
    revoked = login(portal)
    assert call("POST", f"{portal.url}/revoke", headers=bearer(revoked["token"])).ok
    with redis_server.stopped():
        # Runbook 1.3: revocation is unenforced while Redis is down.
        response = call("GET", f"{portal.url}/verify", headers=bearer(revoked["token"]))
        assert response.status_code == 200
        assert response.headers["X-Revocation-Check"] == "skipped"
        assert (
            call("POST", f"{portal.url}/revoke", headers=bearer(revoked["token"])).status_code
            == 503
        )
        assert call("GET", f"{portal.url}/verify", headers=bearer("garbage")).status_code == 401
        fresh = login(portal)  # issuing needs no Redis
        assert call("GET", f"{portal.url}/verify", headers=bearer(fresh["token"])).ok

    def revoked_again() -> bool:
        return (
            call("GET", f"{portal.url}/verify", headers=bearer(revoked["token"])).status_code == 401
        )

    poll(revoked_again, 10, "revocation enforced again once Redis is back")


# --- svc-smarttab ---------------------------------------------------------------------------


def test_orders_retry_replays_from_cache(apps: Apps, pg: PgServer) -> None:
    k = key()
    first = order(apps["smarttab"], k)
    assert first.status_code == 201 and first.json()["replay"] is False
    assert first.headers["X-Idempotency-Cache"] == "miss"
    again = order(apps["smarttab"], k)
    assert again.status_code == 200
    assert again.json() == {"order_id": first.json()["order_id"], "replay": True}
    assert again.headers["X-Idempotency-Cache"] == "hit"
    assert pg.query("smartpos", "SELECT count(*) FROM orders WHERE idempotency_key = %s", (k,)) == [
        (1,)
    ]


def test_orders_redis_stopped_replays_from_database_no_duplicate(
    apps: Apps, pg: PgServer, redis_server: RedisServer
) -> None:
    before = key()
    created = order(apps["smarttab"], before).json()["order_id"]
    during = key()
    with redis_server.stopped():
        retried = order(apps["smarttab"], before)
        assert retried.status_code == 200 and retried.json()["order_id"] == created
        first = order(apps["smarttab"], during)
        assert first.status_code == 201
        assert first.headers["X-Idempotency-Cache"] == "off"
        again = order(apps["smarttab"], during)
        assert again.status_code == 200
        assert again.json() == {"order_id": first.json()["order_id"], "replay": True}
        assert again.headers["X-Idempotency-Cache"] == "off"
    rows = pg.query(
        "smartpos",
        "SELECT idempotency_key, count(*) FROM orders WHERE idempotency_key IN (%s, %s) GROUP BY 1",
        (before, during),
    )
    assert sorted(count for _, count in rows) == [1, 1]


def test_orders_unique_off_redis_stopped_duplicates(
    apps: Apps, pg: PgServer, redis_server: RedisServer
) -> None:
    cached = key()
    assert order(apps["smarttab_nu"], cached).status_code == 201
    assert order(apps["smarttab_nu"], cached).status_code == 200  # the cache still dedupes
    k = key()
    with redis_server.stopped():
        statuses = [order(apps["smarttab_nu"], k).status_code for _ in range(2)]
    assert statuses == [201, 201]  # runbook finding F8: nothing below the cache dedupes
    counts = pg.query(
        "smartpos_nu",
        "SELECT idempotency_key, count(*) FROM orders "
        "WHERE idempotency_key IN (%s, %s) GROUP BY 1 ORDER BY 2",
        (cached, k),
    )
    assert [c for _, c in counts] == [1, 2]


def test_orders_bad_body_400(apps: Apps) -> None:
    url = f"{apps['smarttab'].url}/orders"
    for body in (
        {"idempotency_key": "x"},
        {"idempotency_key": "x", "amount": "5"},
        {"idempotency_key": "", "amount": 5},
        ["x"],
    ):
        assert call("POST", url, json=body).status_code == 400, body


# --- pgw ------------------------------------------------------------------------------------


def test_pgw_over_rate_limit_429_other_client_unaffected(
    apps: Apps, app_secrets: dict[str, Any]
) -> None:
    client, limit = f"kiosk-{uuid.uuid4().hex[:8]}", app_secrets["rate_limit"]
    started = time.time()
    statuses = [pay(apps["pgw"], key(), client).status_code for _ in range(3 * limit)]
    seconds = int(time.time()) - int(started) + 1
    assert 429 in statuses
    assert statuses.count(201) <= limit * seconds  # at most `limit` in each wall-clock second
    assert set(statuses) <= {201, 429}
    response = pay(apps["pgw"], key(), f"other-{client}")
    assert response.status_code == 201 and response.headers["X-RateLimit"] == "on"


def test_pgw_redis_stopped_rate_limit_off_recorded(
    apps: Apps, pg: PgServer, redis_server: RedisServer, app_secrets: dict[str, Any]
) -> None:
    client, n = f"kiosk-{uuid.uuid4().hex[:8]}", 3 * app_secrets["rate_limit"]
    with redis_server.stopped():
        responses = [pay(apps["pgw"], f"{client}-{i}", client) for i in range(n)]
        replay = pay(apps["pgw"], f"{client}-0", client)
    assert [r.status_code for r in responses] == [201] * n
    assert {r.headers["X-RateLimit"] for r in responses} == {"off"}
    assert replay.status_code == 200 and replay.json()["replay"] is True
    rows = pg.query(
        "pgw",
        "SELECT rate_limit_checked, count(*) FROM qr_payments WHERE client = %s GROUP BY 1",
        (client,),
    )
    assert rows == [(False, n)]


# --- schema and secrets ---------------------------------------------------------------------


# --- mpac-smartpos -> PGW (PGW_BASE_URL, runbook 1.5) -----------------------------------------


def test_smarttab_qr_payment_forwarded_to_pgw_base_url(apps: Apps, pg: PgServer) -> None:
    pid = f"fw-{uuid.uuid4().hex}"
    response = pay(apps["smarttab"], pid)
    assert response.status_code == 201, response.text
    assert response.headers["X-PGW"] == apps["pgw"].url
    assert response.json()["payment_id"] == pid
    with psycopg.connect(pg.conninfo("pgw")) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM qr_payments WHERE payment_id = %s", (pid,)
        ).fetchone()
    assert rows == (1,)  # stored by the PGW, not by smarttab
    assert pay(apps["smarttab"], pid).status_code == 200  # pgw's replay passes through
    body = call("GET", f"{apps['smarttab'].url}/health?deep=1").json()
    assert body["downstream"] == {"pgw": "ok", "pgw_base_url": apps["pgw"].url}


def test_smarttab_qr_pgw_unreachable_502_health_stays_ok(apps: Apps) -> None:
    response = pay(apps["smarttab_nu"], f"fw-{uuid.uuid4().hex}")
    assert response.status_code == 502, response.text
    dead = response.headers["X-PGW"]
    assert dead != apps["pgw"].url and response.json()["pgw_base_url"] == dead
    # runbook 1.5: QR payments down, card and cash unaffected: smarttab stays in service
    health = call("GET", f"{apps['smarttab_nu'].url}/health?deep=1")
    assert health.status_code == 200
    assert health.json()["downstream"]["pgw"].startswith("unreachable")
    assert "downstream" not in call("GET", f"{apps['pgw'].url}/health?deep=1").json()


def test_apply_schema_twice_toggles_orders_constraint(pg: PgServer) -> None:
    sql = "SELECT count(*) FROM pg_constraint WHERE conname = %s"
    apply_schema(pg.conninfo("smartpos_nu"), pg.conninfo("pgw"), orders_unique=False)
    assert pg.query("smartpos_nu", sql, (ORDERS_UNIQUE_CONSTRAINT,)) == [(0,)]
    apply_schema(pg.conninfo("smartpos"), pg.conninfo("pgw"), orders_unique=True)
    apply_schema(pg.conninfo("smartpos"), pg.conninfo("pgw"), orders_unique=True)
    assert pg.query("smartpos", sql, (ORDERS_UNIQUE_CONSTRAINT,)) == [(1,)]
    assert pg.query("smartpos", "SELECT count(*) FROM heartbeat") == [(1,)]


def test_task_logs_never_hold_secrets(apps: Apps, app_secrets: dict[str, Any]) -> None:
    for task in apps.values():
        text = task.log.read_text()
        assert app_secrets["pg_password"] not in text, task.service
        assert app_secrets["redis_password"] not in text, task.service
        assert app_secrets["jwt_secret"] not in text, task.service


def test_settings_from_env_parses_and_hides_secrets() -> None:
    settings = AppSettings.from_env(
        {
            "MPAC_DATABASE_URL": "host=a password=pw-123",
            "MPAC_JWT_SECRET": "s3cret-value",
            "MPAC_REDIS_SENTINELS": "127.0.0.1:26379, 127.0.0.1:26380",
            "MPAC_ORDERS_UNIQUE": "0",
            "MPAC_JWT_LIFETIME_S": "60",
            "MPAC_REDIS_USERNAME": "mpac",
            "MPAC_REDIS_PASSWORD": "redis-pw-456",
        }
    )
    assert settings.redis_sentinels == (("127.0.0.1", 26379), ("127.0.0.1", 26380))
    assert settings.redis_username == "mpac" and settings.redis_password == "redis-pw-456"
    assert "redis-pw-456" not in repr(settings)
    assert settings.redis_master == "mpac" and settings.orders_unique is False
    assert settings.jwt_lifetime_s == 60 and settings.rate_limit_per_s == 1000
    assert "pw-123" not in repr(settings) and "s3cret-value" not in repr(settings)
    with pytest.raises(SandboxError, match="MPAC_RATE_LIMIT_PER_S"):
        AppSettings.from_env({"MPAC_RATE_LIMIT_PER_S": "lots"})
    with pytest.raises(SandboxError, match="MPAC_REDIS_SENTINELS"):
        AppSettings.from_env({"MPAC_REDIS_SENTINELS": "127.0.0.1"})
    with pytest.raises(SandboxError, match="MPAC_JWT_SECRET"):
        create_app("svc-portal", AppSettings(redis_url="redis://127.0.0.1:1/0"))
    with pytest.raises(SandboxError, match="unknown service"):
        create_app("svc-billing", settings)

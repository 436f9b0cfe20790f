"""Redis impact checks of runbook 1.3 (findings F7 and F8).

Before the fault a token is issued and revoked (svc-portal must then refuse it). During the
drill a checker keeps presenting the revoked token and keeps sending order retries (the
same idempotency key twice, as a POS terminal retries on timeout). Afterwards:

- ``revoked_token_accepted_s``: for how long the revoked token was accepted (the sum of the
  sampling intervals whose request was accepted);
- ``duplicate_orders``: orders written more than once for one idempotency key since the drill
  started (expected 0: "handle at DB layer");
- ``rate_limit_bypassed``: QR payments accepted while rate limiting was off.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import psycopg

from mpac_drill.measure.observer import request_json
from mpac_drill.measure.record import RedisImpact
from mpac_drill.timefmt import iso

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext


def accepted_span(samples: list[tuple[float, bool]]) -> float:
    """Total time a check was passing: each accepted sample counts until the next sample."""
    total = 0.0
    for (t, ok), (t_next, _) in zip(samples, samples[1:], strict=False):
        if ok:
            total += t_next - t
    return round(total, 4)


class ImpactChecker:
    def __init__(self, *, portal_url: str, smarttab_url: str, interval_s: float = 0.1) -> None:
        self.portal_url = portal_url
        self.smarttab_url = smarttab_url
        self.interval_s = interval_s
        self._token: str | None = None  # never written anywhere
        self.revocation_enforced_before: bool | None = None
        self.verify_samples: list[tuple[float, bool]] = []
        self.retries_sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def prepare(self) -> None:
        status, _, body = request_json(
            f"{self.portal_url}/login", "POST", {"user": f"drill-{uuid.uuid4().hex[:8]}"}
        )
        if status != 200 or "token" not in body:
            raise RuntimeError(f"svc-portal /login answered {status}")
        self._token = body["token"]
        status, _, _ = request_json(f"{self.portal_url}/revoke", "POST", {}, token=self._token)
        if status != 200:
            raise RuntimeError(f"svc-portal /revoke answered {status}")
        status, _, _ = request_json(f"{self.portal_url}/verify", "GET", token=self._token)
        self.revocation_enforced_before = status == 401

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="impact")
        self._thread.start()

    def _loop(self) -> None:
        tick = 0
        next_at = time.monotonic()
        deadline = next_at + 3600
        while not self._stop.is_set() and time.monotonic() < deadline:
            t = time.monotonic()
            status, _, _ = request_json(
                f"{self.portal_url}/verify", "GET", token=self._token, timeout_s=2.5
            )  # longer than the services' I/O timeout
            self.verify_samples.append((t, status == 200))
            if tick % 5 == 0:  # an order and its retry, with one idempotency key
                key = f"drill-retry-{uuid.uuid4().hex}"
                for _ in range(2):
                    request_json(
                        f"{self.smarttab_url}/orders",
                        "POST",
                        {"idempotency_key": key, "amount": 1},
                        timeout_s=1.0,
                    )
                self.retries_sent += 1
            tick += 1
            next_at += self.interval_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def start_checks(
    drill: DrillContext, urls: dict[str, str] | None, interval_s: float
) -> dict[str, Any]:
    """Issue and revoke a token, then keep presenting it and retrying orders (``urls``:
    portal and smarttab; ``None`` where the checks cannot run, noted)."""
    ctx = drill
    if urls is None:
        ctx.note("Redis impact checks run on the sandbox only")
        return {"started": False}
    checker = ImpactChecker(
        portal_url=urls["portal"],
        smarttab_url=urls["smarttab"],
        interval_s=interval_s,
    )
    try:
        checker.prepare()
    except RuntimeError as exc:
        raise ctx.failed(f"impact checks could not start: {exc}") from None
    checker.start()
    ctx.impact = checker
    return {"started": True, "revocation_enforced_before": checker.revocation_enforced_before}


def count_impact(
    drill: DrillContext, smartpos_dsn: str | None, pgw_dsn: str | None
) -> RedisImpact | dict[str, Any]:
    """Stop the checker and count what the cache outage let through (see the module docs)."""
    ctx = drill
    checker = ctx.impact
    if checker is None:
        return {"measured": False}
    checker.stop()
    since = iso(ctx.started_utc)
    assert smartpos_dsn is not None and pgw_dsn is not None  # checks started: they exist
    with psycopg.connect(smartpos_dsn, autocommit=True) as conn:
        dup = conn.execute(
            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM orders "
            "WHERE created_at >= %s GROUP BY idempotency_key HAVING count(*) > 1) d",
            (since,),
        ).fetchone()
    with psycopg.connect(pgw_dsn, autocommit=True) as conn:
        bypass = conn.execute(
            "SELECT count(*) FROM qr_payments WHERE NOT rate_limit_checked AND created_at >= %s",
            (since,),
        ).fetchone()
    impact: RedisImpact = {
        "revoked_token_accepted_s": accepted_span(checker.verify_samples),
        "revocation_enforced_before": checker.revocation_enforced_before,
        "duplicate_orders": int(dup[0]) if dup else 0,
        "order_retries_sent": checker.retries_sent,
        "rate_limit_bypassed": int(bypass[0]) if bypass else 0,
        "token_lifetime_s": ctx.target.get("app.jwt_lifetime_s"),
    }
    ctx.record.impact = impact
    return impact


__all__ = ["count_impact", "start_checks", "ImpactChecker", "accepted_span"]

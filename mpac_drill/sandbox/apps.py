"""The miniature MPAC services: svc-portal, svc-smarttab and pgw as Starlette apps.

Each app is what one ECS task runs (see ``mpac_drill.sandbox.task``): the settings, pool
and clients are in ``runtime.py``, the routes in ``routes.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mpac_drill.errors import SandboxError
from mpac_drill.sandbox.routes import ROUTES, health_route
from mpac_drill.sandbox.runtime import AppSettings, Context, PgPool, Unavailable

SERVICES = ("svc-portal", "svc-smarttab", "pgw")


# --- the app -------------------------------------------------------------------------------

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
    if service not in ROUTES:
        raise SandboxError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
    settings = settings if settings is not None else AppSettings.from_env()
    for attr, env_name in _REQUIRED[service]:
        if not getattr(settings, attr):
            raise SandboxError(f"{service} needs {env_name}")
    if not settings.redis_sentinels and not settings.redis_url:
        raise SandboxError(f"{service} needs MPAC_REDIS_SENTINELS or MPAC_REDIS_URL")
    ctx = Context(service, settings)

    warm: dict[str, float] = {}  # the warm-up's clock (its first real request)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await ctx.close()

    routes = [Route("/health", health_route(ctx), methods=["GET"]), *ROUTES[service](ctx)]
    middleware = []
    if settings.warmup_s > 0 and settings.warmup_slow_ms > 0:
        middleware.append(
            Middleware(
                WarmUp,
                clock=warm,
                warmup_s=settings.warmup_s,
                slow_s=settings.warmup_slow_ms / 1000,
            )
        )
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.ctx = ctx
    return app


class WarmUp:
    """A cold cache after the task starts (target ``app.warmup_s``, ``app.warmup_slow_ms``):
    from the first real request the task serves (the ALB admitted it: the service is back)
    and for ``warmup_s``, every request takes ``slow_s`` longer, except the ALB's shallow
    ``/health`` (so the task stays in service while it warms up, and users and the
    observer's deep check see the slowdown). Ground truth for ``rto_slo_s - rto_s``."""

    def __init__(
        self, app: ASGIApp, *, clock: dict[str, float], warmup_s: float, slow_s: float
    ) -> None:
        self.app, self.clock, self.warmup_s, self.slow_s = app, clock, warmup_s, slow_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _shallow_health(scope):
            now = time.monotonic()
            first = self.clock.setdefault("first_request", now)  # the cache starts filling
            if now - first < self.warmup_s:
                await asyncio.sleep(self.slow_s)
        await self.app(scope, receive, send)


def _shallow_health(scope: Scope) -> bool:
    query = scope.get("query_string", b"")
    return bool(scope.get("path") == "/health" and b"deep=" not in query)


__all__ = ["SERVICES", "AppSettings", "WarmUp", "Context", "PgPool", "Unavailable", "create_app"]

"""The miniature MPAC services: svc-portal, svc-smarttab and pgw as Starlette apps.

Each app is what one ECS task runs (see ``mpac_drill.sandbox.task``): the settings, pool
and clients are in ``runtime.py``, the routes in ``routes.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Route

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

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await ctx.close()

    routes = [Route("/health", health_route(ctx), methods=["GET"]), *ROUTES[service](ctx)]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.ctx = ctx
    return app


__all__ = ["SERVICES", "AppSettings", "Context", "PgPool", "Unavailable", "create_app"]

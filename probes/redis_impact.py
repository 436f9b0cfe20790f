"""Chaos Toolkit entry points of the redis impact measurement; what they run is
``mpac_drill/measure/redis_impact.py`` (see there for how the figure is defined)."""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from mpac_drill.measure.redis_impact import count_impact, start_checks


def start_impact_checks(
    interval_s: float = 0.1,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Issue and revoke a token, then keep presenting it and retrying orders until
    ``measure_impact``. Sandbox only (on AWS the checks are reported as not run).

    ::

        - type: action
          name: start-impact-checks
          provider: {type: python, module: probes.redis_impact, func: start_impact_checks}
    """
    from mpac_drill.drill.context import current
    from mpac_drill.drill.platforms import platform_for

    ctx = current(configuration)
    return start_checks(ctx, platform_for(ctx).impact_urls(), interval_s)


def measure_impact(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Stop the checker and count what the cache outage let through (see module docs)."""
    from mpac_drill.drill.context import current
    from mpac_drill.drill.platforms import platform_for

    ctx = current(configuration)
    platform = platform_for(ctx)
    return count_impact(ctx, platform.database_dsn("smartpos"), platform.database_dsn("pgw"))


__all__ = ["start_impact_checks", "measure_impact"]

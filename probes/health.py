"""Steady-state probe: every service answers its health check (and the sandbox is whole)."""

from __future__ import annotations

from chaoslib.types import Configuration, Secrets


def all_healthy(
    timeout_s: float = 2.0,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> bool:
    """True when every service's ``/health`` answers 2xx and, on the sandbox, every component
    (primary, standby, replica, sentinels, tasks) is healthy. Always true in a dry run.

    ::

        steady-state-hypothesis:
          title: every service answers its health check
          probes:
            - type: probe
              name: services-healthy
              tolerance: true
              provider: {type: python, module: probes.health, func: all_healthy}
    """
    from mpac_drill.drill.context import current
    from mpac_drill.drill.platforms import platform_for

    return platform_for(current(configuration)).steady(timeout_s)


__all__ = ["all_healthy"]

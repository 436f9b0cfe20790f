"""Steady-state probe: every service answers its health check (and the sandbox is whole)."""

from __future__ import annotations

from chaoslib.types import Configuration, Secrets

from probes.observer import probe_http

__all__ = ["all_healthy"]


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
    from mpac_drill.sandbox import control

    ctx = current(configuration)
    if ctx.dry_run:
        return True
    if ctx.is_sandbox:
        try:
            control.wait_healthy(ctx.target, timeout_s=30)
        except Exception:  # noqa: BLE001 - a probe answers, it does not raise
            return False
    return all(probe_http(url, timeout_s)[0] for url in ctx.endpoints().values())

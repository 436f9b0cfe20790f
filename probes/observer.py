"""Chaos Toolkit entry points of the observer measurement; what they run is
``mpac_drill/measure/observer.py`` (see there for how the figure is defined)."""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from mpac_drill.measure.observer import start_observation


def start_observers(
    canary: bool = True,
    canary_on_aws: bool = False,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Start sampling every service's health endpoint and (``canary``) the RPO canary.

    On an AWS target the canary writes into the real database, so it runs only where the
    experiment asks for it (``canary_on_aws``: rds-failover, whose RPO it measures) and the
    target names the SSM parameter holding the DSN (``database.dsn_ssm_parameter``). A DSN
    that cannot be read or takes no write fails this action, and the fault that follows is
    refused. In a dry run nothing starts; on AWS the canary's GetParameter is planned.

    Undone by ``stop_observers`` (also listed in the rollbacks).

    :param canary: run the RPO canary
    :param canary_on_aws: on an AWS target too (the region drills measure RPO their own way)

    ::

        - type: action
          name: start-observers
          provider: {type: python, module: probes.observer, func: start_observers,
                     arguments: {canary_on_aws: true}}
    """
    from mpac_drill.drill.context import current
    from mpac_drill.drill.platforms import platform_for

    ctx = current(configuration)
    wanted = canary and (canary_on_aws or not platform_for(ctx).shared_database)
    return start_observation(ctx, canary=wanted, canary_asked=canary)


def stop_observers(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Stop the observer and the canary and write their artifacts (idempotent).

    ::

        - type: action
          name: stop-observers
          provider: {type: python, module: probes.observer, func: stop_observers}
    """
    from mpac_drill.drill.context import current

    ctx = current(configuration)
    return ctx.stop_observer()


__all__ = ["start_observers", "stop_observers"]

"""Chaos Toolkit entry points of the canary measurement; what they run is
``mpac_drill/measure/canary.py`` (see there for how the figure is defined)."""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from mpac_drill.measure.canary import measure_lost_writes


def measure_rpo(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Stop the canary, read its rows back from the current primary (the region drill: from
    the restored DR database), report lost writes.

    ::

        - type: probe
          name: measure-rpo
          provider: {type: python, module: probes.canary, func: measure_rpo}
    """
    from mpac_drill.drill.context import current

    ctx = current(configuration)
    return measure_lost_writes(ctx)


__all__ = ["measure_rpo"]

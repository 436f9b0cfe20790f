"""Chaos Toolkit entry points of the recovery measurement; what they run is
``mpac_drill/measure/recovery.py`` (see there for how the figure is defined)."""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from mpac_drill.measure.recovery import await_recovery


def measure_rto(
    detect_window_s: float = 5.0,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Wait until every observed service is healthy again, then report detect and RTO.

    Waits at most the recovery bound (the target's ``drill.recovery_bound_s``, never more
    than twice the RTO target); past it the drill is aborted. When no sample fails within
    ``detect_window_s`` of the fault, the fault caused no observable outage (RTO 0).
    After recovery it keeps observing for ``drill.cooldown_s`` so a relapse is caught.

    ::

        - type: probe
          name: measure-rto
          provider: {type: python, module: probes.recovery, func: measure_rto}
    """
    from mpac_drill.drill.context import current

    ctx = current(configuration)
    return await_recovery(ctx, detect_window_s)


__all__ = ["measure_rto"]

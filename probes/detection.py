"""Chaos Toolkit entry points of the detection chain; what they run is
``mpac_drill/measure/detection.py`` (see there for how each figure is defined)."""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets


def watch_detection(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Start watching the scenario's alarms and pager (a thread; from the injection on,
    bounded and paced by the platform). Place it before the fault.

    ::

        - type: action
          name: watch-detection
          provider: {type: python, module: probes.detection, func: watch_detection}
    """
    from mpac_drill.drill.context import current
    from mpac_drill.drill.platforms import platform_for
    from mpac_drill.measure.detection_drill import start_watch

    ctx = current(configuration)
    return start_watch(ctx, platform_for(ctx))


def measure_detection(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Wait (bounded) for the alarms, the page and its acknowledgement, and record them
    (result.json ``detection``). Place it after the recovery is measured.

    ::

        - type: probe
          name: measure-detection
          provider: {type: python, module: probes.detection, func: measure_detection}
    """
    from mpac_drill.drill.context import current
    from mpac_drill.measure.detection_drill import finish_watch

    return finish_watch(current(configuration))


__all__ = ["measure_detection", "watch_detection"]

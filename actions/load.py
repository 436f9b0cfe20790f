"""User load during a drill: locust as its own process(es), never imported here.

``start_load`` starts locust headless against the target's services with the repo's
locustfile; it stops by itself after the drill's bound (``--run-time``), and ``stop_load``
(also a rollback) stops it earlier and merges its per-second history into
``load_per_second.csv``.
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from mpac_drill.drill.context import current
from mpac_drill.drill.platforms import platform_for
from mpac_drill.measure.load import start_drill_load, stop_drill_load

__all__ = ["start_load", "stop_load"]


def start_load(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Start locust with the drill's ``--users`` and ``--load-workers`` (0 users: no load).

    Undone by ``stop_load``; locust also stops on its own after the drill's time bound.

    ::

        - type: action
          name: start-load
          provider: {type: python, module: actions.load, func: start_load}
    """
    ctx = current(configuration)
    return start_drill_load(ctx, platform_for(ctx).service_urls())  # region drill: front door


def stop_load(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Stop locust (idempotent) and merge its per-second history into the run folder.

    ::

        - type: action
          name: stop-load
          provider: {type: python, module: actions.load, func: stop_load}
    """
    return stop_drill_load(current(configuration))

"""mpac-obs checks (runbook 1.6): history survives the stack, dashboards come from git.

``start_history`` runs before the fault, ``measure_history`` after the redeploy; both go
to the drill's platform (``Platform.start_obs_history`` / ``measure_obs_history``):

- sandbox: numbered log lines pushed to mpac-obs every ``interval_s``, each acknowledged
  push logged; afterwards the stream is read back (lost lines, ``rpo_s`` as the canary's);
- aws: every object of the history buckets (``obs.buckets``, Loki's and Tempo's) listed
  before the fault; afterwards each must still be listed and readable (lost objects,
  ``rpo_s`` from the oldest lost one to the fault), once ECS runs new tasks.

Either way the dashboards of ``experiments/obs/dashboards`` are then looked up through
Grafana's API (``GET /api/dashboards/uid/{uid}``): the sandbox's mpac-obs answers it as
Grafana does. Figures go to ``acked_writes``, ``lost_writes``, ``rpo_s`` and the ``obs``
record of result.json.
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from mpac_drill.drill.platforms import platform_for

__all__ = ["start_history", "measure_history"]


def start_history(
    interval_s: float = 0.1,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Before the fault: start the history the drill checks afterwards.

    Undone by ``measure_history``. On AWS a bucket that cannot be listed aborts the drill
    before any fault.

    :param interval_s: the sandbox's push interval

    ::

        - type: action
          name: start-history
          provider: {type: python, module: probes.obs, func: start_history}
    """
    from mpac_drill.drill.context import current

    ctx = current(configuration)
    return dict(platform_for(ctx).start_obs_history(interval_s))


def measure_history(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """After the redeploy: count the history lost and check the provisioned dashboards.

    ::

        - type: probe
          name: measure-history
          provider: {type: python, module: probes.obs, func: measure_history}
    """
    from mpac_drill.drill.context import current

    ctx = current(configuration)
    return dict(platform_for(ctx).measure_obs_history())

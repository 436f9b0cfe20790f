"""Region failure (runbook §1.4): the primary region of mpac-smartpos lost, the DR region
brought up step by step.

Sandbox: the primary sandbox's processes are all frozen, then SIGKILLed, at once (its
bucket stays: the cross-region copy of snapshots and WAL); the DR stack is a second
sandbox restored from that bucket; users reach both through a front door whose records
play Route53. AWS: the primary region is declared lost (nothing in it is touched) and the
procedure runs for real in ``aws.dr_region`` (``mpac_drill/platform/aws/region.py``);
``--dry-run`` prints the plan.
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from mpac_drill.drill.context import current
from mpac_drill.drill.platforms import platform_for

__all__ = ["open_front_door", "lose_region", "fail_over_to_dr", "fail_back"]


def open_front_door(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Give users and the observer one address per service that outlives the region (the
    sandbox's "Route53"; on AWS, Route53 itself). Closed by ``fail_back``.

    ::

        - type: action
          name: open-front-door
          provider: {type: python, module: actions.region, func: open_front_door}
    """
    ctx = current(configuration)
    ctx.phase("opening the front door")
    return platform_for(ctx).open_front_door()


def lose_region(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Lose the whole primary region at once (the fault). Undone by ``fail_back``.

    ::

        - type: action
          name: lose-region
          provider: {type: python, module: actions.region, func: lose_region}
    """
    ctx = current(configuration)
    ctx.phase("losing the primary region")
    return platform_for(ctx).lose_region()


def fail_over_to_dr(
    system: str = "smartpos",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Run the runbook's §1.4 steps (``system: pgw``: §1.5's) in the target's DR region,
    each timed (``steps`` of result.json): detect, activate the DR stack, restore the latest
    snapshot with its WAL, update DATABASE_URL (pgw: and PGW_BASE_URL), restart the
    services, switch the Route53 record, verify health. Bounded by
    ``drill.recovery_bound_s``.

    :param system: ``smartpos`` (runbook §1.4) or ``pgw`` (§1.5)

    ::

        - type: action
          name: fail-over-to-dr
          provider: {type: python, module: actions.region, func: fail_over_to_dr,
                     arguments: {system: smartpos}}
    """
    ctx = current(configuration)
    ctx.phase("failing over to the DR region")
    return platform_for(ctx).fail_over_to_dr(system, ctx.recovery_bound_s())


def fail_back(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Rollback: stop the DR stack, bring the primary region back, close the front door
    (idempotent; also after an abort before the fault).

    ::

        - type: action
          name: fail-back
          provider: {type: python, module: actions.region, func: fail_back}
    """
    return platform_for(current(configuration)).fail_back()

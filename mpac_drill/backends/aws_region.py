"""The region drill (runbook §1.4) on AWS: the DR plan in the target's DR region.

Not built yet beyond the plan: a real region cannot be "lost" on demand, and the DR calls
(``restore_db_instance_from_db_snapshot`` in ``aws.dr_region``, the Route53 change, the SSM
``SecureString`` update, ECS force-new-deployment) live in ``backends/aws_dr.py`` when that
module exists: its ``plan_region_failover`` is called for a dry run (the plan, step by
step, with the AWS calls) and ``runbook_region_findings`` gives finding F1.
Without it, or for a live run, each function raises a clear ``ActivityFailed``.
"""

from __future__ import annotations

import importlib
from typing import Any

from chaoslib.exceptions import ActivityFailed

from mpac_drill.drill.context import DrillContext

NOT_BUILT = "region failover on AWS: not built yet"


def _aws_dr() -> Any:
    try:
        return importlib.import_module("mpac_drill.backends.aws_dr")
    except ImportError:
        return None


def regions(target: Any) -> tuple[str, str]:
    return (str(target.get("aws.region", "?")), str(target.get("aws.dr_region", "?")))


def open_front_door(ctx: DrillContext) -> dict[str, Any]:
    """Nothing to open: on AWS the front door is Route53 itself (``endpoints``)."""
    return {"front_door": "route53", "endpoints": ctx.endpoints()}


def close_front_door(ctx: DrillContext) -> bool:
    return False


def lose_region(ctx: DrillContext) -> dict[str, Any]:
    primary, dr = regions(ctx.target)
    if not ctx.dry_run:
        raise ActivityFailed(f"{NOT_BUILT}: losing {primary} is not simulated on AWS")
    return {"dry_run": True, "region": primary, "dr_region": dr}


def fail_over_to_dr(ctx: DrillContext, timeout_s: float = 120,
                    system: str = "smartpos") -> dict[str, Any]:
    if not ctx.dry_run:
        raise ActivityFailed(NOT_BUILT)
    mod = _aws_dr()
    if mod is None or not hasattr(mod, "plan_region_failover"):
        return {"dry_run": True, "plan": None, "reason": f"{NOT_BUILT} (no aws_dr module)"}
    from mpac_drill.aws import DryRun

    plan = mod.plan_region_failover(ctx.target, system=system,
                                    dry_run=ctx.dry_run_recorder or DryRun())
    if hasattr(mod, "runbook_region_findings"):
        ctx.extras.setdefault("findings", []).extend(
            {"id": f["id"], "section": f["section"],
             "summary": f"runbook step {f['step']} ({f['action']}) runs in "
                        f"{f['runbook_region']}, not the DR region {f['dr_region']}",
             "evidence": f["evidence"]}
            for f in mod.runbook_region_findings(ctx.target)
            if f["section"] == ("1.5" if system == "pgw" else "1.4"))
    return {"dry_run": True, "plan": [dict(s) for s in plan]}


def fail_back(ctx: DrillContext, timeout_s: float = 120) -> dict[str, Any]:
    """Nothing was changed on AWS (the steps above refuse to run): nothing to undo."""
    return {"dry_run": ctx.dry_run, "failed_back": None}


__all__ = ["open_front_door", "close_front_door", "lose_region", "fail_over_to_dr",
           "fail_back", "NOT_BUILT"]

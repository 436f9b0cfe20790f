"""After the harness died mid-drill on the sandbox: the undo plan and its recovery.

Whatever the fault, the undo is the sandbox's health: a point-in-time instance left running
is stopped and removed, a DR sandbox left running (the region drill) is stopped with its
parameters and secrets, and the primary sandbox is brought up (started again after a region
loss, its recovery delays reset) and waited for until every component is healthy. The
front door (a thread of the harness) died with it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from mpac_drill.drill.inflight import NOTHING, PENDING, StepOutcome, UndoStep
from mpac_drill.sandbox import control, snapshots
from mpac_drill.sandbox.procs import postgres_home

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext

HEALTH = "sandbox-health"
DR_STACK = "dr-stack"
PITR = "pitr-instance"
_UP_TIMEOUT_S = 120.0


def undo_plan(ctx: DrillContext) -> list[UndoStep]:
    """At the injection: the sandbox made whole again; the point-in-time instance about to
    be created (``handles.pitr_instance``), if any."""
    sdir = control.state_dir(ctx.target)
    plan = [
        UndoStep(
            id=HEALTH,
            what=f"sandbox {ctx.target.name}",
            how="bring it up (started again if it was lost) and wait until every component "
            "is healthy",
            resources=[str(sdir)],
            state=PENDING,
        )
    ]
    handle = ctx.handles.pitr_instance
    if handle:
        plan.append(pitr_step(str(handle["identifier"]), str(handle["dest"])))
    return plan


def pitr_step(identifier: str, dest: str) -> UndoStep:
    return UndoStep(
        id=PITR,
        what="restored PostgreSQL instance",
        how="stop its postgres process and remove its data folder",
        resources=[identifier],
        state=PENDING,
        data={"dest": dest},
    )


def dr_stack_step(dr_dir: Path) -> UndoStep:
    return UndoStep(
        id=DR_STACK,
        what="DR sandbox",
        how="stop its daemon and processes; remove its parameters, secrets and restored data",
        resources=[str(dr_dir)],
        state=PENDING,
    )


def recover(ctx: DrillContext, plan: list[UndoStep]) -> list[StepOutcome]:
    """Perform the pending steps, newest first; the sandbox's health always last."""
    out: list[StepOutcome] = []
    pending = [s for s in reversed(plan) if s["state"] == PENDING]
    pending.sort(key=lambda s: s["id"] == HEALTH)  # stable: health last
    for step in [s for s in plan if s["state"] != PENDING]:
        out.append(
            _outcome(
                step, step["state"] if step["state"] == NOTHING else "undone by the drill", True
            )
        )
    for step in pending:
        try:
            if step["id"] == PITR:
                out.append(_stop_pitr(step))
            elif step["id"] == DR_STACK:
                out.append(_stop_dr(step))
            elif step["id"] == HEALTH:
                out.append(_health(ctx, step))
            else:
                out.append(_outcome(step, f"unknown undo step {step['id']!r}: not done", False))
        except Exception as exc:  # noqa: BLE001 - the next steps still run
            out.append(_outcome(step, f"NOT done: {' '.join(str(exc).split())}", False))
    return out


def _outcome(step: UndoStep, outcome: str, ok: bool) -> StepOutcome:
    return StepOutcome(
        id=step["id"],
        what=step["what"],
        resource=", ".join(step["resources"]),
        outcome=outcome,
        ok=ok,
    )


def _stop_pitr(step: UndoStep) -> StepOutcome:
    dest = str((step.get("data") or {}).get("dest") or "")
    if not dest:
        return _outcome(step, "no data folder recorded: not done", False)
    pids = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if dest in (p.info["cmdline"] or [])  # postgres -D <dest>
    ]
    running = False
    for pid in pids:
        running = snapshots.stop_instance(pid, None) or running
    shutil.rmtree(dest, ignore_errors=True)
    Path(dest + ".log").unlink(missing_ok=True)
    return _outcome(step, "stopped and removed" if running else "removed (was not running)", True)


def _stop_dr(step: UndoStep) -> StepOutcome:
    dr_dir = Path(step["resources"][0])
    swept = control.stop_dir(dr_dir) if dr_dir.is_dir() else 0
    for path in (dr_dir / "ssm", postgres_home(dr_dir / "rds"), snapshots.bucket_dir(dr_dir)):
        shutil.rmtree(path, ignore_errors=True)
    (dr_dir / "secrets.json").unlink(missing_ok=True)
    return _outcome(step, f"stopped ({swept} process(es)); parameters and secrets removed", True)


def _health(ctx: DrillContext, step: UndoStep) -> StepOutcome:
    control.up(ctx.target, timeout_s=_UP_TIMEOUT_S)
    control.wait_healthy(ctx.target, timeout_s=_UP_TIMEOUT_S)
    return _outcome(step, "up and healthy", True)


__all__ = ["DR_STACK", "HEALTH", "PITR", "dr_stack_step", "pitr_step", "recover", "undo_plan"]

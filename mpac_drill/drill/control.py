"""The ``mpac-drill`` Chaos Toolkit control: no drill runs without its guards.

Every experiment under ``experiments/`` declares it::

    controls:
      - name: mpac-drill
        provider: {type: python, module: mpac_drill.drill.control}

``mpac-drill run`` creates the drill itself (after the production guard, the STS account
check and the drill lock) and registers it before chaoslib starts; the control then finds it
and does nothing more. A plain ``chaos run`` has no such wrapper: the control builds the
drill from the experiment's configuration and runs the same guards first, in
``configure_control``, then the platform's read-only preflight. When one refuses,
``before_experiment_control`` interrupts the experiment before its first activity, so no
provider ever runs (and the providers find no drill:
:func:`mpac_drill.drill.context.current` never creates one).

For production a plain ``chaos run`` needs what ``mpac-drill run`` needs: ``allow_production:
true`` in the target file, and the permission and ticket, from the environment
(``MPAC_DRILL_ALLOW_PRODUCTION=1``, ``MPAC_DRILL_TICKET=CHG-1234``) or the configuration
(``--var mpac_allow_production:bool=true --var mpac_ticket=CHG-1234``). Both are recorded
in the journal (its ``extensions``, name ``mpac-drill``), with the refusal when there was one.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from chaoslib.exceptions import InterruptExecution
from chaoslib.types import Configuration, Experiment, Journal

from mpac_drill.drill import context as drill_context
from mpac_drill.drill import inflight
from mpac_drill.drill.recovery import refuse_if_interrupted
from mpac_drill.errors import DrillError
from mpac_drill.safety import DrillLock

logger = logging.getLogger("mpac_drill")

#: Environment variables that carry a plain ``chaos run``'s production permission.
ALLOW_ENV, TICKET_ENV = "MPAC_DRILL_ALLOW_PRODUCTION", "MPAC_DRILL_TICKET"
_TRUE = ("1", "true", "yes")


class _State:
    """What this control set up for the runs of this process (plain ``chaos run``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owned: list[tuple[drill_context.DrillContext, DrillLock]] = []
        self.refused: str | None = None
        self.record: dict[str, Any] = {}
        self.terminated = False


_STATE = _State()


def permission(configuration: Configuration) -> tuple[bool, str | None]:
    """``(allow_production, ticket)`` of a plain ``chaos run``: configuration, else env."""
    allow = configuration.get("mpac_allow_production")
    if allow is None:
        allow = os.environ.get(ALLOW_ENV, "")
    if isinstance(allow, str):
        allow = allow.strip().lower() in _TRUE
    ticket = configuration.get("mpac_ticket") or os.environ.get(TICKET_ENV) or None
    return allow is True, (str(ticket) if ticket else None)


def configure_control(
    configuration: Configuration | None = None, experiment: Experiment | None = None, **_: Any
) -> None:
    """Find the drill ``mpac-drill run`` registered, or build one behind the guards."""
    from mpac_drill.drill.platforms import platform_module
    from mpac_drill.drill.runner import LOCK_DIR, check_target_for
    from mpac_drill.safety import check_production_guard

    configuration = configuration or {}
    with _STATE.lock:
        _STATE.refused, _STATE.record = None, {}
    existing = drill_context.lookup(configuration)
    if existing is not None:
        _STATE.record = {
            "name": "mpac-drill",
            "started_by": "mpac-drill run",
            "target": existing.target.name,
            "run_dir": str(existing.run_dir),
        }
        return
    allow, ticket = permission(configuration)
    record: dict[str, Any] = {
        "name": "mpac-drill",
        "started_by": "chaos run",
        "allow_production": allow,
        "ticket": ticket,
    }
    try:
        ctx = drill_context.context_from_configuration(configuration)
        record.update(target=ctx.target.name, run_dir=str(ctx.run_dir))
        check_target_for(ctx.scenario.id, ctx.target, users=ctx.users)
        check_production_guard(ctx.target, allow_production=allow, ticket=ticket, dry_run=False)
        checks = platform_module(ctx.target, "preflight").preflight(
            ctx.target, ctx.scenario.id, dry_run=None
        )
        ctx.record.preflight = list(checks)
        refuse_if_interrupted(ctx.target, ctx.run_dir.parent, LOCK_DIR)  # issue 17
        lock = DrillLock(LOCK_DIR, ctx.target.name, ctx.scenario.id, ctx.run_dir)
        lock.acquire()
    except DrillError as exc:
        _refuse(record, str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - whatever stops the guards stops the drill
        _refuse(record, f"the drill's guards could not run: {type(exc).__name__}: {exc}")
        return
    try:
        ctx.run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        lock.release()
        _refuse(record, f"run folder {ctx.run_dir} cannot be made: {exc.strerror}")
        return
    drill_context.register(ctx, configuration)
    with _STATE.lock:
        _STATE.owned.append((ctx, lock))
        _STATE.record = record
    logger.info(
        "mpac-drill control: drill %s on target %s, run folder %s",
        ctx.scenario.id,
        ctx.target.name,
        ctx.run_dir,
    )


def _refuse(record: dict[str, Any], reason: str) -> None:
    record["refused"] = reason
    with _STATE.lock:
        _STATE.refused, _STATE.record = reason, record
    logger.error("mpac-drill: refused: %s", reason)


def before_experiment_control(context: Experiment, **_: Any) -> None:
    """Stop the experiment before its first activity when the guards refused it; else make
    SIGTERM end the method the way chaoslib's own SIGUSR1 does (``SystemExit``: the
    method stops, the rollbacks run). chaoslib's SIGTERM handler raises
    ``InterruptExecution``, which its Python provider wraps into ``ActivityFailed``, so
    the method would go on. chaoslib puts its handlers back when the experiment ends."""
    if _STATE.refused:
        raise InterruptExecution(f"mpac-drill refused this drill: {_STATE.refused}")
    if threading.current_thread() is threading.main_thread():
        _STATE.terminated = False
        signal.signal(signal.SIGTERM, _leave_on_sigterm)


def _leave_on_sigterm(signum: int, frame: Any) -> None:
    """The first SIGTERM ends the method; later ones are ignored so rollbacks finish."""
    if _STATE.terminated:
        return
    _STATE.terminated = True
    logger.warning("SIGTERM: ending the experiment now; the rollbacks run")
    raise SystemExit(20)


def after_experiment_control(context: Experiment, state: Journal, **_: Any) -> None:
    """Record in the journal who started the drill, under which permission, or why not."""
    if _STATE.record and isinstance(state, dict):
        state.setdefault("extensions", []).append(dict(_STATE.record))


def cleanup_control() -> None:
    """After the rollbacks: stop what the drill started, release the lock, forget it."""
    from mpac_drill.drill.runner import cleanup_drill

    with _STATE.lock:
        owned, _STATE.owned = _STATE.owned, []
        # a signal escaped chaoslib: the runner still plays the rollbacks, under the lock
        _STATE.owned = [(c, lk) for c, lk in owned if c.signalled]
    for ctx, lock in owned:
        if ctx.signalled:
            continue  # released by release_after_rollbacks
        try:
            cleanup_drill(ctx)
            inflight.remove(ctx.run_dir)  # the rollbacks ran; the journal is the record
        finally:
            lock.release()
            drill_context.forget(ctx)


def release_after_rollbacks(ctx: drill_context.DrillContext) -> None:
    """The drill lock of a drill whose rollbacks the runner played (a signal escaped
    chaoslib): released only now, so no drill starts on the target while they run."""
    with _STATE.lock:
        mine = [(c, lk) for c, lk in _STATE.owned if c is ctx]
        _STATE.owned = [(c, lk) for c, lk in _STATE.owned if c is not ctx]
    for _, lock in mine:
        lock.release()


__all__ = [
    "ALLOW_ENV",
    "TICKET_ENV",
    "after_experiment_control",
    "before_experiment_control",
    "cleanup_control",
    "configure_control",
    "permission",
    "release_after_rollbacks",
]

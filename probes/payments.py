"""Chaos Toolkit entry points of the payments measurement; what they run is
``mpac_drill/measure/payments.py`` (see there for how the figure is defined)."""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from mpac_drill.measure.payments import reconcile_qr_payments, start_qr_payments


def start_payments(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Start posting QR payments to mpac-smartpos (svc-smarttab, through the front door when
    one is open), which forwards them to its PGW. Stopped by ``reconcile_payments`` or
    ``stop_payments``.

    ::

        - type: action
          name: start-payments
          provider: {type: python, module: probes.payments, func: start_payments}
    """
    from mpac_drill.drill.context import current
    from mpac_drill.drill.platforms import platform_for

    ctx = current(configuration)
    platform = platform_for(ctx)
    return start_qr_payments(
        ctx, platform.service_urls().get("svc-smarttab"), platform.database_dsn("pgw") is not None
    )


def stop_payments(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Stop the payment client (idempotent; a rollback).

    ::

        - type: action
          name: stop-payments
          provider: {type: python, module: probes.payments, func: stop_payments}
    """
    from mpac_drill.drill.context import current

    payments = current(configuration).handles.payments
    if payments is None:
        return {"stopped": False}
    payments.stop()
    return {"stopped": True}


def reconcile_payments(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Stop the payments, look each acknowledged one up in the restored pgw database, write
    ``payments.csv`` and ``reconciliation.csv`` (acknowledged but missing), and set
    ``acked_writes``, ``lost_writes`` and ``rpo_s`` from the payments.

    ::

        - type: probe
          name: reconcile-payments
          provider: {type: python, module: probes.payments, func: reconcile_payments}
    """
    from mpac_drill.drill.context import current
    from mpac_drill.drill.platforms import platform_for

    ctx = current(configuration)
    return reconcile_qr_payments(ctx, platform_for(ctx).database_dsn("pgw"))


__all__ = ["start_payments", "stop_payments", "reconcile_payments"]

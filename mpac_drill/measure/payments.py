"""QR payments during the PGW region drill (runbook §1.5) and the reconciliation list.

A payment client posts one QR payment (``POST /payments/qr``, a unique ``payment_id``)
every ``drill.canary_interval_s`` to mpac-smartpos (svc-smarttab, through the users' front
door), which forwards it to the PGW its ``PGW_BASE_URL`` names, as a terminal's payment
goes; it keeps a ledger: sent, acknowledged (HTTP 200/201). So payments are acknowledged
again after the failover only when runbook 1.5 step 2 moved ``PGW_BASE_URL``.
After the failover the ledger is checked against the restored DR database: every
acknowledged payment missing there is the runbook's "QR transactions during outage window
may need manual reconciliation", made a list (``reconciliation.csv``, runbook finding F9).
``payments.csv`` keeps the ledger.
"""

from __future__ import annotations

import csv
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from mpac_drill.measure.canary import Write, compute_rpo
from mpac_drill.measure.observer import paced, request_json
from mpac_drill.timefmt import iso

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext

PAYMENT_COLUMNS = (
    "payment_id",
    "client",
    "amount",
    "sent_at",
    "t_rel_s",
    "ack_rel_s",
    "acked",
    "status",
    "present",
)
RECONCILIATION_COLUMNS = ("payment_id", "client", "amount", "sent_at", "acked_at_rel_s")


@dataclass
class Payment(Write):
    payment_id: str = ""
    client: str = ""
    amount: int = 0
    status: int = 0


def _iso(dt: datetime) -> str:
    return iso(dt)


class QrPayments:
    """Posts QR payments to ``base_url`` every ``interval_s`` until stopped."""

    def __init__(
        self, *, base_url: str, run_id: str, interval_s: float = 0.05, max_duration_s: float = 3600
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.run_id = run_id
        self.interval_s = interval_s
        self.max_duration_s = max_duration_s
        self.ledger: list[Payment] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="qr-payments")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _post(self, p: Payment) -> int:
        status, _, _ = request_json(
            f"{self.base_url}/payments/qr",
            "POST",
            {"payment_id": p.payment_id, "client": p.client, "amount": p.amount},
            timeout_s=2.0,
        )
        return status

    def _loop(self) -> None:
        for seq in paced(self._stop, self.interval_s, self.max_duration_s):
            p = Payment(
                seq=seq,
                sent_mono=time.monotonic(),
                sent_utc=datetime.now(UTC),
                payment_id=f"{self.run_id}-qr-{seq}",
                client=f"drill-{seq % 7}",
                amount=random.randint(100, 20_000),
            )
            p.status = self._post(p)
            if p.status in (200, 201):
                p.ack_mono = time.monotonic()
            self.ledger.append(p)

    def write_csv(self, path: Path, rel_to: float | None) -> None:
        def rel(m: float | None) -> str:
            return "" if m is None or rel_to is None else f"{m - rel_to:.6f}"

        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(PAYMENT_COLUMNS)
            for p in self.ledger:
                present = "" if not p.acked or p.present is None else int(p.present)
                w.writerow(
                    [
                        p.payment_id,
                        p.client,
                        p.amount,
                        _iso(p.sent_utc),
                        rel(p.sent_mono),
                        rel(p.ack_mono),
                        int(p.acked),
                        p.status,
                        present,
                    ]
                )


def start_qr_payments(
    drill: DrillContext, smarttab_url: str | None, reconcilable: bool
) -> dict[str, Any]:
    """Start posting QR payments to mpac-smartpos at ``smarttab_url`` (not where they could
    not be reconciled against the pgw database afterwards: noted)."""
    ctx = drill
    if ctx.dry_run:
        return {"dry_run": True}
    if not reconcilable or not smarttab_url:
        ctx.note("QR payments not posted: no reconciliation on this target")
        return {"started": False}
    base = smarttab_url
    payments = QrPayments(
        base_url=base,
        run_id=ctx.run_id,
        interval_s=float(ctx.setting("drill.canary_interval_s")),
        max_duration_s=ctx.recovery_bound_s() + 600,
    )
    ctx.handles.payments = payments
    payments.start()
    return {"started": True, "url": f"{base}/payments/qr"}


def reconcile_qr_payments(drill: DrillContext, pgw_dsn: str | None) -> dict[str, Any]:
    """Stop the payments, look each acknowledged one up in the (restored) pgw database,
    write ``payments.csv`` and ``reconciliation.csv`` (acknowledged but missing), and set
    ``acked_writes``, ``lost_writes`` and ``rpo_s`` from the payments."""
    ctx = drill
    payments: QrPayments | None = ctx.handles.payments
    if ctx.dry_run or payments is None or pgw_dsn is None:
        return {"reconciled": False}
    ctx.phase("reconciling QR payments")
    payments.stop()
    with psycopg.connect(pgw_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT payment_id FROM qr_payments WHERE payment_id LIKE %s", (f"{ctx.run_id}-qr-%",)
        ).fetchall()
    present = {r[0] for r in rows}
    for p in payments.ledger:
        p.present = p.payment_id in present
    rpo = compute_rpo(payments.ledger)
    missing = [p for p in payments.ledger if p.acked and not p.present]
    payments.write_csv(ctx.run_dir / "payments.csv", ctx.injected_mono)
    with (ctx.run_dir / "reconciliation.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(RECONCILIATION_COLUMNS)
        for p in missing:
            rel = (
                ""
                if ctx.injected_mono is None or p.ack_mono is None
                else (f"{p.ack_mono - ctx.injected_mono:.4f}")
            )
            w.writerow([p.payment_id, p.client, p.amount, _iso(p.sent_utc), rel])
    ctx.measurements.update(
        acked_writes=rpo["acked_writes"], lost_writes=rpo["lost_writes"], rpo_s=rpo["rpo_s"]
    )
    ctx.record.reconciliation = {
        "payments_acked": rpo["acked_writes"],
        "payments_missing": len(missing),
        "amount_missing": sum(p.amount for p in missing),
        "file": "reconciliation.csv",
    }
    return dict(ctx.record.reconciliation or {}) | {"rpo_s": rpo["rpo_s"]}


__all__ = [
    "reconcile_qr_payments",
    "start_qr_payments",
    "PAYMENT_COLUMNS",
    "Payment",
    "QrPayments",
    "RECONCILIATION_COLUMNS",
]

"""The tables of the miniature MPAC databases ``smartpos`` and ``pgw``.

``apply_schema`` is idempotent (``CREATE ... IF NOT EXISTS``) and serialised by an advisory
lock, so it can run on every sandbox start. ``orders_unique`` switches the unique constraint
on ``orders.idempotency_key``: without it only the Redis cache dedupes a retried order,
which is how a drill demonstrates runbook finding F8 (duplicates while Redis is down).
"""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors

from mpac_drill.errors import SandboxError

#: Name of the unique constraint ``apply_schema`` adds or drops.
ORDERS_UNIQUE_CONSTRAINT = "orders_idempotency_key_key"
_LOCK_ID = 0x6D706163  # "mpac": serialises concurrent apply_schema calls

CANARY_SQL = """
CREATE TABLE IF NOT EXISTS canary (
    run_id text NOT NULL,
    seq bigint NOT NULL,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, seq)
);
"""

_HEARTBEAT_SQL = """
CREATE TABLE IF NOT EXISTS heartbeat (id int PRIMARY KEY, at timestamptz NOT NULL);
INSERT INTO heartbeat (id, at) VALUES (1, clock_timestamp()) ON CONFLICT (id) DO NOTHING;
"""

SMARTPOS_SQL = (
    _HEARTBEAT_SQL
    + """
CREATE TABLE IF NOT EXISTS orders (
    id bigserial PRIMARY KEY,
    idempotency_key text NOT NULL,
    amount int NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_idempotency_key_idx ON orders (idempotency_key);
"""
    + CANARY_SQL
)

PGW_SQL = (
    _HEARTBEAT_SQL
    + """
CREATE TABLE IF NOT EXISTS qr_payments (
    id bigserial PRIMARY KEY,
    payment_id text NOT NULL UNIQUE,
    amount int NOT NULL,
    client text NOT NULL,
    rate_limit_checked bool NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""
    + CANARY_SQL
)


def apply_schema(smartpos_conninfo: str, pgw_conninfo: str, *, orders_unique: bool = True) -> None:
    """Create the tables of both databases and set the orders uniqueness.

    :param smartpos_conninfo: libpq conninfo of the ``smartpos`` database (owner ``mpac``).
    :param pgw_conninfo: libpq conninfo of the ``pgw`` database.
    :param orders_unique: keep a unique constraint on ``orders.idempotency_key``.
    :raises SandboxError: a database cannot be reached, or uniqueness cannot be switched on
        because ``orders`` already holds duplicate keys.
    """
    _apply(smartpos_conninfo, "smartpos", SMARTPOS_SQL, orders_unique)
    _apply(pgw_conninfo, "pgw", PGW_SQL, None)


def _apply(conninfo: str, name: str, sql: str, orders_unique: bool | None) -> None:
    try:
        with psycopg.connect(conninfo) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            conn.execute(sql)
            if orders_unique is not None:
                _set_orders_unique(conn, orders_unique)
    except pg_errors.UniqueViolation:
        raise SandboxError(
            f"{name}: orders holds duplicate idempotency keys; cannot add the unique "
            "constraint (drop the duplicates or recreate the database)"
        ) from None
    except psycopg.Error as exc:
        # libpq's connection messages name host and port, never the password; other
        # messages (a malformed conninfo) might echo it, so only the class name is kept.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        detail = f": {first}" if isinstance(exc, psycopg.OperationalError) and first else ""
        raise SandboxError(f"{name}: schema not applied ({type(exc).__name__}{detail})") from None


def _set_orders_unique(conn: psycopg.Connection, unique: bool) -> None:
    present = (
        conn.execute(
            "SELECT 1 FROM pg_constraint WHERE conname = %s AND conrelid = 'orders'::regclass",
            (ORDERS_UNIQUE_CONSTRAINT,),
        ).fetchone()
        is not None
    )
    if unique and not present:
        conn.execute(
            f"ALTER TABLE orders ADD CONSTRAINT {ORDERS_UNIQUE_CONSTRAINT} UNIQUE (idempotency_key)"
        )
    elif not unique and present:
        conn.execute(f"ALTER TABLE orders DROP CONSTRAINT {ORDERS_UNIQUE_CONSTRAINT}")


__all__ = ["CANARY_SQL", "SMARTPOS_SQL", "PGW_SQL", "ORDERS_UNIQUE_CONSTRAINT", "apply_schema"]

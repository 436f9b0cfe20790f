"""The RPO canary's database on an AWS target (runbook §1.2): its DSN from SSM, its one table.

An AWS target gives the harness no database endpoint of its own; ``database.dsn_ssm_parameter``
names the SSM SecureString the services read their DSN from (``DATABASE_URL``).
:func:`canary_database` reads it (GetParameter, WithDecryption) through
:func:`mpac_drill.aws.client` in the target's primary region (``aws.region``), then connects
once, before any fault, and creates the ``canary`` table when it is missing: the sandbox's own
DDL (:mod:`mpac_drill.sandbox.schema`), and nothing else. The database user therefore needs
CREATE on its schema, unless the DBA created the table ahead (then INSERT and SELECT on it
are enough; DELETE lets the run remove its rows afterwards, ``Canary.purge``). A dry run
records the GetParameter and connects nowhere.

The DSN holds the database password. It is handed to the caller and kept in memory only:
never logged, never in a message (errors name the parameter and the region; of a database
error only libpq's first line is kept, with the password scrubbed), never in a file.

::

    database:
      dsn_ssm_parameter: /mpac-smartpos/staging/DATABASE_URL
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg
from chaoslib.exceptions import ActivityFailed

from mpac_drill.aws import DryRun, client
from mpac_drill.config import Target
from mpac_drill.measure.canary import describe_error

# The canary table has one definition, the sandbox schema's (it is applied there with the
# rest of the schema); here it is applied alone.
from mpac_drill.sandbox.schema import CANARY_SQL

logger = logging.getLogger("mpac_drill")

#: The target key naming the SecureString that holds the canary's DSN.
DSN_PARAMETER_KEY = "database.dsn_ssm_parameter"
_CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class CanaryDatabase:
    """Where the canary writes: the DSN (a secret: left out of ``repr``) and its source."""

    parameter: str
    region: str
    table_created: bool
    dsn: str = field(repr=False)

    @property
    def source(self) -> str:
        """``SSM parameter /x (ap-northeast-1)``: the DSN's name in messages, never its value."""
        return f"SSM parameter {self.parameter} ({self.region})"


def dsn_parameter(target: Target) -> str | None:
    """The name in ``database.dsn_ssm_parameter``, or ``None`` when unset or null."""
    name = target.get(DSN_PARAMETER_KEY)
    return str(name) if name else None


def canary_database(target: Target, *, dry_run: DryRun | None = None) -> CanaryDatabase | None:
    """Read the canary's DSN from SSM and make sure the database takes canary rows.

    Breaks nothing; the only change it may make is creating the ``canary`` table.

    :param target: an ``aws`` target; reads ``database.dsn_ssm_parameter`` and ``aws.*``.
    :param dry_run: record the GetParameter, connect nowhere, return ``None``.
    :returns: ``None`` when the key is unset (the canary is not run) or in a dry run.
    :raises AwsCallFailed: the parameter cannot be read (ParameterNotFound, AccessDenied, a
        KMS error): one line naming the parameter and the region.
    :raises ActivityFailed: the parameter is empty, the database does not connect, the table
        cannot be created, or the user may not insert into it.
    """
    name = dsn_parameter(target)
    if name is None:
        return None
    ssm = client("ssm", target, dry_run=dry_run)
    region = str(ssm.meta.region_name)
    logger.info(
        "ssm GetParameter %s WithDecryption (%s)%s",
        name,
        region,
        " [dry-run]" if dry_run is not None else "",
    )
    found = ssm.get_parameter(Name=name, WithDecryption=True)
    if dry_run is not None:
        return None
    dsn = str(found.get("Parameter", {}).get("Value") or "").strip()
    source = f"SSM parameter {name} ({region})"
    if not dsn:
        raise ActivityFailed(f"{source} is empty: no DSN for the canary")
    created = prepare_canary_table(dsn, source=source)
    return CanaryDatabase(parameter=name, region=region, table_created=created, dsn=dsn)


def prepare_canary_table(
    dsn: str, *, source: str, connect_timeout_s: int = _CONNECT_TIMEOUT_S
) -> bool:
    """Connect once; create the ``canary`` table if it does not exist; check the user may
    insert and read canary rows. Returns whether the table was created.

    The existence check comes first: ``CREATE TABLE IF NOT EXISTS`` needs CREATE on the
    schema even when the table is there, and a table created ahead needs no such grant.

    :param dsn: libpq DSN (URI or keywords); never part of a message.
    :param source: where the DSN came from, for messages: ``SSM parameter /x (region)``.
    :raises ActivityFailed: one line naming ``source``, never the DSN.
    """
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=connect_timeout_s) as conn:
            row = conn.execute("SELECT to_regclass('canary') IS NOT NULL").fetchone()
            created = not (row and row[0])
            if created:
                conn.execute(CANARY_SQL)
                logger.info("canary table created in the database of %s", source)
            row = conn.execute(
                "SELECT has_table_privilege('canary', 'INSERT') "
                "AND has_table_privilege('canary', 'SELECT')"
            ).fetchone()
    except psycopg.Error as exc:
        raise ActivityFailed(
            f"the canary's database ({source}) cannot be used: {describe_error(exc, dsn)}"
        ) from None
    if not (row and row[0]):
        raise ActivityFailed(
            f"the canary's database ({source}): the user may not INSERT into "
            "and SELECT from table canary"
        )
    return created


__all__ = [
    "DSN_PARAMETER_KEY",
    "CanaryDatabase",
    "canary_database",
    "describe_error",
    "dsn_parameter",
    "prepare_canary_table",
]

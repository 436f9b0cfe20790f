"""The canary's DSN gets client-side bounds it does not set itself (hypothesis for the parser)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from mpac_drill.measure.canary import CLIENT_DEFAULTS, bounded_dsn


def test_bounded_dsn_adds_the_defaults_to_a_url_and_keeps_its_credentials():
    got = conninfo_to_dict(bounded_dsn("postgresql://app:s3cr%40t@db.example:6543/smartpos"))
    assert (got["user"], got["password"], got["host"], got["port"], got["dbname"]) == (
        "app",
        "s3cr@t",
        "db.example",
        "6543",
        "smartpos",
    )
    assert {k: int(got[k]) for k in CLIENT_DEFAULTS} == CLIENT_DEFAULTS


@given(
    timeout=st.integers(min_value=1, max_value=600),
    idle=st.integers(min_value=1, max_value=7200),
    multi=st.booleans(),
)
def test_bounded_dsn_never_overrides_what_the_dsn_sets(timeout, idle, multi):
    hosts = "host=127.0.0.1,127.0.0.1 port=1,2" if multi else "host=db port=5432"
    got = conninfo_to_dict(
        bounded_dsn(f"{hosts} dbname=x connect_timeout={timeout} keepalives_idle={idle}")
    )
    assert (got["connect_timeout"], got["keepalives_idle"]) == (str(timeout), str(idle))
    assert got["host"] == hosts.split()[0].removeprefix("host=")
    assert got["keepalives_count"] == str(CLIENT_DEFAULTS["keepalives_count"])

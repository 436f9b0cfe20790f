"""``mpac-drill sandbox env``: one documented step from a shell to the sandbox's database."""

from __future__ import annotations

import shlex

import psycopg
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.sandbox


def _exports(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        assert line.startswith("export "), line
        key, _, value = line[len("export ") :].partition("=")
        out[key] = shlex.split(value)[0] if value else ""
    return out


def test_sandbox_env_with_password_connects_and_without_it_prints_none(sandbox):
    plain = run_cli("sandbox", "env", timeout=60)
    assert plain.code == 0, plain.err
    assert "PGPASSWORD" not in plain.out and "PGHOST" in plain.out
    r = run_cli("sandbox", "env", "--password", timeout=60)
    assert r.code == 0, r.err
    env = _exports(r.out)
    assert {"PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "REDIS_SENTINELS"} <= set(env)
    conninfo = " ".join(
        f"{key}={env[var]}"
        for key, var in (("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"),
                         ("dbname", "PGDATABASE"), ("password", "PGPASSWORD"))
    )  # fmt: skip
    with psycopg.connect(conninfo + " target_session_attrs=read-write", connect_timeout=5) as c:
        assert c.execute("select 1").fetchone() == (1,)
    status = run_cli("sandbox", "status", "--json", timeout=60)
    assert env["PGPASSWORD"] not in status.out  # never in status

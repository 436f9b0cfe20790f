"""The RPO canary on an AWS target: rds-failover on moto, the DSN read from an SSM SecureString.

The control plane is moto on loopback; the database behind the SecureString is a real
PostgreSQL started here (``tests/sandbox/conftest.py``'s ``PgServer``), and the health
endpoints the observer samples are one tiny HTTP server, so nothing leaves this machine. The
fault is ``FailoverDBCluster`` on a two-instance cluster, where moto moves the writer: that
shows whether the fault was injected or refused.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from chaoslib.exceptions import ActivityFailed

from mpac_drill.config import Target, load_target
from mpac_drill.drill.runner import run_drill
from mpac_drill.errors import ExitCode, UsageError
from mpac_drill.platform.aws.canary import CANARY_SQL, prepare_canary_table
from tests.sandbox.conftest import PG_ADMIN_PASSWORD, PgServer, free_port

pytestmark = pytest.mark.aws
REGION = "ap-northeast-1"  # staging's aws.region
ACCOUNT = "123456789012"  # moto's account


@dataclass(frozen=True)
class CanaryDb:
    """A real PostgreSQL whose ``smartpos`` database the canary user owns."""

    server: PgServer
    user: str
    password: str

    def dsn(self, port: int | None = None) -> str:
        return (
            f"postgresql://{self.user}:{self.password}@127.0.0.1:"
            f"{port or self.server.port}/smartpos?connect_timeout=2"
        )

    def rows(self, run_id: str) -> int:
        with psycopg.connect(
            host=str(self.server.sockets),
            port=self.server.port,
            user="postgres",
            password=PG_ADMIN_PASSWORD,
            dbname="smartpos",
        ) as conn:
            row = conn.execute(
                "SELECT count(*) FROM canary WHERE run_id = %s", (run_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    def tables(self) -> list[str]:
        with psycopg.connect(
            host=str(self.server.sockets),
            port=self.server.port,
            user="postgres",
            password=PG_ADMIN_PASSWORD,
            dbname="smartpos",
        ) as conn:
            rows = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            ).fetchall()
        return [str(r[0]) for r in rows]


@pytest.fixture(scope="module")
def canary_db() -> Iterator[CanaryDb]:
    """PostgreSQL on a free loopback port; user ``canary_app`` (a fresh password) owns
    ``smartpos``, which has no ``canary`` table yet: the harness creates it."""
    # Not under pytest's tmp dir: as root, PostgreSQL runs as uid 65534, which must reach it.
    root = Path(tempfile.mkdtemp(prefix="mpac-canary-aws-test-"))
    root.chmod(0o755)
    server = PgServer(root / "pg")
    server.root.mkdir(mode=0o755)
    server.init()
    server.start()
    db = CanaryDb(server=server, user="canary_app", password=f"cpw-{uuid.uuid4().hex}")
    try:
        server.admin(f"CREATE ROLE {db.user} LOGIN PASSWORD '{db.password}'")
        server.admin(f"CREATE DATABASE smartpos OWNER {db.user}")
        yield db
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def health_url() -> Iterator[str]:
    """An HTTP server on loopback answering 200 to every GET: the services' health checks."""

    class Healthy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def rds_target(
    moto: Callable[[str], Any], make_target: Callable[..., Target], health_url: str
) -> Callable[..., Target]:
    """``rds_target(param=..., dsn=...)``: staging on moto with a fresh two-instance cluster
    as ``rds.smartpos`` (writer ``<id>-a``), ``param`` as ``database.dsn_ssm_parameter``
    (holding ``dsn`` when given) and fast drill settings."""

    def make(param: str | None, dsn: str | None = None) -> Target:
        rds, ident = moto("rds"), f"mpac-smartpos-{uuid.uuid4().hex[:8]}"
        rds.create_db_cluster(
            DBClusterIdentifier=ident,
            Engine="aurora-postgresql",
            MasterUsername="mpac",
            MasterUserPassword="not-a-secret-1",
        )
        for suffix, zone in (("a", f"{REGION}a"), ("c", f"{REGION}c")):
            rds.create_db_instance(
                DBInstanceIdentifier=f"{ident}-{suffix}",
                DBClusterIdentifier=ident,
                Engine="aurora-postgresql",
                DBInstanceClass="db.r6g.large",
                AvailabilityZone=zone,
            )
        if param and dsn is not None:
            moto("ssm").put_parameter(Name=param, Value=dsn, Type="SecureString")
        return make_target(
            **{
                "account_id": ACCOUNT,
                "rds.smartpos.identifier": ident,
                "rds.smartpos.type": "cluster",
                "database.dsn_ssm_parameter": param,
                **{
                    f"endpoints.{name}": f"{health_url}/{name}/health"
                    for name in ("svc-portal", "svc-smarttab", "pgw")
                },
                "drill.warmup_s": 1,
                "drill.cooldown_s": 0.5,
                "drill.observer_interval_s": 0.1,
                "drill.canary_interval_s": 0.05,
            }
        )

    return make


def _writer(moto: Callable[[str], Any], target: Target) -> str:
    (cluster,) = moto("rds").describe_db_clusters(
        DBClusterIdentifier=target.get("rds.smartpos.identifier")
    )["DBClusters"]
    return next(
        m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"] if m["IsClusterWriter"]
    )


def _param() -> str:
    return f"/mpac-smartpos/test-{uuid.uuid4().hex[:8]}/DATABASE_URL"


def _files_holding(folder: Path, *secrets: str) -> list[str]:
    return [
        f"{path} holds {secret[:6]}..."
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        for secret in secrets
        if secret.encode() in path.read_bytes()
    ]


# ---------------------------------------------------------------- the drill


@pytest.mark.sandbox  # starts a real PostgreSQL
def test_rds_failover_on_aws_measures_rpo_from_the_canary(
    canary_db: CanaryDb,
    rds_target: Callable[..., Target],
    moto: Callable[[str], Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    param = _param()
    target = rds_target(param, canary_db.dsn())
    ident = target.get("rds.smartpos.identifier")
    for name in ("mpac_drill", "psycopg"):  # every line of ours (botocore's DEBUG is its own)
        caplog.set_level(logging.DEBUG, logger=name)

    outcome = run_drill("rds-failover", target, runs_dir=tmp_path / "runs", users=0)

    r = outcome.result
    assert r["status"] == "completed", r.get("reason")
    assert r["fault"]["action"] == "rds:failover-db-cluster"
    assert _writer(moto, target) == f"{ident}-c"  # the fault was injected
    m = r["measurements"]
    assert m["rpo_s"] == 0 and m["lost_writes"] == 0
    assert m["acked_writes"] > 0
    # the rows were read back, then deleted: the real database keeps nothing of the drill
    assert canary_db.rows(outcome.run_dir.name) == 0
    assert (
        f"canary: {m['acked_writes']} row(s) of this run deleted from its database "
        "(the ledger is canary.csv)" in r["notes"]
    )
    rpo = next(v for v in r["verdicts"] if v["metric"] == "rpo_s")
    assert rpo["passed"] is True and rpo["value"] == 0
    # moto moved the writer (the effect, verified) but the local health server never
    # failed: RTO inconclusive, so the run is not a pass (issue 11 row 4)
    assert r["fault"]["effect"]["verified"] and "moved" in r["fault"]["effect"]["evidence"]
    rto = next(v for v in r["verdicts"] if v["metric"] == "rto_s")
    assert rto["outcome"] == "inconclusive"
    assert outcome.exit_code == ExitCode.TARGET_MISSED
    assert (outcome.run_dir / "canary.csv").is_file()
    assert f"canary: DSN from SSM parameter {param} ({REGION}); table canary created" in r["notes"]
    assert canary_db.tables() == ["canary"]  # that table, and only that one
    # the DSN is a secret: not in any file of the run folder, not in any log line
    assert _files_holding(outcome.run_dir, canary_db.password, canary_db.dsn()) == []
    assert f"ssm GetParameter {param} WithDecryption ({REGION})" in caplog.text
    assert canary_db.password not in caplog.text


def test_missing_parameter_fails_clearly_and_injects_no_fault(
    rds_target: Callable[..., Target],
    moto: Callable[[str], Any],
    tmp_path: Path,
) -> None:
    param = _param()  # never created
    target = rds_target(param)
    ident = target.get("rds.smartpos.identifier")

    # the preflight looks the parameter up (read-only) before any load, canary or fault
    with pytest.raises(UsageError, match=f"SSM parameter {param} .*does not exist") as err:
        run_drill("rds-failover", target, runs_dir=tmp_path / "runs", users=0)
    assert "\n" not in str(err.value)
    assert _writer(moto, target) == f"{ident}-a"  # FailoverDBCluster was never called
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


@pytest.mark.sandbox  # starts a real PostgreSQL
def test_dsn_that_does_not_connect_fails_before_the_fault_without_its_password(
    canary_db: CanaryDb,
    rds_target: Callable[..., Target],
    moto: Callable[[str], Any],
    tmp_path: Path,
) -> None:
    param = _param()
    dead = canary_db.dsn(port=free_port())  # nothing listens there
    target = rds_target(param, dead)
    ident = target.get("rds.smartpos.identifier")

    outcome = run_drill("rds-failover", target, runs_dir=tmp_path / "runs", users=0)

    r = outcome.result
    assert r["status"] == "failed" and outcome.exit_code == ExitCode.HARNESS
    assert (
        f"the canary's database (SSM parameter {param} ({REGION})) cannot be used: OperationalError"
    ) in r["reason"]
    assert _writer(moto, target) == f"{ident}-a"
    journal = json.loads((outcome.run_dir / "journal.json").read_text())
    inject = next(x for x in journal["run"] if x["activity"]["name"] == "inject-fault")
    assert inject["status"] == "failed"
    assert "fault not injected: canary not started" in inject["exception"][-1]
    assert _files_holding(outcome.run_dir, canary_db.password, dead) == []


def test_no_dsn_parameter_keeps_rpo_not_measured(
    rds_target: Callable[..., Target],
    moto: Callable[[str], Any],
    tmp_path: Path,
) -> None:
    target = rds_target(None)
    ident = target.get("rds.smartpos.identifier")

    outcome = run_drill("rds-failover", target, runs_dir=tmp_path / "runs", users=0)

    r = outcome.result
    assert r["status"] == "completed", r.get("reason")
    assert _writer(moto, target) == f"{ident}-c"
    assert r["measurements"]["rpo_s"] is None and r["measurements"]["acked_writes"] is None
    rpo = next(v for v in r["verdicts"] if v["metric"] == "rpo_s")
    assert rpo["passed"] is False  # not measured is missed, never passed
    assert outcome.exit_code == ExitCode.TARGET_MISSED
    assert any(
        "database.dsn_ssm_parameter" in note and "RPO not measured" in note for note in r["notes"]
    )


@pytest.mark.usefixtures("no_credentials")
def test_dry_run_plans_the_get_parameter_and_connects_nowhere(
    tmp_path: Path,
    loopback_only: list[tuple[str, int]],
) -> None:
    outcome = run_drill("rds-failover", load_target("staging"), runs_dir=tmp_path, dry_run=True)

    assert loopback_only == []  # not one connection: not AWS, not the database
    r = outcome.result
    assert r["status"] == "completed" and r["dry_run"]
    calls = r["planned_calls"]
    # the preflight's reads first (the database and the parameter looked up), then the plan
    assert [c["operation"] for c in calls[:2]] == ["DescribeDBInstances", "DescribeParameters"]
    calls = calls[2:]
    assert calls[0] == {
        "service": "ssm",
        "operation": "GetParameter",
        "region": REGION,
        "params": {"Name": "/mpac-smartpos/staging/DATABASE_URL", "WithDecryption": True},
    }
    # the detection chain's planned read of the runbook's alarms, then the fault
    assert [c["operation"] for c in calls[1:]] == [
        "DescribeAlarms",
        "DescribeDBInstances",
        "RebootDBInstance",
        "DescribeDBInstances",
        "DescribeDBInstances",
    ]


# ---------------------------------------------------------------- the table


@pytest.mark.sandbox  # starts a real PostgreSQL
def test_table_created_ahead_needs_no_create_grant(canary_db: CanaryDb) -> None:
    server, user, password = canary_db.server, "canary_ro", f"rpw-{uuid.uuid4().hex}"
    server.admin(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
    server.admin("CREATE DATABASE ahead OWNER postgres")
    dsn = f"host=127.0.0.1 port={server.port} dbname=ahead user={user} password={password}"
    source = "SSM parameter /x (ap-northeast-1)"
    with psycopg.connect(
        host=str(server.sockets),
        port=server.port,
        user="postgres",
        password=PG_ADMIN_PASSWORD,
        dbname="ahead",
        autocommit=True,
    ) as dba:
        dba.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        with pytest.raises(ActivityFailed, match="permission denied for schema public") as caught:
            prepare_canary_table(dsn, source=source)
        assert password not in str(caught.value)
        dba.execute(CANARY_SQL)  # the DBA creates the table ahead ...
        with pytest.raises(ActivityFailed, match="may not INSERT into and SELECT from"):
            prepare_canary_table(dsn, source=source)
        dba.execute(f"GRANT INSERT, SELECT ON canary TO {user}")  # ... and grants it

        assert prepare_canary_table(dsn, source=source) is False  # nothing created


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql+asyncpg://app:pw-Secret-42@127.0.0.1:5432/smartpos",  # libpq echoes it
        "host=127.0.0.1 port=9 user=app password=pw-Secret-42 connect_timeout=1",  # refused
    ],
)
def test_unusable_dsn_error_names_the_source_never_the_password(dsn: str) -> None:
    with pytest.raises(ActivityFailed) as caught:
        prepare_canary_table(
            dsn, source="SSM parameter /mpac/DATABASE_URL (ap-northeast-1)", connect_timeout_s=1
        )

    message = str(caught.value)
    assert message.startswith(
        "the canary's database (SSM parameter /mpac/DATABASE_URL (ap-northeast-1)) cannot be used: "
    )
    assert "pw-Secret-42" not in message and "\n" not in message


@pytest.mark.sandbox  # starts a real PostgreSQL
def test_purge_deletes_this_runs_rows_only(canary_db: CanaryDb) -> None:
    from mpac_drill.measure.canary import Canary

    prepare_canary_table(canary_db.dsn(), source="test")
    mine, other = f"run-{uuid.uuid4().hex}", f"run-{uuid.uuid4().hex}"
    with psycopg.connect(canary_db.dsn(), autocommit=True) as conn:
        for run_id, n in ((mine, 3), (other, 2)):
            for seq in range(1, n + 1):
                conn.execute("INSERT INTO canary (run_id, seq) VALUES (%s, %s)", (run_id, seq))

    assert Canary(dsn=canary_db.dsn(), run_id=mine).purge() == 3
    assert canary_db.rows(mine) == 0 and canary_db.rows(other) == 2


def test_purge_failure_is_one_line_without_the_password() -> None:
    from mpac_drill.measure.canary import Canary

    canary = Canary(
        dsn=f"postgresql://app:pw-Secret-42@127.0.0.1:{free_port()}/smartpos?connect_timeout=1",
        run_id="run-x",
    )
    with pytest.raises(RuntimeError) as caught:
        canary.purge()
    assert "OperationalError" in str(caught.value)
    assert "pw-Secret-42" not in str(caught.value) and "\n" not in str(caught.value)

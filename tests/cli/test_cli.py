"""The command line as a user meets it: help, bad input, exit codes, dry runs."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli

COMMANDS = [
    ("sandbox",),
    ("sandbox", "up"),
    ("sandbox", "status"),
    ("sandbox", "down"),
    ("sandbox", "snapshots"),
    ("scenarios",),
    ("run",),
    ("quarter",),
    ("report",),
    ("gate",),
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(cmd):
    r = run_cli(*cmd, "--help", timeout=60)
    assert r.code == 0, r.err
    assert "mpac-drill" in r.out and ("Example" in r.out or "example" in r.out), r.out


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("scenarios", "--target", "nope"), "unknown target 'nope'"),
        (("scenarios", "--set", "rds.nope=1"), "has no key 'nope'"),
        (("scenarios", "--set", "rds.failover_delay_s=fast"), "expected a float"),
        (("scenarios", "--set", "rds.failover_delay_s=-3"), "cannot be negative"),
        (("scenarios", "--set", "novalue"), "expected key.path=value"),
        (("run", "no-such-scenario"), "unknown scenario 'no-such-scenario'"),
        (("report", "2026-Q5"), "bad quarter"),
        (("quarter", "26Q1"), "bad quarter"),
        (("gate", "--scenarios", ","), "--scenarios is empty"),
        (("run",), "Missing argument"),
        # the runbook names neither the DR load balancer nor the DR PGW: refused before any call
        (
            ("run", "region-failover", "--target", "staging"),
            "does not set route53.hosted_zone_id, route53.record, route53.dr_dns_name, which "
            "region-failover on AWS needs",
        ),
        (
            ("run", "pgw-region-failover", "--target", "staging"),
            "route53.dr_dns_name, pgw.dr_base_url, ssm.pgw_database_url, which pgw-",
        ),
        # the shipped staging target names no health URL (production's are not staging's)
        (
            ("run", "ecs-task-failure", "--target", "staging"),
            "does not set endpoints.svc-portal, endpoints.svc-smarttab, endpoints.pgw, which "
            "ecs-task-failure on AWS needs",
        ),
        (("frobnicate",), "No such command"),
    ],
)
def test_bad_input_one_line_exit_2_no_traceback(args, fragment):
    r = run_cli(*args, timeout=60)
    assert r.code == 2, (r.code, r.err)
    assert fragment in r.err
    assert r.err.strip().count("\n") == 0, r.err
    assert "Traceback" not in r.err + r.out


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("name: x\nkind: sandbox\n  bad: [indent\n", "not valid YAML"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("name: x\nkind: gcp\nenvironment: staging\n", "kind must be one of"),
        (
            "name: x\nkind: aws\nenvironment: staging\ndrill: {recovery_bound_s: -5}\n",
            "must be a non-negative number",
        ),
    ],
)
def test_malformed_target_file_is_a_usage_error(tmp_path, content, fragment):
    path = tmp_path / "t.yaml"
    path.write_text(content)
    r = run_cli("scenarios", "--target", str(path), timeout=60)
    assert r.code == 2 and fragment in r.err and "Traceback" not in r.err, r.err


def test_scenarios_says_which_names_a_target_leaves_unset():
    import json
    import os

    wide = {**os.environ, "COLUMNS": "300"}
    r = run_cli("scenarios", "--target", "staging", "--json", timeout=60, env=wide)
    assert r.code == 0, r.err
    rows = {s["id"]: s["readiness"] for s in json.loads(r.out)["scenarios"]}
    assert rows["ecs-task-failure"] == (
        "needs endpoints.svc-portal, endpoints.svc-smarttab, endpoints.pgw"
    )
    assert rows["region-failover"] == (
        "needs route53.hosted_zone_id, route53.record, route53.dr_dns_name"
    )
    assert rows["obs-failure"].startswith("needs obs.cluster")
    sandbox = run_cli("scenarios", timeout=60, env=wide)
    assert sandbox.out.count("ready") == 7


def test_scenarios_lists_the_catalog():
    r = run_cli("scenarios", timeout=60)
    assert r.code == 0
    for sid in (
        "ecs-task-failure",
        "rds-failover",
        "redis-failover",
        "region-failover",
        "pgw-region-failover",
        "obs-failure",
        "rds-pitr",
    ):
        assert sid in r.out


@pytest.mark.parametrize(
    "scenario, operation",
    [
        ("ecs-task-failure", "ecs ListTasks"),
        ("rds-failover", "rds DescribeDBInstances"),
        ("redis-failover", "elasticache DescribeReplicationGroups"),
    ],
)
def test_dry_run_on_staging_prints_aws_calls_and_makes_none(scenario, operation, runs_dir):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(runs_dir),
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "*",
    }  # no credentials at all: a dry run needs none
    import os

    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    r = run_cli(
        "run",
        scenario,
        "--target",
        "staging",
        "--dry-run",
        "--runs-dir",
        str(runs_dir),
        timeout=120,
        env=env,
    )
    assert r.code == 0, r.err
    assert "none made" in r.out and operation in r.out, r.out
    results = list(runs_dir.glob("*/result.json"))
    assert len(results) == 1


def test_quarter_records_the_quarter_each_drill_was_run_for(runs_dir):
    import json
    from datetime import UTC, datetime

    r = run_cli(
        "quarter",
        "2031-Q2",
        "--target",
        "staging",
        "--dry-run",
        "--runs-dir",
        str(runs_dir),
        timeout=120,
    )
    assert r.code == 0, r.err
    (result,) = [json.loads(p.read_text()) for p in runs_dir.glob("*/result.json")]
    assert result["scenario"] == "rds-pitr" and result["quarter"] == "2031-Q2"
    r = run_cli(
        "run",
        "ecs-task-failure",
        "--target",
        "staging",
        "--dry-run",
        "--runs-dir",
        str(runs_dir / "single"),
        timeout=120,
    )
    (single,) = [json.loads(p.read_text()) for p in (runs_dir / "single").glob("*/result.json")]
    now = datetime.now(UTC)
    assert single["quarter"] == f"{now.year}-Q{(now.month - 1) // 3 + 1}"  # its date's


def _aws_target(tmp_path, endpoint: str) -> str:
    from mpac_drill import TARGETS_DIR

    text = (
        (TARGETS_DIR / "staging.yaml")
        .read_text()
        .replace("endpoint_url: null", f"endpoint_url: {endpoint}")
    )
    for name in ("svc-portal", "svc-smarttab", "pgw"):  # staging ships them unset
        text = text.replace(f"  {name}: null ", f"  {name}: http://127.0.0.1:9/{name} ")
    path = tmp_path / "aws.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "creds, fragment",
    [
        (False, "no AWS credentials"),
        (True, "127.0.0.1:9"),
    ],
)
def test_aws_without_credentials_or_endpoint_fails_one_line_nothing_written(
    tmp_path, creds, fragment
):
    import os

    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "AWS_MAX_ATTEMPTS": "1",
    }
    if creds:
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    runs = tmp_path / "runs"
    r = run_cli(
        "run",
        "ecs-task-failure",
        "--target",
        _aws_target(tmp_path, "http://127.0.0.1:9"),
        "--runs-dir",
        str(runs),
        timeout=120,
        env=env,
    )
    assert r.code == 3, (r.code, r.err)
    assert fragment in r.err, r.err
    assert r.err.strip().count("\n") == 0 and "Traceback" not in r.err
    assert not list(runs.glob("*/result.json"))  # refused before anything was written


def test_experiment_with_a_wrong_argument_name_is_a_usage_error(tmp_path):
    from dataclasses import replace

    from mpac_drill import EXPERIMENTS_DIR
    from mpac_drill.config import load_catalog, load_target
    from mpac_drill.drill.runner import run_drill
    from mpac_drill.errors import UsageError

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (EXPERIMENTS_DIR / "ecs-task-failure.yaml")
        .read_text()
        .replace("arguments: {service: svc-portal}", "arguments: {servce: svc-portal}")
    )
    catalog = load_catalog()
    sc = replace(catalog.get("ecs-task-failure"), experiment=str(bad))
    catalog.scenarios["ecs-task-failure"] = sc
    with pytest.raises(UsageError, match="invalid"):
        run_drill(
            "ecs-task-failure",
            load_target("sandbox"),
            runs_dir=tmp_path / "runs",
            catalog=catalog,
            dry_run=True,
        )
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("scenario", ["ecs-task-failure", "rds-failover", "redis-failover"])
def test_dry_run_on_sandbox_touches_nothing(scenario, runs_dir):
    import json as _json

    def pids():
        r = run_cli("sandbox", "status", "--json", timeout=60)
        st = _json.loads(r.out)
        return st["running"], sorted((c["name"], c["pid"]) for c in st["components"])

    before = pids()
    r = run_cli("run", scenario, "--dry-run", "--runs-dir", str(runs_dir), timeout=120)
    assert r.code == 0, r.err
    assert "sandbox call(s) planned, none made" in r.out
    assert "  sandbox " in r.out and "(local)" in r.out  # the same format as AWS calls
    assert pids() == before  # nothing started, nothing killed


def test_gate_with_an_unready_obs_drill_refuses_before_any_drill(runs_dir):
    endpoints = [
        f"--set=endpoints.{n}=http://127.0.0.1:9/{n}/health"
        for n in ("svc-portal", "svc-smarttab", "pgw")
    ]
    r = run_cli(
        "gate",
        "--target",
        "staging",
        *endpoints,
        "--scenarios",
        "ecs-task-failure,obs-failure",
        "--runs-dir",
        str(runs_dir),
        timeout=120,
    )
    assert r.code == 2, r.err
    assert "does not set obs.cluster" in r.err and r.err.strip().count("\n") == 0
    assert not list(runs_dir.iterdir())  # not even the ECS drill ran


def test_quarter_series_records_an_unready_obs_drill_as_not_run(runs_dir):
    from mpac_drill.cli.run import DrillOptions, run_series
    from mpac_drill.config import load_catalog, load_target

    catalog = load_catalog()
    series = run_series(
        "2031-Q4",
        [catalog.get("obs-failure")],
        load_target("staging"),
        catalog,
        DrillOptions(runs_dir),
        skip_unready=True,
    )
    assert series.outcomes == []
    assert "obs.buckets.loki" in series.not_run["obs-failure"]
    assert not list(runs_dir.iterdir())

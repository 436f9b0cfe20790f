"""The command line as a user meets it: help, bad input, exit codes, dry runs.

Help and usage errors run in-process (fast): help through ``click.testing.CliRunner`` on the
group, bad input through :func:`mpac_drill.cli.main` itself, which maps every outcome to the
exit code and the one-line error the process ends with. Tests where the process matters
(its environment, credentials, the interpreter's real exit code) run ``mpac-drill`` as a
separate process (``run_cli``).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import signal
import sys
from collections.abc import Callable, Iterator

import click
import pytest
from click.testing import CliRunner, Result

import mpac_drill.cli
from mpac_drill import PROJECT_ROOT
from mpac_drill.cli import _register, cli, main
from tests.conftest import CliResult, run_cli

_register()  # main() adds the commands to the group; until then it is empty


def _walk(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """The group, then every command and subgroup under it, depth first."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, (*path, name))


ALL_COMMANDS = dict(_walk(cli))  # () is the root group itself
LEAF_COMMANDS = [p for p, c in ALL_COMMANDS.items() if not isinstance(c, click.Group)]


def _cmd_id(path: tuple[str, ...]) -> str:
    return " ".join(("mpac-drill", *path))


# click wraps help to max(min(terminal columns, 100) - 2, 50) columns (the group's
# max_content_width is 100): 78 in a pipe (CI logs, the subprocess this test used to run),
# up to 98 on a wide terminal.
PIPE_HELP_WIDTH = 78
HELP_WIDTHS = range(50, 99)

# Examples written inside a paragraph click rewraps (no \b block, not a paragraph of their own):
# at some widths the wrap splits them ("Example: mpac-" / "drill sandbox status --json").
EXAMPLE_IN_REWRAPPED_PARAGRAPH: dict[tuple[str, ...], str] = {}  # every one fixed with \b


def _help(path: tuple[str, ...], width: int = PIPE_HELP_WIDTH) -> Result:
    return CliRunner().invoke(cli, [*path, "--help"], prog_name="mpac-drill", terminal_width=width)


def _has_example(help_text: str, path: tuple[str, ...]) -> bool:
    """A line starting with ``Example`` or showing ``mpac-drill <command> ...`` (the usage
    line aside)."""
    shown = re.compile(
        rf"mpac-drill {re.escape(' '.join(path))}\b" if path else r"mpac-drill [a-z]"
    )
    lines = [ln.strip() for ln in help_text.splitlines() if not ln.startswith("Usage:")]
    return any(ln.startswith("Example") or shown.search(ln) for ln in lines)


def test_cli_modules_with_a_command_are_all_registered_in_the_group():
    """The walk below sees every command: none is left out of main's group."""
    package = mpac_drill.cli
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            assert cli.commands.get(command.name) is command, info.name
    assert len(LEAF_COMMANDS) >= 9, sorted(ALL_COMMANDS)  # nine when this was written


@pytest.mark.parametrize("path", list(ALL_COMMANDS), ids=_cmd_id)
def test_help_of_every_command_in_a_pipe_exits_0_with_an_example(path):
    r = _help(path)
    assert r.exit_code == 0, (r.exit_code, r.output)
    assert r.stdout.startswith(f"Usage: {_cmd_id(path)} "), r.stdout
    assert _has_example(r.stdout, path), r.stdout


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            p,
            marks=pytest.mark.xfail(
                strict=True,
                reason=f"command module's docstring: {EXAMPLE_IN_REWRAPPED_PARAGRAPH[p]}; "
                "click rewraps it and splits the example at some widths (put it in a \\b "
                "block or a paragraph of its own)",
            ),
        )
        if p in EXAMPLE_IN_REWRAPPED_PARAGRAPH
        else p
        for p in ALL_COMMANDS
    ],
    ids=_cmd_id,
)
def test_help_example_at_every_terminal_width_stays_on_one_line(path):
    lost = [w for w in HELP_WIDTHS if not _has_example(_help(path, w).stdout, path)]
    assert not lost, f"no example line at help widths {lost}"


# The README's CLI section: every command takes --target and --set; drills take --users,
# --load-workers, --dry-run, and --allow-production --ticket for production; the commands
# that read or write run folders take --runs-dir.
TARGET_OPTIONS = ("--target", "--set")
RUNS_DIR_OPTIONS = ("--runs-dir",)
DRILL_OPTIONS = ("--users", "--load-workers", "--dry-run", "--allow-production", "--ticket")
RUN_FOLDER_COMMANDS = {("run",), ("gate",), ("quarter",), ("report",)}
DRILL_COMMANDS = {("run",), ("gate",), ("quarter",)}


def _listed_options(help_text: str) -> set[str]:
    """Long option names declared in the help's Options section (not mentioned in prose)."""
    _, _, options = help_text.partition("\nOptions:\n")
    return set(re.findall(r"^ {2}(?:-\w, )?(--[\w-]+)", options, re.M))


def test_commands_the_readme_conventions_name_exist_as_commands():
    missing = (RUN_FOLDER_COMMANDS | DRILL_COMMANDS) - set(LEAF_COMMANDS)
    assert not missing, (sorted(missing), sorted(ALL_COMMANDS))


@pytest.mark.parametrize("path", LEAF_COMMANDS, ids=_cmd_id)
def test_help_of_every_command_lists_the_shared_options_the_readme_promises(path):
    expected = set(TARGET_OPTIONS)
    if path in RUN_FOLDER_COMMANDS:
        expected |= set(RUNS_DIR_OPTIONS)
    if path in DRILL_COMMANDS:
        expected |= set(DRILL_OPTIONS)
    r = _help(path)
    assert r.exit_code == 0, r.output
    missing = expected - _listed_options(r.stdout)
    assert not missing, f"{_cmd_id(path)} --help lists no {', '.join(sorted(missing))}"


@pytest.fixture
def main_in_process(monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """``main(args)`` in this process, as the entry point calls it (``sys.exit(main())``)
    from the project root: the same exception-to-exit-code mapping and one-line errors,
    stdout and stderr captured apart by CliRunner; main's SIGTERM handler is put back."""
    monkeypatch.chdir(PROJECT_ROOT)

    def run(*args: str) -> CliResult:
        sigterm = signal.getsignal(signal.SIGTERM)
        try:
            with CliRunner().isolation() as (out, err, _):
                code = main(list(args))
                sys.stdout.flush()
                sys.stderr.flush()
        finally:
            signal.signal(signal.SIGTERM, sigterm)
        return CliResult(code, out.getvalue().decode(), err.getvalue().decode())

    return run


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
def test_main_with_bad_input_exits_2_one_line_no_traceback(main_in_process, args, fragment):
    r = main_in_process(*args)
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
def test_main_with_malformed_target_file_exits_2_no_traceback(
    main_in_process, tmp_path, content, fragment
):
    path = tmp_path / "t.yaml"
    path.write_text(content)
    r = main_in_process("scenarios", "--target", str(path))
    assert r.code == 2 and fragment in r.err and "Traceback" not in r.err, r.err


def test_main_as_a_process_with_help_exits_0_naming_mpac_drill():
    """The real entry point: main's code becomes the interpreter's exit status."""
    r = run_cli("--help", timeout=60)
    assert r.code == 0, r.err
    assert r.out.startswith("Usage: mpac-drill ") and _has_example(r.out, ()), r.out


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("frobnicate",), "No such command"),  # click's own usage error
        (("scenarios", "--target", "nope"), "unknown target 'nope'"),  # a DrillError
    ],
    ids=["click-usage-error", "drill-usage-error"],
)
def test_main_as_a_process_with_bad_input_exits_2_one_line_no_traceback(args, fragment):
    r = run_cli(*args, timeout=60)
    assert r.code == 2, (r.code, r.err)
    assert fragment in r.err
    assert r.err.strip().count("\n") == 0, r.err
    assert "Traceback" not in r.err + r.out


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


def test_gate_with_an_unready_obs_drill_exits_2_before_any_drill(main_in_process, runs_dir):
    endpoints = [
        f"--set=endpoints.{n}=http://127.0.0.1:9/{n}/health"
        for n in ("svc-portal", "svc-smarttab", "pgw")
    ]
    r = main_in_process(
        "gate",
        "--target",
        "staging",
        *endpoints,
        "--scenarios",
        "ecs-task-failure,obs-failure",
        "--runs-dir",
        str(runs_dir),
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

"""The production guard (flags, ticket, target file, STS account) and the drill lock."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from mpac_drill import TARGETS_DIR
from mpac_drill.config import Target, load_target
from mpac_drill.errors import HarnessError, UsageError
from mpac_drill.production import is_production, production_clashes, production_facts
from mpac_drill.safety import DrillLock, check_production_guard, mask_account

# The moto server, the dummy AWS environment and the loopback-only guard of tests/aws.
_spec = importlib.util.spec_from_file_location(
    "_aws_conftest", Path(__file__).parent / "aws" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_aws = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_aws)
moto_url = _aws.moto_url
aws_env = _aws.aws_env
loopback_only = _aws.loopback_only

MOTO_ACCOUNT = "123456789012"  # moto's default account
TICKET = "CHG-1234"


@pytest.fixture
def target_file(tmp_path: Path, moto_url: str) -> Callable[..., Target]:
    """``target_file("production", allow_production=True)``: a shipped target copied into
    ``tmp_path``, pointed at moto, with top-level keys replaced (``None`` removes one)."""

    def write(base: str = "staging", **top: Any) -> Target:
        settings = load_target(base).settings
        settings["aws"]["endpoint_url"] = moto_url
        settings["aws"]["max_attempts"] = 1
        for key, value in top.items():
            if value is None:
                settings.pop(key, None)
            else:
                settings[key] = value
        path = tmp_path / f"{base}-{len(list(tmp_path.glob('*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(settings), encoding="utf-8")
        return load_target(str(path))

    return write


# ---------------------------------------------------------------- production guard


def test_guard_production_without_flags_refused(target_file: Callable[..., Target]) -> None:
    target = target_file("production", allow_production=True, account_id=MOTO_ACCOUNT)
    with pytest.raises(UsageError) as err:
        check_production_guard(target, allow_production=False, ticket=None, dry_run=False)
    message = str(err.value)
    assert "is production: refused without --allow-production, a change ticket" in message
    assert "allow_production: true in" not in message  # the file does allow it
    assert "\n" not in message


def test_guard_production_without_ticket_refused(target_file: Callable[..., Target]) -> None:
    target = target_file("production", allow_production=True, account_id=MOTO_ACCOUNT)
    with pytest.raises(UsageError, match=r"refused without a change ticket \(--ticket CHG-1234\)$"):
        check_production_guard(target, allow_production=True, ticket=None, dry_run=False)


@pytest.mark.parametrize(
    "ticket", ["", "chg-1234", "CHG1234", "CHG-", "C-1", "CHG-12 ", "CHG-12\nx"]
)
def test_guard_production_malformed_ticket_refused(
    target_file: Callable[..., Target],
    ticket: str,
) -> None:
    target = target_file("production", allow_production=True, account_id=MOTO_ACCOUNT)
    with pytest.raises(UsageError, match="change ticket") as err:
        check_production_guard(target, allow_production=True, ticket=ticket, dry_run=True)
    assert "\n" not in str(err.value)


def test_guard_production_file_not_allowing_refused(target_file: Callable[..., Target]) -> None:
    target = target_file("production", account_id=MOTO_ACCOUNT)  # ships allow_production: false
    with pytest.raises(UsageError) as err:
        check_production_guard(target, allow_production=True, ticket=TICKET, dry_run=True)
    assert str(err.value) == (
        f"target 'production' is production: refused without "
        f"allow_production: true in {target.path}"
    )


def test_guard_production_truthy_string_in_file_refused(
    target_file: Callable[..., Target],
) -> None:
    target = target_file("production", allow_production="yes please", account_id=MOTO_ACCOUNT)
    with pytest.raises(UsageError, match="allow_production: true in"):
        check_production_guard(target, allow_production=True, ticket=TICKET, dry_run=True)


def test_guard_production_all_three_keys_and_account_allowed(
    target_file: Callable[..., Target],
    loopback_only: list[tuple[str, int]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = target_file("production", allow_production=True, account_id=MOTO_ACCOUNT)
    with caplog.at_level(logging.WARNING, logger="mpac_drill"):
        check_production_guard(target, allow_production=True, ticket=TICKET, dry_run=False)
    assert loopback_only, "STS was not asked"
    assert f"under change ticket {TICKET}" in caplog.text


def test_guard_staging_account_mismatch_refused_ids_masked(
    target_file: Callable[..., Target],
) -> None:
    target = target_file("staging")  # account_id 111111111111, moto answers 123456789012
    with pytest.raises(UsageError) as err:
        check_production_guard(target, allow_production=False, ticket=None, dry_run=False)
    message = str(err.value)
    assert "is AWS account ********1111 but the credentials act in account ********9012" in message
    assert "111111111111" not in message and MOTO_ACCOUNT not in message


def test_guard_staging_account_match_accepted(
    target_file: Callable[..., Target],
    loopback_only: list[tuple[str, int]],
) -> None:
    target = target_file("staging", account_id=MOTO_ACCOUNT)
    check_production_guard(target, allow_production=False, ticket=None, dry_run=False)
    assert loopback_only, "STS was not asked"


def test_guard_dry_run_never_calls_sts(
    target_file: Callable[..., Target],
    loopback_only: list[tuple[str, int]],
) -> None:
    staging = target_file("staging")  # mismatching account: would be refused
    production = target_file("production", allow_production=True)
    check_production_guard(staging, allow_production=False, ticket=None, dry_run=True)
    check_production_guard(production, allow_production=True, ticket=TICKET, dry_run=True)
    assert loopback_only == []


def test_guard_sandbox_target_no_checks() -> None:
    check_production_guard(
        load_target("sandbox"), allow_production=False, ticket=None, dry_run=False
    )


@pytest.mark.parametrize("account", [None, "12345", "abcdefghijkl", True, ["123456789012"]])
def test_guard_aws_target_without_valid_account_id_refused(
    target_file: Callable[..., Target],
    account: Any,
) -> None:
    target = target_file("staging", account_id=account)
    with pytest.raises(UsageError, match="needs account_id: the 12-digit AWS account"):
        check_production_guard(target, allow_production=False, ticket=None, dry_run=False)


def test_guard_unquoted_account_id_compared_as_12_digits(
    target_file: Callable[..., Target],
) -> None:
    target = target_file("staging", account_id=int(MOTO_ACCOUNT))
    check_production_guard(target, allow_production=False, ticket=None, dry_run=False)


def test_guard_sts_unreachable_harness_error(target_file: Callable[..., Target]) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    target = target_file("staging", account_id=MOTO_ACCOUNT)
    target = load_target(str(target.path), {"aws.endpoint_url": closed})
    with pytest.raises(HarnessError, match="cannot confirm the AWS account of target 'staging'"):
        check_production_guard(target, allow_production=False, ticket=None, dry_run=False)


def test_mask_account_keeps_last_four_digits() -> None:
    assert mask_account("123456789012") == "********9012"
    assert mask_account("12") == "12"


# ---------------------------------------------------------------- drill lock


def _holder(lock_dir: Path, **fields: Any) -> Path:
    data = {
        "pid": os.getpid(),
        "scenario": "rds-failover",
        "started_at": "2026-11-27T14:00:00Z",
        "run_dir": "runs/old",
        "host": socket.gethostname(),
        "create_time": psutil.Process().create_time(),
        "token": "t",
        **fields,
    }
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / "sandbox.lock"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_lock_second_drill_same_target_refused(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    with DrillLock(locks, "sandbox", "rds-failover", tmp_path / "runs" / "a") as held:
        holder = json.loads(held.path.read_text())
        assert holder["pid"] == os.getpid() and holder["scenario"] == "rds-failover"
        assert set(holder) >= {"pid", "scenario", "started_at", "run_dir", "host"}
        with (
            pytest.raises(UsageError) as err,
            DrillLock(locks, "sandbox", "ecs-task-failure", tmp_path / "runs" / "b"),
        ):
            pass
        assert str(err.value) == (
            f"a drill is already running against target sandbox: rds-failover since "
            f"{holder['started_at']} (pid {os.getpid()}, run folder {tmp_path / 'runs' / 'a'})"
        )
        with DrillLock(locks, "staging", "ecs-task-failure", tmp_path / "runs" / "c"):
            pass  # another target is free
    assert list(locks.iterdir()) == []


def test_lock_released_after_exit_exception_and_interrupt(tmp_path: Path) -> None:
    lock = DrillLock(tmp_path, "sandbox", "rds-failover", tmp_path / "run")
    with lock:
        assert lock.path.exists()
    assert not lock.path.exists()
    with pytest.raises(RuntimeError), DrillLock(tmp_path, "sandbox", "rds-failover", tmp_path):
        raise RuntimeError("drill blew up")
    assert not lock.path.exists()
    with pytest.raises(KeyboardInterrupt), DrillLock(tmp_path, "sandbox", "rds-failover", tmp_path):
        raise KeyboardInterrupt
    assert not lock.path.exists()
    with DrillLock(tmp_path, "sandbox", "rds-failover", tmp_path):
        pass


def test_lock_of_dead_process_taken_over_with_warning(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    _holder(tmp_path, pid=gone.pid, create_time=0.0)
    with (
        caplog.at_level(logging.WARNING, logger="mpac_drill"),
        DrillLock(tmp_path, "sandbox", "ecs-task-failure", tmp_path / "new") as lock,
    ):
        assert json.loads(lock.path.read_text())["scenario"] == "ecs-task-failure"
    assert "taking over the stale drill lock of target sandbox: rds-failover" in caplog.text
    assert not lock.path.exists()


def test_lock_pid_reused_by_another_process_taken_over(tmp_path: Path) -> None:
    # Our own pid is alive, but the process that wrote the lock started at another time.
    _holder(tmp_path, create_time=psutil.Process().create_time() - 3600)
    with DrillLock(tmp_path, "sandbox", "ecs-task-failure", tmp_path / "new") as lock:
        assert json.loads(lock.path.read_text())["scenario"] == "ecs-task-failure"


def test_lock_from_another_host_refused_naming_host(tmp_path: Path) -> None:
    _holder(tmp_path, host="drill-runner-7", pid=999_999_999)
    with (
        pytest.raises(UsageError, match=r"\(pid 999999999 on drill-runner-7, run folder"),
        DrillLock(tmp_path, "sandbox", "ecs-task-failure", tmp_path),
    ):
        pass


def test_lock_unreadable_old_file_taken_over(tmp_path: Path) -> None:
    path = _holder(tmp_path)
    path.write_text("{not json", encoding="utf-8")
    os.utime(path, (0, 0))
    with DrillLock(tmp_path, "sandbox", "rds-failover", tmp_path):
        pass
    assert not path.exists()


def test_lock_not_ours_anymore_left_in_place(tmp_path: Path) -> None:
    with DrillLock(tmp_path, "sandbox", "rds-failover", tmp_path) as lock:
        path = _holder(tmp_path, token="someone-else")
    assert path == lock.path and path.exists()


def test_lock_held_by_another_process_refused_then_taken_over_after_kill(
    tmp_path: Path,
) -> None:
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from mpac_drill.safety import DrillLock
        with DrillLock(Path({str(tmp_path)!r}), "sandbox", "redis-failover", Path("runs/x")):
            print("held", flush=True)
            time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with (
            pytest.raises(UsageError, match=rf"redis-failover since .* \(pid {child.pid}, "),
            DrillLock(tmp_path, "sandbox", "rds-failover", tmp_path),
        ):
            pass
    finally:
        child.kill()
        child.wait()
    with DrillLock(tmp_path, "sandbox", "rds-failover", tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()


# ---------------------------------------------------------------- production names


def test_shipped_staging_names_nothing_of_production() -> None:
    staging = load_target("staging")
    assert production_clashes(staging) == []
    settings = yaml.safe_dump(yaml.safe_load((TARGETS_DIR / "staging.yaml").read_text()))
    for name in ("mpac-cloud.com", "Z0677506ALKL276Q2VVE", "production", "222222222222"):
        assert name not in settings, name


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        (
            "endpoints.svc-portal",
            "https://api.mpac-cloud.com/portal/health",
            "endpoints.svc-portal names production's host api.mpac-cloud.com",
        ),
        (
            "endpoints.pgw",
            "https://PGW.mpac-cloud.com./health",
            "endpoints.pgw names production's host pgw.mpac-cloud.com",
        ),
        (
            "route53.record",
            "api.mpac-cloud.com.",
            "route53.record api.mpac-cloud.com. is production's",
        ),
        ("ecs.cluster", "mpac-smartpos-production", "ecs.cluster mpac-smartpos-production is"),
        ("rds.pgw.identifier", "mpac-pgw-production", "rds.pgw.identifier mpac-pgw-production"),
        ("elasticache.replication_group", "mpac-smartpos-production", "elasticache.replication"),
        ("ssm.database_url", "/mpac-smartpos/production/DATABASE_URL", "ssm.database_url"),
        (
            "database.dsn_ssm_parameter",
            "/mpac-smartpos/production/DATABASE_URL",
            "database.dsn_ssm_parameter",
        ),
    ],
)
def test_guard_staging_copy_borrowing_a_production_name_refused_before_any_call(
    target_file: Callable[..., Target],
    loopback_only: list[tuple[str, int]],
    key: str,
    value: str,
    fragment: str,
) -> None:
    target = target_file("staging", account_id=MOTO_ACCOUNT)
    target = load_target(str(target.path), {key: value})
    for dry_run in (True, False):
        with pytest.raises(UsageError, match="is not production but") as err:
            check_production_guard(target, allow_production=True, ticket=TICKET, dry_run=dry_run)
        assert fragment in str(err.value) and "\n" not in str(err.value)
    assert loopback_only == [], "refused after asking STS"


def test_guard_staging_copy_in_a_production_account_is_production(
    target_file: Callable[..., Target],
    loopback_only: list[tuple[str, int]],
) -> None:
    production_account = str(load_target("production").get("account_id"))
    target = target_file("staging", account_id=production_account)
    assert is_production(target)
    with pytest.raises(
        UsageError,
        match="acts in production account \\*{8}2222 .* so it is "
        "production whatever its environment says: refused without "
        "--allow-production",
    ):
        check_production_guard(target, allow_production=False, ticket=None, dry_run=True)
    assert loopback_only == []


def test_production_accounts_list_extends_the_production_account(tmp_path: Path) -> None:
    reference = tmp_path / "production.yaml"
    reference.write_text(
        yaml.safe_dump(
            {**load_target("production").settings, "production_accounts": ["333333333333"]}
        )
    )
    facts = production_facts(reference)
    assert facts.accounts == {"222222222222", "333333333333"}
    assert "api.mpac-cloud.com" in facts.hostnames and "pgw.mpac-cloud.com" in facts.hostnames
    staging = load_target("staging")
    other = Target(
        name="x", path=staging.path, settings={**staging.settings, "account_id": "333333333333"}
    )
    assert is_production(other, facts)
    assert not is_production(staging, facts)


def test_cli_dry_run_of_staging_copy_with_production_record_refused(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    settings = load_target("staging").settings
    settings["route53"].update(
        hosted_zone_id="Z0677506ALKL276Q2VVE",
        record="api.mpac-cloud.com",
        dr_dns_name="dr.example.com",
    )
    settings["endpoints"] = {
        k: f"https://staging.example.com/{k}/health" for k in ("svc-portal", "svc-smarttab", "pgw")
    }
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    r = run_cli("run", "region-failover", "--target", str(path), "--dry-run", timeout=60)
    assert r.code == 2, (r.code, r.err, r.out)
    assert "route53.record api.mpac-cloud.com is production's" in r.err
    assert r.err.strip().count("\n") == 0 and "Traceback" not in r.err
    assert "ChangeResourceRecordSets" not in r.out


# ---------------------------------------------------------------- --set cannot relabel


@pytest.mark.parametrize(
    "key, value",
    [
        ("environment", "staging"),
        ("allow_production", "true"),
        ("account_id", "111111111111"),
        ("kind", "sandbox"),
        ("name", "staging"),
    ],
)
def test_set_of_a_safety_key_refused_one_line(key: str, value: str) -> None:
    from tests.conftest import run_cli

    r = run_cli(
        "run",
        "ecs-task-failure",
        "--target",
        "production",
        "--dry-run",
        "--set",
        f"{key}={value}",
        timeout=60,
    )
    assert r.code == 2, (r.code, r.err, r.out)
    assert f"--set {key}: refused, {key} decides the drill's safety" in r.err
    assert r.err.strip().count("\n") == 0 and "StopTask" not in r.out


def test_set_safety_key_refused_in_a_mapping_too() -> None:
    with pytest.raises(UsageError, match="--set environment: refused"):
        load_target("production", {"environment": "staging"})


def test_set_endpoint_url_on_production_refused(target_file: Callable[..., Target]) -> None:
    production = target_file("production", allow_production=True, account_id=MOTO_ACCOUNT)
    moved = load_target(str(production.path), {"aws.endpoint_url": "http://127.0.0.1:9"})
    with pytest.raises(UsageError, match="--set aws.endpoint_url: refused on production"):
        check_production_guard(moved, allow_production=True, ticket=TICKET, dry_run=True)


def test_targets_folder_holds_only_the_shipped_targets() -> None:
    """No test writes beside the shipped targets (a stray copy there becomes a --target)."""
    assert sorted(p.name for p in TARGETS_DIR.iterdir()) == [
        "production.yaml",
        "sandbox.yaml",
        "staging.yaml",
    ]

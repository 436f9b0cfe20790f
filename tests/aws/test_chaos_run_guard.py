"""Plain ``chaos run`` goes through the same guards as ``mpac-drill run`` (the experiments'
``mpac-drill`` control): production refused without permission, the AWS account checked,
the drill lock held; a refused drill reaches no provider, so no StopTask reaches moto."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaoslib.experiment import run_experiment
from chaoslib.loader import load_experiment

from mpac_drill import EXPERIMENTS_DIR
from mpac_drill.config import load_target
from mpac_drill.drill import context as drill_context
from mpac_drill.drill import control
from tests.aws.conftest import fargate_service

pytestmark = [pytest.mark.aws]
MOTO_ACCOUNT = "123456789012"


def _production_copy(tmp_path: Path, moto_url: str, cluster: str, **top: Any) -> Path:
    settings = load_target("production").settings  # ships allow_production: false
    settings["aws"]["endpoint_url"] = moto_url
    settings["ecs"]["cluster"] = cluster
    settings["endpoints"] = {
        n: f"http://127.0.0.1:9/{n}/health" for n in ("svc-portal", "svc-smarttab", "pgw")
    }
    settings.update(top)
    path = tmp_path / f"production-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def _chaos_run(target: Path, run_dir: Path, **config: Any) -> dict[str, Any]:
    experiment = load_experiment(str(EXPERIMENTS_DIR / "ecs-task-failure.yaml"))
    return run_experiment(
        experiment,
        settings={"runtime": {"rollbacks": {"strategy": "always"}}},
        experiment_vars=(
            {"mpac_target": str(target), "mpac_run_dir": str(run_dir), "mpac_users": 0, **config},
            {},
        ),
    )


@pytest.fixture
def production_service(moto, ecs_network, monkeypatch, moto_url, tmp_path):
    cluster = f"mpac-smartpos-production-{uuid.uuid4().hex[:6]}"
    _, arns = fargate_service(
        moto("ecs"),
        ecs_network,
        monkeypatch,
        cluster=cluster,
        service="svc-portal",
        tasks=2,
        desired=2,
        running=2,
    )
    return cluster, arns


def _states(moto, cluster: str, arns: list[str]) -> set[str]:
    return {
        t["lastStatus"] for t in moto("ecs").describe_tasks(cluster=cluster, tasks=arns)["tasks"]
    }


@pytest.mark.parametrize(
    "env, config",
    [
        ({}, {}),  # no permission at all
        ({control.ALLOW_ENV: "1", control.TICKET_ENV: "CHG-1234"}, {}),  # file still says false
        ({}, {"mpac_allow_production": True, "mpac_ticket": "CHG-1234"}),
    ],
)
def test_plain_chaos_run_on_production_refused_no_stop_task(
    production_service, moto, moto_url, tmp_path, monkeypatch, env, config
) -> None:
    cluster, arns = production_service
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    target = _production_copy(tmp_path, moto_url, cluster, account_id=MOTO_ACCOUNT)
    journal = _chaos_run(target, tmp_path / "run", **config)
    assert journal["status"] == "interrupted"
    assert [a["activity"]["name"] for a in journal["run"]] == []  # no provider ran
    (record,) = [e for e in journal.get("extensions", []) if e["name"] == "mpac-drill"]
    assert "is production: refused without" in record["refused"]
    assert "allow_production: true in" in record["refused"]
    assert _states(moto, cluster, arns) == {"RUNNING"}
    assert drill_context.lookup({"mpac_run_dir": str(tmp_path / "run")}) is None


def test_plain_chaos_run_in_the_wrong_account_refused(
    production_service, moto, moto_url, tmp_path, monkeypatch
) -> None:
    cluster, arns = production_service
    monkeypatch.setenv(control.ALLOW_ENV, "1")
    monkeypatch.setenv(control.TICKET_ENV, "CHG-1234")
    target = _production_copy(
        tmp_path, moto_url, cluster, allow_production=True, account_id="999999999999"
    )
    journal = _chaos_run(target, tmp_path / "run")
    (record,) = [e for e in journal["extensions"] if e["name"] == "mpac-drill"]
    assert "the credentials act in account ********9012" in record["refused"]
    assert (record["allow_production"], record["ticket"]) == (True, "CHG-1234")
    assert _states(moto, cluster, arns) == {"RUNNING"}


def test_control_with_permission_registers_the_drill_and_holds_the_lock(
    production_service, moto_url, tmp_path, monkeypatch
) -> None:
    cluster, _ = production_service
    monkeypatch.setenv(control.ALLOW_ENV, "true")
    monkeypatch.setenv(control.TICKET_ENV, "CHG-77")
    target = _production_copy(
        tmp_path, moto_url, cluster, allow_production=True, account_id=MOTO_ACCOUNT
    )
    config = {
        "mpac_target": str(target),
        "mpac_run_dir": str(tmp_path / "run"),
        "mpac_scenario": "ecs-task-failure",
        "mpac_users": 0,
    }
    control.configure_control(configuration=config)
    try:
        ctx = drill_context.current(config)
        assert ctx.target.name == "production" and ctx.run_dir.is_dir()
        control.before_experiment_control(context={})  # not refused
        journal: dict[str, Any] = {}
        control.after_experiment_control(context={}, state=journal)
        (record,) = journal["extensions"]
        assert record["ticket"] == "CHG-77" and "refused" not in record
        second = control._STATE.owned[0][1]
        assert second.path.is_file()  # the drill lock is held while the drill runs
    finally:
        control.cleanup_control()
    assert drill_context.lookup(config) is None and not second.path.exists()

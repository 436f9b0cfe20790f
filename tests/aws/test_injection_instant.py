"""One definition of the injection instant on AWS: the fault methods of the AWS platform
mark it after their reads and immediately before the destructive call (moto on loopback)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from mpac_drill.config import load_catalog
from mpac_drill.drill.context import DrillContext
from mpac_drill.drill.platforms import platform_for
from mpac_drill.platform.aws import ecs as aws_ecs
from mpac_drill.platform.aws import rds as aws_rds

pytestmark = pytest.mark.aws


def _drill(target: Any, scenario: str, tmp_path: Path) -> DrillContext:
    catalog = load_catalog()
    return DrillContext(
        target=target,
        scenario=catalog.get(scenario),
        catalog=catalog,
        run_dir=tmp_path,
        users=0,
        load_workers=0,
    )


def _record_calls(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[tuple[str, float]]:
    """Every AWS call the module's clients make, with the monotonic time it was sent."""
    calls: list[tuple[str, float]] = []
    real = module.client

    def client(*args: Any, **kwargs: Any) -> Any:
        made = real(*args, **kwargs)

        def before_call(model: Any, **_: Any) -> None:
            calls.append((model.name, time.monotonic()))

        made.meta.events.register("before-call.*.*", before_call)
        return made

    monkeypatch.setattr(module, "client", client)
    return calls


def test_stop_tasks_marks_injection_after_list_tasks_before_stop_task(
    ecs_service, monkeypatch, tmp_path
) -> None:
    target, arns = ecs_service(tasks=2, desired=2)
    drill = _drill(target, "ecs-task-failure", tmp_path)
    calls = _record_calls(monkeypatch, aws_ecs)

    out = platform_for(drill).stop_tasks("svc-portal")

    assert sorted(out["stopped"]) == sorted(arns)
    ops = [name for name, _ in calls]
    assert ops[:1] == ["ListTasks"] and ops.count("StopTask") == 2
    first_stop = min(t for name, t in calls if name == "StopTask")
    listed = max(t for name, t in calls if name == "ListTasks" and t < first_stop)
    assert drill.injected_mono is not None
    assert listed < drill.injected_mono < first_stop
    assert sorted(drill.fault["resources"]) == sorted(arns)  # the tasks, not the service
    assert drill.fault["action"] == "ecs:StopTask"
    assert drill._effect_check is not None  # confirmed on a thread: the probes go on at once
    drill.await_effect()
    effect = drill.fault["effect"]  # the platform confirmed it: every task left RUNNING
    assert effect["verified"] and set(effect["tasks"]) == set(arns)
    assert {t["last_status"] for t in effect["tasks"].values()} == {"STOPPED"}


def test_failover_database_marks_injection_after_describe_before_reboot(
    moto, make_target, monkeypatch, tmp_path
) -> None:
    name = f"mpac-smartpos-{uuid.uuid4().hex[:8]}"
    moto("rds").create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="mpac",
        MasterUserPassword="not-a-secret-1",
        MultiAZ=True,
        AllocatedStorage=20,
    )
    drill = _drill(make_target(**{"rds.smartpos.identifier": name}), "rds-failover", tmp_path)
    calls = _record_calls(monkeypatch, aws_rds)

    platform_for(drill).failover_database("smartpos")

    reboot = min(t for op, t in calls if op == "RebootDBInstance")
    described = [t for op, t in calls if op == "DescribeDBInstances" and t < reboot]
    assert described and drill.injected_mono is not None
    assert max(described) < drill.injected_mono < reboot
    assert drill.fault["action"] == "rds:reboot-db-instance --force-failover"


def test_stop_tasks_share_rule_is_the_platforms_one(ecs_service, tmp_path) -> None:
    from mpac_drill.errors import UsageError

    target, _ = ecs_service(tasks=3, desired=3)
    platform = platform_for(_drill(target, "ecs-task-failure", tmp_path))
    for bad in ({"count": True}, {"count": 0}, {"percent": 0}, {"count": 1, "percent": 50}):
        with pytest.raises(UsageError):
            platform.stop_tasks("svc-portal", **bad)
    assert len(platform.stop_tasks("svc-portal", count=10)["stopped"]) == 3  # capped

"""One definition of the injection instant on the sandbox: the fault methods mark it within a
few milliseconds before the kill (the same point as on AWS: after the reads)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from mpac_drill.config import load_catalog
from mpac_drill.drill.context import DrillContext
from mpac_drill.drill.platforms import platform_for
from mpac_drill.errors import UsageError
from mpac_drill.platform import tasks_to_stop
from mpac_drill.platform.sandbox import ecs as sandbox_ecs
from mpac_drill.sandbox import control

pytestmark = pytest.mark.sandbox


def _drill(target: Any, scenario: str, tmp_path: Path, **kw: Any) -> DrillContext:
    catalog = load_catalog()
    return DrillContext(
        target=target,
        scenario=catalog.get(scenario),
        catalog=catalog,
        run_dir=tmp_path,
        users=0,
        load_workers=0,
        **kw,
    )


def test_stop_tasks_marks_injection_just_before_the_kill(sandbox, monkeypatch, tmp_path) -> None:
    kills: list[float] = []
    real = sandbox_ecs.kill_tree

    def kill_tree(pid: int, sig: int) -> None:
        kills.append(time.monotonic())
        real(pid, sig)

    monkeypatch.setattr(sandbox_ecs, "kill_tree", kill_tree)
    drill = _drill(sandbox, "ecs-task-failure", tmp_path)
    try:
        out = platform_for(drill).stop_tasks("svc-portal", count=1)
    finally:
        control.wait_healthy(sandbox, timeout_s=60)
    assert len(out["stopped"]) == 1 and len(kills) == 1
    assert drill.injected_mono is not None
    assert 0 <= kills[0] - drill.injected_mono < 0.005, kills[0] - drill.injected_mono


def _components(target: Any) -> list[tuple[str, int | None]]:
    """Every sandbox component (tasks, database and Redis nodes, Sentinels) and its pid.
    Not every marked process: PostgreSQL's archive_command and base backups come and go."""
    state = control.read_state(control.state_dir(target)) or {}
    return sorted((c["name"], c.get("pid")) for c in state.get("components", []))


def test_dry_run_records_the_fault_as_a_call_and_touches_nothing(sandbox, tmp_path) -> None:
    from mpac_drill.aws import DryRun

    control.wait_healthy(sandbox, timeout_s=60)  # an earlier test's replacement has settled
    before = _components(sandbox)
    assert any(name.startswith("svc-portal") for name, _ in before), before
    drill = _drill(sandbox, "ecs-task-failure", tmp_path, dry_run=True)
    drill.dry_run_recorder = DryRun()
    out = platform_for(drill).stop_tasks("svc-portal", percent=50)
    assert out["dry_run"] and out["stopped"] == []
    (call,) = drill.dry_run_recorder.calls
    assert (call["service"], call["operation"], call["region"]) == ("sandbox", "KillTasks", "local")
    assert call["params"]["percent"] == 50
    time.sleep(0.6)  # the daemon rewrites state.json every 0.25 s: a kill would show by now
    assert _components(sandbox) == before  # no component killed or started


@pytest.mark.parametrize("bad", [{"count": True}, {"count": 0}, {"percent": 101}])
def test_dry_run_refuses_the_same_shares_as_a_live_run(bad, tmp_path) -> None:
    share = {"count": None, "percent": None, **bad}
    with pytest.raises(UsageError):
        tasks_to_stop(0, share["count"], share["percent"])

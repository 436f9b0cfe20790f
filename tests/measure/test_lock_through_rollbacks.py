"""A drill whose method a signal ended outside chaoslib keeps its drill lock (and its
write-ahead record) through chaoslib's control cleanup: the runner plays the rollbacks
afterwards, and no other drill may start on the target meanwhile."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from mpac_drill.drill import control
from mpac_drill.errors import UsageError
from mpac_drill.safety import DrillLock


def _held(lock_dir: Path, run_dir: Path) -> bool:
    other = DrillLock(lock_dir, "sandbox", "rds-failover", run_dir)
    try:
        other.acquire()
    except UsageError:
        return True
    other.release()
    return False


def test_a_signalled_drill_keeps_its_lock_until_its_rollbacks_ran(tmp_path, monkeypatch):
    lock_dir, run_dir = tmp_path / "locks", tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "inflight.json").write_text("{}")
    lock = DrillLock(lock_dir, "sandbox", "region-failover", run_dir)
    lock.acquire()
    ctx = SimpleNamespace(signalled=True, run_dir=run_dir)
    monkeypatch.setattr(control._STATE, "owned", [(ctx, lock)])

    control.cleanup_control()  # chaoslib's cleanup, before the runner's rollbacks
    assert _held(lock_dir, run_dir)
    assert (run_dir / "inflight.json").exists()

    control.release_after_rollbacks(ctx)
    assert not _held(lock_dir, run_dir)
    control.release_after_rollbacks(ctx)  # idempotent


def test_an_unsignalled_drill_is_released_by_the_cleanup(tmp_path, monkeypatch):
    lock_dir, run_dir = tmp_path / "locks", tmp_path / "run"
    run_dir.mkdir()
    lock = DrillLock(lock_dir, "sandbox", "ecs-task-failure", run_dir)
    lock.acquire()
    ctx = SimpleNamespace(signalled=False, run_dir=run_dir)
    monkeypatch.setattr(control._STATE, "owned", [(ctx, lock)])
    monkeypatch.setattr("mpac_drill.drill.runner.cleanup_drill", lambda c: None)
    control.cleanup_control()
    assert not _held(lock_dir, run_dir)


@pytest.fixture(autouse=True)
def _no_leftover(monkeypatch):
    monkeypatch.setattr(control._STATE, "owned", [])

"""The refusal while a target has an interrupted run names a `mpac-drill recover` command
the operator can paste: `--target` is the shipped target's name, or the path of a target
file of one's own (whose name resolves to no file)."""

from __future__ import annotations

import shlex
import socket
from pathlib import Path

import pytest
import yaml

from mpac_drill import EXPERIMENTS_DIR
from mpac_drill.config import Target, load_target, resolve_target_path
from mpac_drill.drill import inflight
from mpac_drill.drill.recovery import refuse_if_interrupted
from mpac_drill.errors import HarnessError
from mpac_drill.sandbox import control


def _interrupted_run(runs: Path, target: Target) -> Path:
    run_dir = runs / f"20261130T000000Z-region-failover-{target.name}"
    record: inflight.InflightRecord = {
        "inflight_version": inflight.VERSION,
        "run_id": run_dir.name,
        "scenario": "region-failover",
        "target": {"name": target.name, "path": str(target.path), "kind": "sandbox"},
        "started_at": "2026-11-30T00:00:00Z",
        "quarter": None,
        "users": 1,
        "updated_at": "2026-11-30T00:00:01Z",
        # a pid of this host that is not the writer (its start time differs): a dead harness
        "writer": {"pid": 1, "create_time": 0.0, "host": socket.gethostname()},
        "fault": {"action": "region:lost", "about_to_inject_at": "2026-11-30T00:00:01Z"},
        "steps": [],
        "undo": [],
    }
    inflight.write(run_dir, record)
    return run_dir


def _refusal(target: Target, runs: Path, tmp_path: Path) -> str:
    with pytest.raises(HarnessError) as exc:
        refuse_if_interrupted(target, runs, tmp_path / "locks")
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def _recover_args(msg: str) -> list[str]:
    cmd = msg.split("`mpac-drill recover ", 1)[1].split("`", 1)[0]
    return shlex.split(cmd)


def test_shipped_target_is_named(tmp_path):
    target = load_target("sandbox")
    runs = tmp_path / "runs"
    run_dir = _interrupted_run(runs, target)
    msg = _refusal(target, runs, tmp_path)
    assert str(run_dir) in msg
    assert f"`mpac-drill recover --target sandbox --runs-dir {runs}`" in msg


def test_private_target_is_given_by_its_path(tmp_path):
    base = yaml.safe_load((EXPERIMENTS_DIR / "targets" / "sandbox.yaml").read_text())
    settings = control.private_settings(
        base, name="my sandbox copy", state_dir=tmp_path / "state", port_block=3000
    )
    path = tmp_path / "my targets" / "own.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(settings))
    target = load_target(str(path))
    runs = tmp_path / "run folders"
    _interrupted_run(runs, target)
    msg = _refusal(target, runs, tmp_path)
    args = _recover_args(msg)
    assert args == ["--target", str(path), "--runs-dir", str(runs)], msg
    assert resolve_target_path(args[1]) == path  # the command resolves to the same file

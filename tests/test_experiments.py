"""Every experiment file is a valid Chaos Toolkit experiment, and runs under plain `chaos`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chaoslib.experiment import ensure_experiment_is_valid
from chaoslib.loader import load_experiment

from mpac_drill import EXPERIMENTS_DIR, PROJECT_ROOT
from mpac_drill.config import load_catalog

EXPERIMENTS = sorted(p for p in EXPERIMENTS_DIR.glob("*.yaml") if p.name != "catalog.yaml")


def test_catalog_names_only_existing_experiments():
    for sc in load_catalog().scenarios.values():
        if sc.experiment:
            assert (EXPERIMENTS_DIR / sc.experiment).is_file(), sc.id


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_experiment_is_valid_for_chaoslib(path: Path):
    experiment = load_experiment(str(path))
    ensure_experiment_is_valid(experiment)  # binds every activity's arguments too
    assert experiment["configuration"]["mpac_scenario"] == path.stem
    names = [a["name"] for a in experiment["rollbacks"]]
    assert "stop-load" in names and "stop-observers" in names


@pytest.mark.sandbox
def test_plain_chaos_run_with_a_var_file(sandbox, tmp_path):
    run_dir = tmp_path / "chaos-run"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "MPAC_DRILL_RUN_DIR": str(run_dir)}
    chaos = Path(sys.executable).parent / "chaos"
    proc = subprocess.run(
        [
            str(chaos),
            "--no-version-check",
            "--log-file",
            str(tmp_path / "chaos.log"),
            "run",
            "--rollback-strategy=always",
            "--journal-path",
            str(tmp_path / "journal.json"),
            "--var-file",
            str(EXPERIMENTS_DIR / "vars" / "sandbox.yaml"),
            "--var",
            "mpac_users:int=2",
            str(EXPERIMENTS_DIR / "ecs-task-failure.yaml"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "completed" and not journal["deviated"]
    probes = {r["activity"]["name"]: r["output"] for r in journal["run"]}
    assert probes["measure-rto"]["rto_s"] > 0
    assert (run_dir / "timeline.csv").is_file() and (run_dir / "canary.csv").is_file()


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_experiment_declares_the_guard_control(path: Path):
    experiment = load_experiment(str(path))
    assert {
        "name": "mpac-drill",
        "provider": {"type": "python", "module": "mpac_drill.drill.control"},
    } in experiment["controls"]


def test_provider_without_a_drill_fails_in_one_line_and_creates_none(tmp_path):
    from chaoslib.exceptions import ActivityFailed

    from mpac_drill.drill import context as drill_context

    with pytest.raises(ActivityFailed, match="no mpac-drill drill runs for this experiment"):
        drill_context.current({"mpac_run_dir": str(tmp_path / "nothing")})
    assert not (tmp_path / "nothing").exists()

"""One private sandbox (with its DR region and front door) for the game-day tests."""

from __future__ import annotations

import pytest
import yaml

from mpac_drill import EXPERIMENTS_DIR
from mpac_drill.config import load_target
from mpac_drill.sandbox import control


@pytest.fixture(scope="session")
def gameday_target(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gameday")
    base = yaml.safe_load((EXPERIMENTS_DIR / "targets" / "sandbox.yaml").read_text())
    settings = control.private_settings(
        base, name="sandbox-gameday-test", state_dir=folder / "state", port_block=7000
    )
    settings["backup"]["base_interval_s"] = 600
    settings["region"].update(dr_port_offset=1000, front_door_port_offset=2000)
    path = folder / "gameday-target.yaml"
    path.write_text(yaml.safe_dump(settings))
    target = load_target(str(path))
    control.up(target)
    yield target
    control.down(target)

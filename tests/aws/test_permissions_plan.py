"""The permission check simulates the calls the drills make: every call of every drill's
dry-run plan on staging is in the list it simulates, so the list cannot fall behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpac_drill.config import load_catalog, load_target
from mpac_drill.drill.runner import run_drill
from mpac_drill.platform.aws.readiness_dr import IAM_ACTION_OF, drill_actions

pytestmark = pytest.mark.aws

SCENARIOS = [sid for sid, sc in load_catalog().scenarios.items() if sc.experiment]


@pytest.mark.usefixtures("no_credentials")
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_planned_call_is_a_simulated_action(
    scenario: str, tmp_path: Path, loopback_only: list[tuple[str, int]]
) -> None:
    outcome = run_drill(scenario, load_target("staging"), runs_dir=tmp_path, dry_run=True)
    assert loopback_only == []
    planned = {f"{c['service']}:{c['operation']}" for c in outcome.result.get("planned_calls", [])}
    actions = {IAM_ACTION_OF.get(op, op) for op in planned}
    missing = actions - set(drill_actions(scenario))
    assert not missing, f"{scenario}: the permission check does not simulate {sorted(missing)}"
    assert planned, f"{scenario}: a dry run on staging planned no AWS call"

"""The game-day plans: loaded, checked, one description with the automated region drills."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mpac_drill.config import load_target
from mpac_drill.errors import UsageError
from mpac_drill.gameday.plan import commands_for, load_plan, manual_steps, parse_plan
from mpac_drill.platform.sandbox import region as sandbox_region

GOOD = {
    "scenario": "x",
    "runbook_section": "1.4",
    "title": "t",
    "steps": [
        {
            "name": "a",
            "runbook": "1. do a",
            "automatable": True,
            "commands": {"sandbox": ["echo {target}"]},
            "check": {"kind": "dr_event", "arg": "dr: rds restored"},
        }
    ],
}


@pytest.mark.parametrize(
    ("scenario", "names"),
    [
        ("region-failover", sandbox_region.STEP_NAMES),
        ("pgw-region-failover", sandbox_region.PGW_STEP_NAMES),
    ],
)
def test_plan_step_names_are_the_automated_drills(scenario: str, names: tuple[str, ...]) -> None:
    plan = load_plan(scenario)
    assert plan.step_names() == list(names)
    for step in plan.steps:
        assert step.commands["sandbox"] and step.commands["aws"], step.name
        assert step.check is not None, step.name


def test_commands_carry_the_targets_names() -> None:
    plan = load_plan("region-failover")
    prod = load_target("production")
    restore = " ".join(commands_for(plan.step("restore snapshot with WAL"), prod))
    assert "--db-instance-identifier mpac-smartpos-production " in restore
    assert "--region us-east-1" in restore
    switch = commands_for(plan.step(6), prod)[0]
    assert "--hosted-zone-id Z0677506ALKL276Q2VVE" in switch
    sandbox = load_target("sandbox")
    assert commands_for(plan.step(2), sandbox) == [
        "mpac-drill sandbox dr activate --target sandbox"
    ]


def test_unset_name_stays_visible() -> None:
    plan = load_plan("pgw-region-failover")
    cmds = " ".join(commands_for(plan.step("update PGW_BASE_URL (SSM)"), load_target("production")))
    assert "<pgw.dr_base_url unset>" in cmds


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.pop("steps"), "missing 'steps'"),
        (lambda d: d["steps"][0].pop("runbook"), "needs its 'runbook'"),
        (lambda d: d["steps"][0].update(automatable="yes"), "'automatable'"),
        (lambda d: d["steps"][0].update(check={"kind": "magic"}), "check.kind"),
        (lambda d: d["steps"][0].update(commands={"gcp": ["x"]}), "unknown platform"),
        (lambda d: d["steps"].append(dict(d["steps"][0])), "repeated"),
    ],
)
def test_bad_plan_is_one_line(mutate, needle: str) -> None:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    mutate(data)
    with pytest.raises(UsageError) as exc:
        parse_plan(data, "x.yaml")
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_unknown_scenario_names_the_plans() -> None:
    with pytest.raises(UsageError, match="plans: pgw-region-failover, region-failover"):
        load_plan("rds-failover")


def test_manual_spec() -> None:
    plan = load_plan("region-failover")
    assert manual_steps("all", plan) == set(range(1, 8))
    assert manual_steps("1,2,7", plan) == {1, 2, 7}
    for bad in ("0", "8", "x", "1,,2"):
        with pytest.raises(UsageError, match="--manual"):
            manual_steps(bad, plan)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_parser_never_crashes_on_any_document(data) -> None:
    """Any YAML-shaped input is a plan or one clear UsageError, never another exception."""
    try:
        plan = parse_plan(data, "fuzz.yaml")
    except UsageError as exc:
        assert str(exc).startswith("plan fuzz.yaml: ") and "\n" not in str(exc)
    else:
        assert plan.steps


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(list(GOOD["steps"][0]) + ["extra"]), _json, max_size=6))
def test_parser_on_step_shapes(step) -> None:
    data = {**GOOD, "steps": [step]}
    try:
        plan = parse_plan(data, "fuzz.yaml")
    except UsageError as exc:
        assert "\n" not in str(exc)
    else:
        assert plan.steps[0].name == step["name"]

"""The project's result contract stays compatible with the shared version 1, and is enforced.

``contract/drill-result.schema.json`` is the project's own schema and may only grow: every
field, type and enum of the shared v1 (``PROJECT_ROOT.parent / "shared"``) must still be
there, v1 results must validate against both, and a missing schema is an error.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpac_drill import PROJECT_ROOT, contract
from mpac_drill.config import load_catalog
from mpac_drill.contract import SCHEMA_PATH, validate_result
from mpac_drill.drill.result import SCHEMA_CANDIDATES, validate
from mpac_drill.errors import HarnessError
from reports.load import load_runs

SHARED_SCHEMA = PROJECT_ROOT.parent / "shared" / "contract" / "drill-result.schema.json"
#: Keywords that only describe: the project may reword or add them.
ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "examples", "default", "deprecated"}
)
#: Keywords the project may add where v1 has none: new optional fields and definitions.
ADDITIVE = ANNOTATIONS | {"properties", "$defs"}
#: Keywords compared by the values they accept: the same values, except that the version
#: may gain new ones (``const: 1`` may become ``enum: [1, 2]``).
VALUES = ("const", "enum")
VERSION_AT = "result.json.schema_version"


# ---------------------------------------------------------------- v1 example results


def _result(scenario: str, section: str, **changes: Any) -> dict[str, Any]:
    """A v1 result as ``build_result`` writes it: a completed drill that met its targets."""
    run_id = f"20261110T100000Z-{scenario}-sandbox"
    result: dict[str, Any] = {
        "schema_version": 1,
        "run_id": run_id,
        "scenario": scenario,
        "runbook_section": section,
        "target": "sandbox",
        "environment": "sandbox",
        "started_at": "2026-11-10T10:00:00.000000Z",
        "quarter": "2026-Q4",
        "ended_at": "2026-11-10T10:03:12.500000Z",
        "status": "completed",
        "fault": {
            "action": "reboot_db_instance(ForceFailover=True)",
            "resources": ["mpac-db"],
            "injected_at": "2026-11-10T10:00:20.000000Z",
            "primary_before": "mpac-db-a",
        },
        "measurements": {
            "detect_s": 3.12,
            "rto_s": 42.5,
            "rpo_s": 0.0,
            "acked_writes": 412,
            "lost_writes": 0,
            "load": {"requests": 9120, "failures": 140, "p95_ms": 85.0},
        },
        "verdicts": [
            {"metric": "rto_s", "value": 42.5, "target": 300.0, "passed": True, "margin": 257.5},
            {"metric": "rpo_s", "value": 0.0, "target": 0.0, "passed": True, "margin": 0.0},
        ],
        "passed": True,
        "artifacts": {
            "journal": "journal.json",
            "timeline": "timeline.csv",
            "canary": "canary.csv",
            "load_per_second": "load_per_second.csv",
            "fault": "fault.json",
        },
        "targets": {"rto_s": 300.0, "rpo_s": 0.0},
        "settings": {"overrides": {}, "users": 20, "load_workers": 1},
        "harness": {
            "version": "0.1.0",
            "git_commit": "4e8079a",
            "user": "alice",
            "host": "drill-host",
            "python": "3.11.7",
        },
        "findings": [
            {
                "id": "F5",
                "section": "1.2",
                "summary": "runbook: standby promoted within 1-2 min, resolved in 2-5 min",
                "evidence": "measured RTO 42.50 s on sandbox",
            }
        ],
    }
    return result | changes


PASSED = _result("rds-failover", "1.2")
MISSED = _result(
    "redis-failover",
    "1.3",
    measurements={
        "detect_s": 1.5,
        "rto_s": 240.25,
        "rpo_s": None,
        "acked_writes": None,
        "lost_writes": None,
        "load": {"requests": 15000, "failures": 2210, "p95_ms": 310.5},
    },
    verdicts=[
        {"metric": "rto_s", "value": 240.25, "target": 180.0, "passed": False, "margin": -60.25},
        {"metric": "duplicate_orders", "value": 3, "target": 0.0, "passed": False},
    ],
    passed=False,
    impact={
        "revoked_token_accepted_s": 12.4,
        "duplicate_orders": 3,
        "rate_limit_bypassed": 17,
        "order_retries_sent": 40,
        "token_lifetime_s": 900,
    },
    findings=[],
)
ABORTED = _result(
    "region-failover",
    "1.4",
    status="aborted",
    reason="interrupted by the operator (SIGINT); rollbacks ran",
    ended_at="2026-11-10T10:01:05+00:00",
    measurements={
        "detect_s": 2.0,
        "rto_s": None,
        "rpo_s": None,
        "acked_writes": 80,
        "lost_writes": None,
        "load": {"requests": 0, "failures": 0},
    },
    verdicts=[{"metric": "rto_s", "value": None, "target": 900.0, "passed": False}],
    passed=False,
    steps=[
        {
            "name": "restore latest RDS snapshot",
            "started_at": "2026-11-10T10:00:40Z",
            "duration_s": 12.0,
            "ok": False,
            "detail": "interrupted",
        }
    ],
    artifacts={"journal": "journal.json", "timeline": "timeline.csv"},
)
DRY_RUN = _result(
    "ecs-task-failure",
    "1.1",
    ended_at="2026-11-10T10:00:01.250000Z",
    fault={"action": "not injected", "resources": [], "injected_at": None},
    measurements={
        "detect_s": None,
        "rto_s": None,
        "rpo_s": None,
        "acked_writes": None,
        "lost_writes": None,
        "load": {"requests": 0, "failures": 0, "p95_ms": None},
    },
    verdicts=[],
    passed=False,
    artifacts={"journal": "journal.json"},
    findings=[],
    dry_run=True,
    planned_calls=[{"service": "ecs", "operation": "StopTask", "params": {"cluster": "mpac"}}],
    planned_steps=[],
)
EXAMPLES = {"passed": PASSED, "missed": MISSED, "aborted": ABORTED, "dry-run": DRY_RUN}


# ---------------------------------------------------------------- the structural walk


def _accepted(node: dict[str, Any]) -> list[Any] | None:
    """The values a node's ``const``/``enum`` allow, None when it has neither."""
    if "const" in node:
        return [node["const"]]
    return list(node["enum"]) if "enum" in node else None


def _kinds(value: Any) -> set[str]:
    return {value} if isinstance(value, str) else set(value)


def incompatibilities(v1: Any, new: Any, where: str = "result.json") -> Iterator[str]:
    """How ``new`` fails to keep what schema ``v1`` says: removed, retyped, narrowed, required."""
    if not isinstance(v1, dict) or not isinstance(new, dict):
        if v1 != new:
            yield f"{where}: {v1!r} became {new!r}"
        return
    for key, value in v1.items():
        if key in ANNOTATIONS or key in VALUES:
            continue
        if key not in new:
            yield f"{where}: {key} removed"
        elif key == "properties":
            for name, sub in value.items():
                if name not in new[key]:
                    yield f"{where}.{name}: field removed"
                else:
                    yield from incompatibilities(sub, new[key][name], f"{where}.{name}")
        elif key == "required":
            if lost := sorted(set(value) - set(new[key])):
                yield f"{where}: no longer required: {', '.join(lost)}"
        elif key == "type":
            if _kinds(value) != _kinds(new[key]):
                yield f"{where}: retyped from {value!r} to {new[key]!r}"
        elif key in ("items", "additionalProperties"):
            yield from incompatibilities(value, new[key], f"{where}[{key}]")
        elif value != new[key]:
            yield f"{where}: {key} changed from {value!r} to {new[key]!r}"
    old_values, new_values = _accepted(v1), _accepted(new)
    if old_values is not None:
        lost_values = [v for v in old_values if new_values is None or v not in new_values]
        if lost_values:
            yield f"{where}: no longer accepts {', '.join(map(repr, lost_values))}"
        gained = [v for v in new_values or () if v not in old_values]
        if gained and where != VERSION_AT:
            yield f"{where}: enum grew by {', '.join(map(repr, gained))} (v1 results may carry it)"
    elif new_values is not None:
        yield f"{where}: narrowed to {new_values!r}"
    if added := sorted(set(new.get("required", ())) - set(v1.get("required", ()))):
        yield f"{where}: newly required: {', '.join(added)} (new fields must be optional)"
    for key in sorted(set(new) - set(v1) - ADDITIVE - set(VALUES) - {"required"}):
        yield f"{where}: new constraint {key} (v1 results may fail it)"


def _shared_v1() -> dict[str, Any]:
    """The shared original (version 1), or skip: a clone without ``shared/`` has none."""
    if not SHARED_SCHEMA.is_file():
        pytest.skip(f"no shared v1 schema at {SHARED_SCHEMA}: structural check not possible")
    return json.loads(SHARED_SCHEMA.read_text(encoding="utf-8"))


def _project() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- (a) structure


def test_project_schema_keeps_every_v1_field_type_and_enum():
    v1, project = _shared_v1(), _project()
    assert v1["properties"]["schema_version"] == {"const": 1}
    assert list(incompatibilities(v1, project)) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s["properties"]["measurements"]["properties"].pop("rpo_s"), "field removed"),
        (lambda s: s["properties"].pop("artifacts"), "result.json.artifacts: field removed"),
        (
            lambda s: s["properties"]["measurements"]["properties"]["rto_s"].update(type="number"),
            "measurements.rto_s: retyped",
        ),
        (
            lambda s: s["properties"]["status"]["enum"].remove("failed"),
            "no longer accepts 'failed'",
        ),
        (lambda s: s["properties"]["schema_version"].update(const=2), "no longer accepts 1"),
        (
            lambda s: s["properties"]["scenario"]["enum"].append("sqs-outage"),
            "enum grew by 'sqs-outage'",
        ),
        (lambda s: s["required"].remove("passed"), "no longer required: passed"),
        (lambda s: s["required"].append("quarter"), "newly required: quarter"),
        (lambda s: s["properties"]["run_id"].update(minLength=3), "minLength changed"),
        (lambda s: s["properties"]["run_id"].update(maxLength=40), "new constraint maxLength"),
        (
            lambda s: s["properties"]["artifacts"].update(additionalProperties={"type": "integer"}),
            "artifacts[additionalProperties]: retyped",
        ),
        (
            lambda s: s["properties"]["verdicts"]["items"]["properties"].pop("metric"),
            "verdicts[items].metric: field removed",
        ),
    ],
    ids=[
        "field-removed",
        "object-removed",
        "retyped",
        "enum-value-dropped",
        "version-replaced",
        "enum-value-added",
        "unrequired",
        "new-required",
        "tightened",
        "new-constraint",
        "map-retyped",
        "item-field-removed",
    ],
)
def test_structural_walk_flags_a_breaking_change(change, problem):
    v1 = _project()
    new = copy.deepcopy(v1)
    change(new)
    problems = list(incompatibilities(v1, new))
    assert any(problem in p for p in problems), problems


def test_structural_walk_allows_additive_changes():
    v1 = _project()
    new = copy.deepcopy(v1)
    versions = [*v1["properties"]["schema_version"]["enum"], 99]
    new["properties"]["schema_version"] = {"enum": versions, "description": "99 adds quarter"}
    new["properties"]["quarter"] = {"type": "string", "pattern": "^[0-9]{4}-Q[1-4]$"}
    new["properties"]["status"]["description"] = "reworded"
    new["$defs"] = {"time": {"type": "string", "format": "date-time"}}
    assert list(incompatibilities(v1, new)) == []


# ---------------------------------------------------------------- (b) v1 examples


@pytest.mark.parametrize("example", list(EXAMPLES), ids=str)
@pytest.mark.parametrize("schema", ["project", "shared-v1"])
def test_v1_example_results_valid_against_both_schemas(schema, example):
    document = _project() if schema == "project" else _shared_v1()
    assert validate_result(EXAMPLES[example], document) == []


@pytest.mark.parametrize("example", list(EXAMPLES), ids=str)
def test_v1_example_results_pass_the_harness_check(example):
    assert validate(EXAMPLES[example]) == []


def test_v1_results_of_older_versions_load_in_the_report(tmp_path: Path):
    for name, result in EXAMPLES.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps(result), encoding="utf-8")
    runset = load_runs(tmp_path, load_catalog().scenarios)
    assert sorted(runset.runs["scenario"]) == ["rds-failover", "redis-failover", "region-failover"]
    assert [(s.folder, s.reason.split(":")[0]) for s in runset.skipped] == [("dry-run", "dry run")]


# ---------------------------------------------------------------- (c) no shared folder


def test_structural_check_skipped_with_reason_when_shared_is_absent(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "SHARED_SCHEMA", tmp_path / "shared" / "x.json")
    with pytest.raises(pytest.skip.Exception, match="no shared v1 schema at .*structural"):
        _shared_v1()


# ---------------------------------------------------------------- (d) a missing schema


def test_harness_writes_against_the_project_copy():
    assert SCHEMA_PATH == PROJECT_ROOT / "contract" / "drill-result.schema.json"
    assert SCHEMA_CANDIDATES == (SCHEMA_PATH,)
    # 2: outcome, verdict reason, fault.effect, cleanup; 3: detection; 4: phases, rto_slo_s;
    # 5: detection alarms not played on the target
    assert contract.schema_version() == 5


def test_missing_schema_raises_not_passes(monkeypatch, tmp_path):
    missing = tmp_path / "contract" / "drill-result.schema.json"
    monkeypatch.setattr(contract, "SCHEMA_PATH", missing)
    with pytest.raises(HarnessError, match="is missing") as caught:
        validate(PASSED)
    assert str(missing) in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(HarnessError):
        validate_result({})


@pytest.mark.parametrize("text", ['{"type": ', '{"type": 5}'], ids=["broken-json", "bad-schema"])
def test_unreadable_schema_raises_one_line(monkeypatch, tmp_path, text):
    path = tmp_path / "drill-result.schema.json"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(contract, "SCHEMA_PATH", path)
    with pytest.raises(HarnessError, match=str(path)) as caught:
        validate(PASSED)
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- errors never crash the report

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=25,
)


def _paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """Every place inside a result where a value sits."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, sub in items:
        yield (*path, key)
        if isinstance(sub, dict | list):
            yield from _paths(sub, (*path, key))


def _assert_errors(errors: Any) -> None:
    assert isinstance(errors, list)
    assert all(isinstance(e, str) and e and "\n" not in e for e in errors), errors


@given(JSON)
def test_validate_result_never_raises_on_any_json(data):
    _assert_errors(validate_result(data))


@given(st.sampled_from(list(EXAMPLES.values())), st.data())
def test_validate_result_never_raises_on_a_damaged_result(example, data):
    damaged = copy.deepcopy(example)
    *parents, last = data.draw(st.sampled_from(sorted(_paths(damaged), key=repr)))
    holder = damaged
    for key in parents:
        holder = holder[key]
    if isinstance(holder, dict) and data.draw(st.booleans()):
        del holder[last]
    else:
        holder[last] = data.draw(JSON)
    _assert_errors(validate_result(damaged))


def test_a_failed_activity_reason_names_no_exception_classes():
    from mpac_drill.drill.result import _without_class_names

    line = (
        "chaoslib.exceptions.ActivityFailed: chaoslib.exceptions.ActivityFailed: "
        "rds-failover on staging: fault not injected: canary not started"
    )
    assert _without_class_names(line) == (
        "rds-failover on staging: fault not injected: canary not started"
    )
    kept = "route53 ChangeResourceRecordSets failed: InvalidChangeBatch: no RRSet"
    assert _without_class_names(kept) == kept

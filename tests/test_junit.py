"""The gate's JUnit XML, parsed back: counts, messages, properties, atomic writing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from mpac_drill.junit import DRILL_CASE, NOT_RUN_SUITE, write_junit


def _result(
    scenario: str = "rds-failover",
    *,
    status: str = "completed",
    verdicts: list[tuple[str, float | None, float | None, bool]] | None = None,
    passed: bool | None = None,
    reason: str | None = None,
    target: str = "staging",
) -> dict[str, Any]:
    rows = verdicts if verdicts is not None else [("rto_s", 42.0, 300.0, True)]
    result: dict[str, Any] = {
        "schema_version": 1,
        "run_id": f"20261127T143501Z-{scenario}-{target}",
        "scenario": scenario,
        "runbook_section": "1.2",
        "target": target,
        "started_at": "2026-11-27T14:35:01Z",
        "ended_at": "2026-11-27T14:37:01.500000Z",
        "status": status,
        "fault": {"action": "inject", "injected_at": None},
        "measurements": {
            "detect_s": None,
            "rto_s": None,
            "rpo_s": None,
            "acked_writes": None,
            "lost_writes": None,
            "load": {"requests": 0, "failures": 0},
        },
        "verdicts": [{"metric": m, "value": v, "target": t, "passed": p} for m, v, t, p in rows],
        "passed": all(r[3] for r in rows) if passed is None else passed,
        "artifacts": {"journal": "journal.json"},
    }
    if reason is not None:
        result["reason"] = reason
    return result


def _write(tmp_path: Path, results: list[dict[str, Any]], **kwargs: Any) -> ET.Element:
    path = tmp_path / "gate-junit.xml"
    write_junit(results, path, **kwargs)
    return ET.parse(path).getroot()


def _counts(element: ET.Element) -> tuple[int, int, int, int]:
    return tuple(
        int(element.get(k, "-1"))  # type: ignore[return-value]
        for k in ("tests", "failures", "errors", "skipped")
    )


def _cases(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {(c.get("classname", ""), c.get("name", "")): c for c in root.iter("testcase")}


def test_write_junit_all_targets_met_one_passing_case_per_verdict(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        [
            _result(
                "rds-failover", verdicts=[("rto_s", 42.0, 300.0, True), ("rpo_s", 0.0, 900.0, True)]
            ),
            _result("ecs-task-failure", verdicts=[("rto_s", 12.5, 900.0, True)]),
        ],
    )
    assert root.tag == "testsuites" and root.get("name") == "mpac-drill gate"
    assert _counts(root) == (3, 0, 0, 0)
    cases = _cases(root)
    assert set(cases) == {
        ("rds-failover", "rto_s"),
        ("rds-failover", "rpo_s"),
        ("ecs-task-failure", "rto_s"),
    }
    out = cases[("rds-failover", "rto_s")].findtext("system-out")
    assert out == "rto_s = 42 s, target 300 s: met (margin +258.0 s)"
    suite = root.find("testsuite")
    assert suite is not None and suite.get("time") == "120.500"
    assert suite.get("timestamp") == "2026-11-27T14:35:01Z"


def test_write_junit_properties_name_run_and_target(tmp_path: Path) -> None:
    root = _write(tmp_path, [_result(target="staging")])
    suite = root.find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["run_id"] == "20261127T143501Z-rds-failover-staging"
    assert props["target"] == "staging"
    assert props["scenario"] == "rds-failover"
    assert props["status"] == "completed" and props["passed"] == "true"


def test_write_junit_missed_target_failure_with_value_and_target(tmp_path: Path) -> None:
    root = _write(
        tmp_path, [_result(verdicts=[("rto_s", 412.25, 300.0, False), ("rpo_s", 0.0, 900.0, True)])]
    )
    assert _counts(root) == (2, 1, 0, 0)
    failure = _cases(root)[("rds-failover", "rto_s")].find("failure")
    assert failure is not None
    assert failure.get("message") == "rto_s = 412.2 s, target 300 s: MISSED (margin -112.2 s)"
    assert failure.get("type") == "TargetMissed"
    assert _cases(root)[("rds-failover", "rpo_s")].find("failure") is None


def test_write_junit_never_recovered_failure_says_not_measured(tmp_path: Path) -> None:
    root = _write(tmp_path, [_result(verdicts=[("rto_s", None, 300.0, False)])])
    failure = _cases(root)[("rds-failover", "rto_s")].find("failure")
    assert failure is not None
    assert failure.get("message") == "rto_s = not measured, target 300 s: MISSED"


def test_write_junit_aborted_and_failed_runs_error_cases_with_reason(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        [
            _result(
                "rds-failover",
                status="aborted",
                verdicts=[],
                passed=False,
                reason="stop condition: failure rate 0.9 above 0.5 for 300 s",
            ),
            _result(
                "redis-failover",
                status="failed",
                verdicts=[],
                passed=False,
                reason="sandbox is not running",
            ),
            _result("ecs-task-failure"),
        ],
    )
    assert _counts(root) == (3, 0, 2, 0)
    aborted = _cases(root)[("rds-failover", DRILL_CASE)].find("error")
    failed = _cases(root)[("redis-failover", DRILL_CASE)].find("error")
    assert aborted is not None and failed is not None
    assert aborted.get("type") == "aborted"
    assert aborted.get("message") == (
        "aborted: stop condition: failure rate 0.9 above 0.5 for 300 s"
    )
    assert failed.get("message") == "failed: sandbox is not running"


def test_write_junit_not_run_scenarios_skipped(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        [_result()],
        not_run={
            "region-failover": "no experiment for region-failover yet",
            "rds-pitr": "sandbox has no PITR",
        },
    )
    assert _counts(root) == (3, 0, 0, 2)
    suite = [s for s in root.findall("testsuite") if s.get("name") == NOT_RUN_SUITE]
    assert len(suite) == 1 and _counts(suite[0]) == (2, 0, 0, 2)
    skipped = _cases(root)[("region-failover", DRILL_CASE)].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "not run: no experiment for region-failover yet"


def test_write_junit_run_not_passed_although_verdicts_met_fails_drill_case(
    tmp_path: Path,
) -> None:
    root = _write(tmp_path, [_result(passed=False)])
    assert _counts(root) == (2, 1, 0, 0)
    failure = _cases(root)[("rds-failover", DRILL_CASE)].find("failure")
    assert failure is not None
    assert "deviated" in failure.get("message", "")


def test_write_junit_suite_counts_per_run_and_custom_name(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        [
            _result("rds-failover", verdicts=[("rto_s", 400.0, 300.0, False)]),
            _result(
                "ecs-task-failure",
                status="aborted",
                verdicts=[("rto_s", 10.0, 900.0, True)],
                passed=False,
                reason="operator interrupt",
            ),
        ],
        suite_name="nightly gate",
    )
    assert root.get("name") == "nightly gate"
    first, second = root.findall("testsuite")
    assert _counts(first) == (1, 1, 0, 0)
    assert _counts(second) == (2, 0, 1, 0)
    assert _counts(root) == (3, 1, 1, 0)


def test_write_junit_control_characters_in_reason_still_valid_xml(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        [
            _result(
                status="failed",
                verdicts=[],
                passed=False,
                reason='psql said \x1b[31mboom\x00 <&> "quoted"\nline 2',
            )
        ],
    )
    error = _cases(root)[("rds-failover", DRILL_CASE)].find("error")
    assert error is not None
    assert '<&> "quoted"\nline 2' in error.get("message", "")


def test_write_junit_empty_results_valid_empty_report(tmp_path: Path) -> None:
    root = _write(tmp_path, [])
    assert _counts(root) == (0, 0, 0, 0) and root.findall("testsuite") == []


def test_write_junit_existing_file_replaced_no_temp_left(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "gate-junit.xml"
    write_junit([_result(verdicts=[("rto_s", 999.0, 300.0, False)])], out)
    write_junit([_result()], out)
    assert _counts(ET.parse(out).getroot()) == (1, 0, 0, 0)
    assert [p.name for p in out.parent.iterdir()] == ["gate-junit.xml"]
    assert out.read_bytes().startswith(b"<?xml version='1.0' encoding='utf-8'?>")

"""The quarterly report's "Readiness between drills" section, from stored check runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from mpac_drill.readiness.history import write_check
from reports import build_report
from reports.readiness import check_frame, per_check

START = datetime(2026, 10, 5, 0, 0, tzinfo=UTC)


def _run(at: datetime, status: str, age_s: float) -> dict:
    def row(id_: str, st: str, value: float | None) -> dict:
        return {
            "id": id_,
            "scenario": "region-failover",
            "section": "1.4",
            "what": id_,
            "component": "db",
            "status": st,
            "measured": None,
            "value": value,
            "threshold": "≤ 15.0 min",
            "evidence": "test",
            "fix": None,
            "error": False,
        }

    rows = [row("ecs.svc-portal.tasks", status, 2), row("dr.smartpos.data_age", "pass", age_s)]
    return {
        "schema_version": 1,
        "kind": "check",
        "target": "staging",
        "target_kind": "aws",
        "environment": "staging",
        "started_at": at.isoformat(),
        "finished_at": (at + timedelta(seconds=1)).isoformat(),
        "duration_s": 1.0,
        "calls": 12,
        "scenarios": ["region-failover"],
        "exit_code": 0,
        "summary": {"pass": 2, "warn": 0, "fail": 0, "not checked": 0},
        "rows": rows,
    }


def _history(runs: Path) -> None:
    statuses = ["pass", "fail", "fail", "fail", "pass", "fail", "pass", "pass"]
    for hour, status in enumerate(statuses):
        write_check(_run(START + timedelta(hours=hour), status, 300 + 60 * hour), runs)
    write_check(_run(datetime(2026, 7, 1, tzinfo=UTC), "fail", 60), runs)  # another quarter


def test_share_passed_and_longest_failing_stretch(tmp_path: Path) -> None:
    _history(tmp_path)
    frame, problems = check_frame(tmp_path, "2026-Q4")
    assert not problems and frame["at"].nunique() == 8
    tasks = per_check(frame).set_index("id").loc["ecs.svc-portal.tasks"]
    assert tasks["passed_share"] == 4 / 8
    assert tasks["longest_fail_h"] == 3.0  # failing from hour 1 until it passed at hour 4


def test_report_gains_the_readiness_section_and_rpo_curve(tmp_path: Path) -> None:
    runs, out = tmp_path / "runs", tmp_path / "out"
    _history(runs)
    build_report("2026-Q4", runs_dir=runs, out_dir=out)
    md = (out / "2026-Q4.md").read_text(encoding="utf-8")
    assert "## Readiness between drills" in md
    assert "| ecs.svc-portal.tasks |" in md and "50%" in md and "3.0 h" in md
    assert (out / "2026-Q4-rpo-readiness.png").stat().st_size > 1000

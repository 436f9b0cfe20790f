"""The report's Detection section shows the region drills (§1.4, §1.5: Route53's
health-check alarm) like the others, and an alarm not played on its target as such: never
a missed figure, and a run whose alarms were all not played is not judged for §3.1."""

from __future__ import annotations

from pathlib import Path

from reports import build_report
from tests.reports.test_detection_report import Q, _alarm, _record, _section, _with_detection


def _unplayed(name: str) -> dict:
    return {
        "name": name,
        "exists": False,
        "state": None,
        "state_updated_at": None,
        "history": [],
        "played": False,
        "not_played": "Route53 health checks are played only by the region drill",
    }


def _rows(section: str) -> dict[tuple[str, str], list[str]]:
    return {
        (cells[0], cells[2]): cells
        for cells in (
            [c.strip() for c in line.strip()[2:-2].split(" | ")]
            for line in section.splitlines()
            if line.startswith("| ")
        )
    }


def test_region_drills_have_rows_and_not_played_is_said_not_judged(
    make_run, runs_dir: Path, tmp_path: Path
):
    region = _record(
        [_alarm("Route53-HealthCheck-Failed", 1003.0)],
        [
            {
                "id": "R53-PSBX0001",
                "title": "Route53-HealthCheck-Failed",
                "triggered_at": 1003.0,
                "acknowledged_at": 1004.0,
            }
        ],
        source="sandbox",
        severity="P0",
        respond=300.0,
    )
    pgw = _record(
        [_unplayed("Route53-PGW-HealthCheck-Failed")],
        [],
        source="sandbox",
        severity="P1",
        respond=900.0,
    )
    assert pgw["outcome"] == "not played"
    _with_detection(make_run, "region-failover", "sandbox", "2026-11-03T10:00:00Z", region, "1.4")
    _with_detection(make_run, "pgw-region-failover", "sandbox", "2026-11-04T10:00:00Z", pgw, "1.5")
    build_report(Q, runs_dir=runs_dir, out_dir=tmp_path / "out")
    md = (tmp_path / "out" / f"{Q}.md").read_text(encoding="utf-8")
    section = _section(md)
    rows = _rows(section)
    r = rows[("region-failover", "sandbox (rehearsal)")]
    assert r[3] == "P0 (≤ 300 s)" and r[5:9] == ["3 s (met)", "3 s (met)", "4 s (met)", "detected"]
    p = rows[("pgw-region-failover", "sandbox (rehearsal)")]
    assert p[5:9] == ["not played on this target"] * 3 + ["not played"]
    assert "sandbox rehearsals: 1 of 1 met" in section  # the unplayed run is not judged
    assert "1 drill(s) whose alarms are not played on their target not judged" in section
    assert "| D1 |" not in section  # not played is never "missing"

"""The report's Detection section: alarm, page and ack per scenario against §3.1, the
quarter's response compliance (real targets apart from sandbox rehearsals), the D1-D3
runbook-findings rows, and the timeline chart's detection markers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mpac_drill.measure.detection import figures, findings
from reports import build_report, charts
from reports import columns as C

Q = "2026-Q4"


def _record(alarms, incidents, *, source, pager=True, severity="P1", respond=900.0):
    reading = {"alarms": alarms, "incidents": incidents, "calls": 3}
    return figures(
        reading,
        injected_at=1000.0,
        bound_s=1800,
        severity=severity,
        respond_s=respond,
        update_s=respond * 2,
        source=source,
        pager=pager,
    )


def _alarm(name, fired_at=None, exists=True):
    history = [{"at": 900.0, "from": None, "to": "OK"}]
    if fired_at is not None:
        history.append({"at": fired_at, "from": "OK", "to": "ALARM"})
    return {
        "name": name,
        "exists": exists,
        "state": history[-1]["to"] if exists else None,
        "state_updated_at": history[-1]["at"] if exists else None,
        "history": history if exists else [],
    }


def _with_detection(make_run, scenario, target, started_at, det, section):
    folder = make_run(scenario, target=target, started_at=started_at, schema_version=2)

    def change(data):
        data["schema_version"] = 3
        data["detection"] = det
        found = findings(det, section)
        if found:
            data["findings"] = found

    make_run.edit(folder, change)
    return folder.name


def _section(md: str) -> str:
    start = md.index("\n## Detection\n")
    return md[start : md.find("\n## ", start + 1)]


def test_detection_section_judges_each_figure_and_counts_compliance(
    make_run, runs_dir: Path, tmp_path: Path
):
    late_ack = _record(
        [_alarm("ECS-TaskCount-Low", 1120.0)],
        [
            {
                "id": "P1",
                "title": "ECS-TaskCount-Low",
                "triggered_at": 1180.0,
                "acknowledged_at": 2000.0,
            }
        ],  # fmt: skip
        source="aws+pagerduty",
    )
    rehearsal = _record(
        [_alarm("ECS-TaskCount-Low", 1002.0)],
        [
            {
                "id": "s1",
                "title": "ECS-TaskCount-Low",
                "triggered_at": 1002.1,
                "acknowledged_at": 1004.1,
            }
        ],  # fmt: skip
        source="sandbox",
    )
    missing = _record(
        [_alarm("RDS-DatabaseConnections-Zero", exists=False)],
        [],
        source="aws",
        pager=False,
        severity="P0",
        respond=300.0,
    )
    aws_run = _with_detection(
        make_run, "ecs-task-failure", "staging", "2026-11-03T10:00:00Z", late_ack, "1.1"
    )
    _with_detection(
        make_run, "ecs-task-failure", "sandbox", "2026-11-04T10:00:00Z", rehearsal, "1.1"
    )
    rds_run = _with_detection(
        make_run, "rds-failover", "staging", "2026-11-05T10:00:00Z", missing, "1.2"
    )
    build_report(Q, runs_dir=runs_dir, out_dir=tmp_path / "out")
    md = (tmp_path / "out" / f"{Q}.md").read_text(encoding="utf-8")
    section = _section(md)
    rows = {
        (cells[0], cells[2]): cells
        for cells in (
            [c.strip() for c in line.strip()[2:-2].split(" | ")]
            for line in section.splitlines()
            if line.startswith("| ecs-task-failure | ") or line.startswith("| rds-failover | ")
        )
    }
    aws = rows[("ecs-task-failure", "aws+pagerduty")]
    assert aws[1] == f"`{aws_run}`"
    assert aws[3] == "P1 (≤ 900 s)"
    assert aws[5:8] == ["120 s (met)", "180 s (met)", "1000 s (missed)"]
    sandbox = rows[("ecs-task-failure", "sandbox (rehearsal)")]
    assert sandbox[5:8] == ["2 s (met)", "2.1 s (met)", "4.1 s (met)"]
    rds = rows[("rds-failover", "aws (no pager read)")]
    assert rds[5:9] == ["— (missed)", "not read", "not read", "missed detection"]
    # the late ack and the missing alarm both miss §3.1; the rehearsal is counted apart
    assert "0 of 2 drill(s) on a real target met every §3.1 response time" in section
    assert "sandbox rehearsals: 1 of 1 met" in section
    # D1 in the section and in the runbook-findings table; D2/D3 listed, not yet exercised
    assert f"| D1 | `{rds_run}` |" in section
    findings_md = md[md.index("\n## Runbook findings\n") :]
    assert "| D1 | 1.1-1.5 |" in findings_md and "exposed by 1 run(s)" in findings_md
    assert "| D3 | 1.1, §3 |" in findings_md


def test_no_detection_recorded_says_so_and_shows_no_compliance(make_run, runs_dir, tmp_path):
    make_run("ecs-task-failure", started_at="2026-11-03T10:00:00Z", schema_version=2)
    build_report(Q, runs_dir=runs_dir, out_dir=tmp_path / "out")
    section = _section((tmp_path / "out" / f"{Q}.md").read_text(encoding="utf-8"))
    assert f"No drill of {Q} recorded its detection chain." in section
    assert "compliance not shown" in section


def test_timeline_chart_marks_alarm_page_and_ack():
    timeline = pd.DataFrame(
        {
            C.T_REL: [-5.0, 0.0, 5.0, 10.0],
            C.SERVICE: ["svc-portal"] * 4,
            C.OK: [1, 0, 0, 1],
            C.HTTP_STATUS: [200, 503, 503, 200],
            C.LATENCY: [5.0, 5.0, 5.0, 5.0],
        }
    )
    traffic = pd.DataFrame(columns=[C.T_REL, C.REQUESTS, C.FAILURES, C.P95])
    plain = charts.timeline_chart(timeline, traffic, title="t", detect_s=0.5, rto_s=10.0)
    marked = charts.timeline_chart(
        timeline, traffic, title="t", detect_s=0.5, rto_s=10.0, alarm_s=2.0, page_s=2.5, ack_s=6
    )
    assert plain != marked
    again = charts.timeline_chart(
        timeline, traffic, title="t", detect_s=0.5, rto_s=10.0, alarm_s=2.0, page_s=2.5, ack_s=6
    )
    assert marked == again  # deterministic: the markers are what differs

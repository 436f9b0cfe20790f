"""Contract version 2 in the report: inconclusive and not-judged runs shown as such, the
fault's effect and the clean-ups per run, the target on every row, and no trend of one quarter.

Results are built with the run factory (``schema_version=2`` writes what the harness writes).
"""

from __future__ import annotations

import csv
import io
import re

import pandas as pd
import pytest

from mpac_drill.errors import ExitCode
from reports import build_report, charts, metrics
from reports import columns as C
from reports.drills import NO_TREND
from reports.load import load_runs
from reports.render_md import escape

Q = "2027-Q1"  # the catalog schedules region-failover alone: nothing else is "not run"
WHY = (
    "the fault took effect but no sampled endpoint ever failed: the observer may not be "
    "looking at the service it broke (sampled: svc-portal 127.0.0.1:8081/health)"
)
NO_EFFECT = "fault had no effect (tasks still RUNNING: t-1, t-2): nothing judged"
#: What the harness writes for an effective fault no user saw: no detection, RTO 0.0.
INCONCLUSIVE = {"schema_version": 2, "detect_s": None, "rto_s": 0.0, "inconclusive": WHY}
NOT_JUDGED = {
    "schema_version": 2,
    "status": "failed",
    "verdicts": [],
    "detect_s": None,
    "rto_s": None,
    "rpo_s": None,
    "reason": NO_EFFECT,
    "effect": {"verified": False, "evidence": "tasks still RUNNING: t-1, t-2"},
}


def _region(make_run, **kwargs):
    """The quarter's scheduled drill, met."""
    return make_run(
        "region-failover",
        started_at="2027-01-15T10:00:00Z",
        rto_s=7200.0,
        rpo_s=120.0,
        hz=0.1,
        rto_target=14400.0,
        **kwargs,
    )


def _build(runs_dir, out, catalog, quarter=Q):
    outcome = build_report(quarter, runs_dir=runs_dir, out_dir=out, catalog=catalog)
    md = outcome.markdown.read_text(encoding="utf-8")
    html = (out / f"{quarter}.html").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO((out / f"{quarter}.csv").read_text("utf-8"))))
    return outcome, md, html, {r["run_id"]: r for r in rows}


def _section(md: str, heading: str) -> str:
    start = md.index(f"\n## {heading}\n")
    end = md.find("\n## ", start + 1)
    return md[start : end if end != -1 else None]


def _run(md: str, run_id: str) -> str:
    """The Markdown of one run's section, to the next run's or scenario's heading."""
    start = md.index(f"\n#### Run {escape(run_id)}\n")
    return md[start : re.compile(r"\n###").search(md, start + 1).start()]


def _row(md: str, first: str) -> list[str]:
    (line,) = [x for x in md.splitlines() if x.startswith(f"| {first} | ")]
    return [c.strip() for c in line.strip()[2:-2].split(" | ")]


def test_build_report_inconclusive_run_shown_inconclusive_with_reason_not_met_or_missed(
    make_run, runs_dir, tmp_path, catalog
):
    _region(make_run, schema_version=2)
    unsure = make_run(
        "rds-failover", started_at="2027-01-05T10:00:00Z", target="aws-staging", **INCONCLUSIVE
    )
    run_id = make_run.read(unsure)["run_id"]
    outcome, md, html, rows = _build(runs_dir, tmp_path / "out", catalog)
    assert make_run.read(unsure)["outcome"] == "inconclusive"
    # the quarter: not compliant, yet nothing missed
    assert outcome.inconclusive == ["rds-failover"] and outcome.missed == []
    assert not outcome.compliant and outcome.exit_code == ExitCode.TARGET_MISSED
    summary = _section(md, "Compliance summary")
    assert (
        "**Overall: 1 of 2 scenarios met both targets (50 %): not shown compliant: "
        "1 drill(s) inconclusive.**" in summary
    )
    assert "Runs this quarter: 1 met, 0 missed a target, 1 inconclusive, 0 not judged" in summary
    row = _row(summary, "rds-failover")
    assert row[3:5] == ["—", "—"]  # RTO median and worst: no figure (not 0.0 s, not never)
    assert row[8:] == ["1 (1 inconclusive)", "**inconclusive**", "aws-staging"]
    # the violation and the run's own section, with the reason
    (line,) = [x for x in _section(md, "Violations").splitlines() if run_id in x]
    assert line.startswith("- **rds-failover: RTO inconclusive.**")
    assert "on target aws-staging" in line and escape(WHY) in line
    assert "MISSED" not in _section(md, "Drills")
    drills = _section(md, "Drills")
    assert f"**Inconclusive (target aws-staging):** RTO: {escape(WHY)}." in drills
    assert "It counts neither as met nor as missed." in drills
    assert _row(_run(md, run_id), "RTO") == [
        "RTO",
        "not measured (inconclusive)",
        "5 min",
        "—",
        "inconclusive",
    ]
    assert "inconclusive" in html and WHY in html and "Inconclusive (target aws-staging):" in html
    # the CSV: outcome and reason, no RTO verdict either way, the figure as recorded
    csv_row = rows[run_id]
    assert csv_row["outcome"] == "inconclusive" and csv_row["outcome_reason"] == f"RTO: {WHY}"
    assert csv_row["verdict"] == "inconclusive RTO" and csv_row["target"] == "aws-staging"
    assert (csv_row["rto_ok"], csv_row["rto_margin_s"], csv_row["rto_s"]) == ("", "", "0.0")
    assert {r["outcome"] for r in rows.values()} == {"met", "inconclusive"}


def test_build_report_inconclusive_beside_met_and_missed_counted_separately(
    make_run, runs_dir, tmp_path, catalog
):
    _region(make_run)
    make_run("rds-failover", started_at="2027-01-05T10:00:00Z", rto_s=80.0, schema_version=2)
    make_run("rds-failover", started_at="2027-01-06T10:00:00Z", **INCONCLUSIVE)
    make_run("redis-failover", started_at="2027-01-07T10:00:00Z", rto_s=400.0, rpo_s=None)
    outcome, md, _, rows = _build(runs_dir, tmp_path / "out", catalog)
    assert outcome.missed == ["redis-failover"] and outcome.inconclusive == ["rds-failover"]
    summary = _section(md, "Compliance summary")
    assert "(33 %): NOT compliant; 1 drill(s) inconclusive.**" in summary
    assert "Runs this quarter: 2 met, 1 missed a target, 1 inconclusive, 0 not judged" in summary
    rds = _row(summary, "rds-failover")
    assert rds[3] == rds[4] == "80.0 s"  # the inconclusive run is in no RTO figure
    assert rds[8:10] == ["2 (1 inconclusive)", "**inconclusive**"]
    assert _row(summary, "redis-failover")[9] == "**MISSED**"
    kinds = re.findall(r"^- \*\*([^*]+)\.\*\*", _section(md, "Violations"), re.M)
    assert kinds == ["rds-failover: RTO inconclusive", "redis-failover: RTO missed"]
    assert sorted(r["outcome"] for r in rows.values()) == ["inconclusive", "met", "met", "missed"]


def test_build_report_inconclusive_and_missed_in_one_run_missed_reason_kept(
    make_run, runs_dir, tmp_path, catalog
):
    make_run("rds-failover", rpo_s=1000.0, lost=3, **INCONCLUSIVE)  # RPO target 15 min
    outcome, md, _, rows = _build(runs_dir, tmp_path / "out", catalog, "2026-Q4")
    (row,) = rows.values()
    assert row["outcome"] == "missed" and row["verdict"] == "MISSED RPO; inconclusive RTO"
    assert row["outcome_reason"] == f"RTO: {WHY}"
    assert "rds-failover" in outcome.missed and outcome.inconclusive == []
    assert "The run also missed a target." in md


def test_build_report_not_judged_run_listed_with_reason(make_run, runs_dir, tmp_path, catalog):
    _region(make_run, schema_version=2)
    dud = make_run("ecs-task-failure", started_at="2027-01-16T10:00:00Z", **NOT_JUDGED)
    run_id = make_run.read(dud)["run_id"]
    assert make_run.read(dud)["outcome"] == "not judged"
    outcome, md, html, rows = _build(runs_dir, tmp_path / "out", catalog)
    assert outcome.missed == ["ecs-task-failure"] and outcome.inconclusive == []
    summary = _section(md, "Compliance summary")
    assert "1 met, 0 missed a target, 0 inconclusive, 1 not judged" in summary
    assert _row(summary, "ecs-task-failure")[8:] == ["1 (0 completed)", "not completed", "sandbox"]
    violation = next(x for x in _section(md, "Violations").splitlines() if run_id in x)
    assert violation.startswith("- **ecs-task-failure: drill failed.**")
    assert f"ended failed: {escape(NO_EFFECT)}" in violation
    drills = _section(md, "Drills")
    assert f"the run's own outcome: not judged. Folder `{dud.name}`." in drills
    assert f"Reason: {escape(NO_EFFECT)}." in drills
    assert "**Fault effect:** NOT seen by the platform; evidence: tasks still RUNNING" in drills
    assert NO_EFFECT in html
    row = rows[run_id]
    assert (row["outcome"], row["verdict"]) == ("not judged", "not judged (failed)")
    assert row["outcome_reason"] == row["reason"] == NO_EFFECT


def test_build_report_fault_effect_and_cleanup_shown_in_run_detail(
    make_run, runs_dir, tmp_path, catalog
):
    cleanup = [
        {
            "what": "restored instance",
            "resource": "mpac-db-pitr-1",
            "outcome": "DeleteDBInstance sent; deleting",
            "region": "ap-northeast-1",
        },
        {"what": "canary rows", "resource": "drill_canary", "outcome": "deleted 412 rows"},
    ]
    folder = make_run(
        "rds-failover",
        schema_version=2,
        target="aws-staging",
        effect={"verified": True, "evidence": "primary moved mpac-db-a -> mpac-db-b"},
        cleanup=cleanup,
        preflight=[{"check": "rds instance available", "ok": True}],
    )
    _, md, html, _ = _build(runs_dir, tmp_path / "out", catalog, "2026-Q4")
    drills = _section(md, "Drills")
    assert (
        "**Fault effect:** confirmed by the platform; evidence: primary moved mpac-db-a" in drills
    )
    assert "**Clean-up** (2): what the drill created or changed on target aws-staging" in drills
    assert _row(drills, "restored instance") == [
        "restored instance",
        "`mpac-db-pitr-1`",
        "ap-northeast-1",
        "DeleteDBInstance sent; deleting",
    ]
    assert _row(drills, "canary rows") == ["canary rows", "`drill_canary`", "—", "deleted 412 rows"]
    assert "<td>DeleteDBInstance sent; deleting</td>" in html
    assert "the run&#x27;s own outcome: met" in html or "the run's own outcome: met" in html
    assert make_run.read(folder)["cleanup"] == cleanup


def test_build_report_many_runs_inconclusive_row_names_target_and_reason(
    make_run, runs_dir, tmp_path, catalog
):
    for day in range(1, 14):
        make_run(
            "rds-failover",
            started_at=f"2026-10-{day:02d}T10:00:00Z",
            target="aws-staging" if day == 2 else "sandbox",
            hz=0.5,
            lead_s=4,
            tail_s=4,
            **(INCONCLUSIVE if day == 2 else {"rto_s": 30.0 + day}),
        )
    _, md, _, rows = _build(runs_dir, tmp_path / "out", catalog, "2026-Q4")
    drills = _section(md, "Drills").splitlines()
    (line,) = [x for x in drills if "20261002T100000Z" in x and x.startswith("| `")]
    cells = [c.strip() for c in line.strip()[2:-2].split(" | ")]
    assert cells[2:5] == ["aws-staging", "completed", "not measured (inconclusive)"]
    assert cells[-2:] == ["inconclusive RTO", f"RTO: {escape(WHY, in_table=True)}"]
    assert len(rows) == 13


def test_build_report_v1_results_meaning_unchanged_outcome_derived(
    make_run, runs_dir, tmp_path, catalog
):
    met = make_run("rds-failover", started_at="2026-11-01T10:00:00Z", rto_s=42.0)
    slow = make_run("rds-failover", started_at="2026-11-02T10:00:00Z", rto_s=400.0)
    stopped = make_run(
        "ecs-task-failure", status="aborted", rto_s=None, rpo_s=None, reason="operator stop"
    )
    # a schema 1 result carrying schema 2 words keeps schema 1's meaning: they are ignored
    make_run.edit(
        met, lambda d: d["verdicts"][0].update(outcome="inconclusive", reason="ignored in v1")
    )
    make_run.edit(met, lambda d: d.update(outcome="inconclusive"))
    outcome, md, _, rows = _build(runs_dir, tmp_path / "out", catalog, "2026-Q4")
    got = {f: (rows[f.name]["verdict"], rows[f.name]["outcome"]) for f in (met, slow, stopped)}
    assert got == {
        met: ("met", "met"),
        slow: ("MISSED RTO", "missed"),
        stopped: ("not judged (aborted)", "not judged"),
    }
    assert rows[stopped.name]["outcome_reason"] == "operator stop"
    assert outcome.inconclusive == [] and "rds-failover" in outcome.missed
    assert "ignored in v1" not in md and "Inconclusive (target" not in md
    assert "the run judged itself passed" in md
    assert "Runs this quarter: 1 met, 1 missed a target, 0 inconclusive, 1 not judged" in md


def test_build_report_one_quarter_no_trend_png_says_so(make_run, runs_dir, tmp_path, catalog):
    out = tmp_path / "out"
    make_run("rds-failover", started_at="2026-08-01T10:00:00Z")
    make_run("rds-failover", started_at="2026-11-01T10:00:00Z")
    build_report("2026-Q4", runs_dir=runs_dir, out_dir=out, catalog=catalog)
    assert (out / "2026-Q4-trend.png").is_file()  # two quarters: a chart
    for p in runs_dir.glob("20260801T*/*"):
        p.unlink()
    next(runs_dir.glob("20260801T*")).rmdir()
    outcome, md, html, _ = _build(runs_dir, out, catalog, "2026-Q4")
    assert not (out / "2026-Q4-trend.png").exists()  # the earlier build's chart removed
    assert not [p for p in outcome.paths if "trend" in p.name]
    trend = _section(md, "Trend")
    assert f"\n{NO_TREND}\n" in trend and "trend.png" not in trend and "shaded" not in trend
    assert _row(trend, "rds-failover")[1:3] == ["2026-Q4", "1 (1)"]
    assert f"<p>{NO_TREND}</p>" in html and html.count("data:image/png") == 1  # the timeline


@pytest.mark.parametrize("n", [2, 3, 7, 8, 14])
def test_trend_placement_equal_figures_apart_inside_band(n):
    placed = charts.trend_placement(n)
    offsets = [offset for offset, _, _ in placed]
    assert len(set(offsets)) == n and all(abs(o) < 0.4 for o in offsets)  # band is +-0.4
    assert len({(marker, hollow) for _, marker, hollow in placed}) == n
    assert charts.trend_placement(n) == placed  # no randomness: same bytes every build


def test_build_report_v2_rebuild_byte_identical(make_run, runs_dir, tmp_path, catalog):
    make_run("rds-failover", started_at="2026-08-05T10:00:00Z", rto_s=40.0)
    make_run("rds-failover", started_at="2026-11-05T10:00:00Z", rto_s=40.0, schema_version=2)
    make_run("redis-failover", started_at="2026-11-06T10:00:00Z", rpo_s=None, **INCONCLUSIVE)
    make_run(
        "ecs-task-failure",
        started_at="2026-11-07T10:00:00Z",
        cleanup=[{"what": "tasks", "resource": "svc", "outcome": "replaced"}],
        **NOT_JUDGED,
    )
    first = build_report("2026-Q4", runs_dir=runs_dir, out_dir=tmp_path / "a", catalog=catalog)
    second = build_report("2026-Q4", runs_dir=runs_dir, out_dir=tmp_path / "b", catalog=catalog)
    assert any(p.name.endswith("-trend.png") for p in first.paths)
    for a, b in zip(first.paths, second.paths, strict=True):
        assert a.name == b.name and a.read_bytes() == b.read_bytes(), a.name


@pytest.mark.parametrize(
    ("kwargs", "outcome"),
    [({}, C.MET), ({"rto_s": 400.0}, C.MISSED), (INCONCLUSIVE, C.INCONCLUSIVE)],
    ids=["met", "missed", "inconclusive"],
)
def test_judge_runs_v2_verdicts_outcome_and_no_rto_verdict_when_inconclusive(
    make_run, runs_dir, catalog, kwargs, outcome
):
    make_run("rds-failover", artifacts=False, **{"schema_version": 2, **kwargs})
    (r,) = metrics.judge_runs(load_runs(runs_dir, catalog.scenarios).runs, catalog).to_dict(
        "records"
    )
    assert r[C.OUTCOME] == outcome
    assert r[C.RTO_INCONCLUSIVE] == (outcome == C.INCONCLUSIVE)
    assert pd.isna(r[C.RTO_OK]) == (outcome == C.INCONCLUSIVE)

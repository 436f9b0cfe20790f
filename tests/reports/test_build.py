"""build_report end to end: the figures in the Markdown and CSV are those of the run folders."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import statistics

import pytest

from mpac_drill.errors import ExitCode, UsageError
from reports import build_report
from reports.drills import chart_file
from reports.render_md import escape

Q = "2026-Q4"


def _rows(md: str, first: str) -> list[list[str]]:
    """Cells of every Markdown table row whose first cell is ``first``."""
    return [
        [c.strip() for c in line.strip()[2:-2].split(" | ")]
        for line in md.splitlines()
        if line.startswith(f"| {first} | ")
    ]


def _section(md: str, heading: str) -> str:
    start = md.index(f"\n## {heading}\n")
    end = md.find("\n## ", start + 1)
    return md[start : end if end != -1 else None]


def _csv(path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


@pytest.fixture(scope="module")
def quarter(tmp_path_factory, factory_at, catalog):
    """A 2026-Q4 with a missed RTO, an aborted drill, a missing artifact, a region drill
    with steps and a finding, a broken folder, and earlier quarters for the trend."""
    root = tmp_path_factory.mktemp("quarter")
    make = factory_at(root / "runs")
    folders = {
        "rds": [
            make("rds-failover", started_at="2026-10-05T09:00:00Z", rto_s=42.5),
            make(
                "rds-failover",
                started_at="2026-11-02T09:00:00Z",
                rto_s=61.0,
                rpo_s=2.5,
                acked=300,
                lost=4,
            ),
            make("rds-failover", started_at="2026-12-01T09:00:00Z", rto_s=400.0),
        ],
        "redis": [
            make(
                "redis-failover",
                started_at="2026-10-06T09:00:00Z",
                rto_s=20.0,
                rpo_s=None,
                acked=None,
                lost=None,
                impact={
                    "revoked_token_accepted_s": 20.0,
                    "duplicate_orders": 0,
                    "rate_limit_bypassed": 17,
                    "token_lifetime_s": 900,
                },
            )
        ],
        "ecs": [
            make(
                "ecs-task-failure",
                started_at="2026-10-07T09:00:00Z",
                status="aborted",
                rto_s=None,
                rpo_s=None,
                reason="stop condition: error rate above 50 %",
            )
        ],
        "region": [
            make(
                "region-failover",
                started_at="2026-11-20T08:00:00Z",
                rto_s=5400.0,
                rpo_s=300.0,
                hz=0.2,
                steps=[
                    {
                        "name": "activate DR stack",
                        "started_at": "2026-11-20T08:01:00Z",
                        "duration_s": 1200.0,
                        "ok": True,
                        "detail": "us-east-1",
                    },
                    {
                        "name": "switch DNS",
                        "started_at": "2026-11-20T08:21:00Z",
                        "duration_s": 300.0,
                        "ok": False,
                        "detail": "named ap-northeast-1",
                    },
                ],
                findings=[
                    {
                        "id": "F1",
                        "section": "1.4",
                        "summary": "DNS step names the failed region",
                        "evidence": "route53 --region ap-northeast-1",
                    }
                ],
            )
        ],
        "obs": [make("obs-failure", started_at="2026-11-21T08:00:00Z", rto_s=1200.0)],
        "old": [
            make("rds-failover", started_at="2026-05-05T09:00:00Z", rto_s=90.0),
            make("rds-failover", started_at="2026-08-05T09:00:00Z", rto_s=75.0),
        ],
    }
    (folders["obs"][0] / "timeline.csv").unlink()
    broken = root / "runs" / "20261201T000000Z-rds-failover-sandbox"
    broken.mkdir()
    (broken / "result.json").write_text('{"schema_version": 1,', encoding="utf-8")
    outcome = build_report(Q, runs_dir=root / "runs", out_dir=root / "out", catalog=catalog)
    md = (root / "out" / f"{Q}.md").read_text(encoding="utf-8")
    return {
        "outcome": outcome,
        "md": md,
        "folders": folders,
        "root": root,
        "make": make,
        "csv": _csv(root / "out" / f"{Q}.csv"),
    }


def test_build_report_summary_rows_equal_run_folder_figures(quarter):
    results = [quarter["make"].read(f) for f in quarter["folders"]["rds"]]
    rtos = [r["measurements"]["rto_s"] for r in results]
    rpos = [r["measurements"]["rpo_s"] for r in results]
    lost = sum(r["measurements"]["lost_writes"] for r in results)
    acked = sum(r["measurements"]["acked_writes"] for r in results)
    (row,) = _rows(_section(quarter["md"], "Compliance summary"), "rds-failover")
    assert row[1] == "1.2"
    assert row[2] == "5 min"
    assert row[3].startswith(f"{statistics.median(rtos):.1f} s")
    assert row[4].startswith(f"{max(rtos):.1f} s")
    assert row[5] == "15 min"
    assert row[6] == f"{max(rpos):.1f} s"
    assert row[7] == f"{lost} of {acked}"
    assert row[8] == "3"
    assert row[9] == "**MISSED**"


def test_build_report_csv_rows_equal_result_json(quarter):
    rows = {r["run_id"]: r for r in quarter["csv"]}
    in_quarter = [f for key, fs in quarter["folders"].items() if key != "old" for f in fs]
    assert len(rows) == len(in_quarter) == quarter["outcome"].n_runs
    for folder in in_quarter:
        result = quarter["make"].read(folder)
        row, m = rows[result["run_id"]], result["measurements"]
        assert row["scenario"] == result["scenario"]
        assert row["status"] == result["status"]
        assert row["started_at"] == result["started_at"].replace(".000000Z", "Z")
        for key in ("rto_s", "rpo_s", "detect_s"):
            assert row[key] == ("" if m[key] is None else repr(float(m[key])))
        for key in ("acked_writes", "lost_writes"):
            assert row[key] == ("" if m[key] is None else str(m[key]))
        assert row["requests"] == str(m["load"]["requests"])
        assert row["quarter"] == Q


def test_build_report_missed_target_violation_listed_not_compliant(quarter):
    outcome = quarter["outcome"]
    slow = quarter["make"].read(quarter["folders"]["rds"][2])["run_id"]
    violations = _section(quarter["md"], "Violations")
    line = next(x for x in violations.splitlines() if "rds-failover: RTO missed" in x)
    assert escape(slow) in line and "400.0 s against 300.0 s" in line and "Follow-up" in line
    assert not outcome.compliant
    assert "rds-failover" in outcome.missed
    assert outcome.exit_code == ExitCode.TARGET_MISSED


def test_build_report_aborted_run_listed_not_judged(quarter):
    md = quarter["md"]
    (row,) = _rows(_section(md, "Compliance summary"), "ecs-task-failure")
    assert row[8:] == ["1 (0 completed)", "not completed", "sandbox"]
    assert "drill aborted." in md and "stop condition: error rate above 50 %" in md
    ecs = next(r for r in quarter["csv"] if r["scenario"] == "ecs-task-failure")
    assert ecs["verdict"] == "not judged (aborted)" and ecs["rto_ok"] == ""


def test_build_report_missing_artifact_run_kept_and_flagged(quarter):
    md = quarter["md"]
    (row,) = _rows(_section(md, "Compliance summary"), "obs-failure")
    assert row[4].startswith("1200.0 s") and row[9] == "met"
    assert "**Missing artifacts:** timeline. timeline.csv is missing." in md
    obs = next(r for r in quarter["csv"] if r["scenario"] == "obs-failure")
    assert obs["missing_artifacts"] == "timeline"


def test_build_report_broken_result_skipped_with_reason(quarter):
    (skipped,) = quarter["outcome"].skipped
    assert skipped.folder == "20261201T000000Z-rds-failover-sandbox"
    assert skipped.reason == "result.json is not valid JSON at line 1"
    assert _rows(_section(quarter["md"], "Skipped run folders"), f"`{skipped.folder}`") == [
        [f"`{skipped.folder}`", skipped.reason]
    ]


def test_build_report_several_quarters_trend_has_each(quarter):
    trend = _section(quarter["md"], "Trend")
    rds = {r[1]: r for r in _rows(trend, "rds-failover")}
    assert sorted(rds) == ["2026-Q2", "2026-Q3", "2026-Q4"]
    assert rds["2026-Q2"][4] == "90.0 s" and rds["2026-Q3"][4] == "75.0 s"
    assert rds["2026-Q4"][4].startswith("400.0 s")
    assert f"]({Q}-trend.png)" in trend


def test_trend_names_a_regression_against_the_previous_quarter(quarter):
    """The median RTO against the scenario's previous quarter, by gate --baseline's rule
    (more than 1 s and 25 % slower): the first quarter has nothing to compare with."""
    trend = _section(quarter["md"], "Trend")
    rds = {r[1]: r for r in _rows(trend, "rds-failover")}
    assert rds["2026-Q2"][6] == ""
    median = {q: float(r[3].split(" s")[0]) for q, r in rds.items()}
    for before, now in (("2026-Q2", "2026-Q3"), ("2026-Q3", "2026-Q4")):
        delta = median[now] - median[before]
        assert rds[now][6].startswith(f"{delta:+.2f} s")
        slower = delta > 1.0 and delta / median[before] > 0.25
        assert rds[now][6].endswith("REGRESSED") == slower
    assert ("regressed: the median RTO grew" in trend) == any(
        r[6].endswith("REGRESSED") for r in rds.values()
    )


def test_build_report_findings_grouped_unexercised_listed(quarter):
    findings = _section(quarter["md"], "Runbook findings")
    status = {r[0]: r[3] for fid in [f"F{i}" for i in range(1, 10)] for r in _rows(findings, fid)}
    assert status["F1"] == "exposed by 1 run(s)"
    assert all(status[f"F{i}"] == "not yet exercised" for i in range(2, 10))
    assert "DNS step names the failed region Evidence: route53 --region ap-northeast-1" in findings


def test_build_report_redis_impact_and_steps_rendered(quarter):
    md = quarter["md"]
    assert _rows(md, "(b) orders written twice") == [["(b) orders written twice", "0", "0", "ok"]]
    assert _rows(md, "switch DNS")[0][3] == "NO"
    region = quarter["folders"]["region"][0].name
    assert (quarter["root"] / "out" / chart_file(Q, "steps", region)).is_file()


def test_build_report_each_section_names_its_control(quarter):
    md = quarter["md"]
    for heading, control in [
        ("Compliance summary", "SOC 2 A1.3"),
        ("Violations", "SOC 2 A1.3"),
        ("Runbook findings", "PCI DSS 12.10.2"),
        ("12-month coverage", "PCI DSS 12.10.2"),
    ]:
        assert f"Answers: **{control}**" in _section(md, heading)


def test_build_report_manifest_hashes_verify(quarter):
    runs = quarter["root"] / "runs"
    lines = (quarter["root"] / "out" / f"{Q}.sha256").read_text().splitlines()
    assert len(lines) == sum(1 for p in runs.rglob("*") if p.is_file()) - 1  # broken excluded
    for line in lines:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((runs / name).read_bytes()).hexdigest() == digest


def test_build_report_html_self_contained_charts_embedded(quarter):
    out = quarter["root"] / "out"
    html = (out / f"{Q}.html").read_text(encoding="utf-8")
    embedded = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([^"]+)"', html)
    pngs = sorted(out.glob(f"{Q}-*.png"))
    assert len(embedded) == len(pngs) == 1 + 7 + 1  # trend, a timeline per run, one Gantt
    assert {base64.b64decode(e) for e in embedded} == {p.read_bytes() for p in pngs}
    assert not re.search(r"(?:src|href)=\"(?!data:|#)", html)


def test_build_report_rebuild_byte_identical(make_run, runs_dir, tmp_path, catalog):
    make_run("rds-failover", rto_s=12.25)
    gone = make_run("redis-failover", started_at="2026-12-02T10:00:00Z", rpo_s=None)
    first = build_report(Q, runs_dir=runs_dir, out_dir=tmp_path / "a", catalog=catalog)
    second = build_report(Q, runs_dir=runs_dir, out_dir=tmp_path / "b", catalog=catalog)
    for a, b in zip(first.paths, second.paths, strict=True):
        assert a.name == b.name and a.read_bytes() == b.read_bytes(), a.name
    stale = tmp_path / "b" / chart_file(Q, "timeline", gone.name)
    assert stale.is_file()
    for p in gone.iterdir():
        p.unlink()
    gone.rmdir()
    build_report(Q, runs_dir=runs_dir, out_dir=tmp_path / "b", catalog=catalog)
    assert not stale.exists()


def test_build_report_no_runs_says_so_signals_no_runs(make_run, runs_dir, tmp_path, catalog):
    make_run("rds-failover", started_at="2026-08-01T10:00:00Z")
    outcome = build_report(Q, runs_dir=runs_dir, out_dir=tmp_path / "out", catalog=catalog)
    assert outcome.no_runs and outcome.n_runs == 0 and not outcome.compliant
    assert outcome.exit_code == ExitCode.TARGET_MISSED
    assert outcome.not_run == list(catalog.scenarios)
    md = outcome.markdown.read_text(encoding="utf-8")
    assert f"**No runs:** no usable run folder counts in {Q} (run for it, or with a" in md
    assert len(_csv(tmp_path / "out" / f"{Q}.csv")) == 0


def test_build_report_run_for_a_quarter_counts_there_and_is_named(
    make_run, runs_dir, tmp_path, catalog
):
    early = make_run("rds-pitr", started_at="2026-11-27T10:00:00Z")
    make_run.edit(early, lambda r: r.update(quarter="2027-Q2"))
    make_run("rds-failover", started_at="2026-11-27T11:00:00Z")  # no quarter: its date's
    ahead = build_report("2027-Q2", runs_dir=runs_dir, out_dir=tmp_path / "a", catalog=catalog)
    assert ahead.n_runs == 1 and ahead.not_run == []
    md = ahead.markdown.read_text(encoding="utf-8")
    assert "Runs dated outside the quarter" in md and early.name.split("_")[0] in md
    now = build_report(Q, runs_dir=runs_dir, out_dir=tmp_path / "b", catalog=catalog)
    assert now.n_runs == 1
    assert "Runs dated outside the quarter" not in now.markdown.read_text(encoding="utf-8")


def test_build_report_malformed_run_quarter_skipped_with_reason(
    make_run, runs_dir, tmp_path, catalog
):
    bad = make_run("rds-failover")
    make_run.edit(bad, lambda r: r.update(quarter="2026-Q9"))
    outcome = build_report(Q, runs_dir=runs_dir, out_dir=tmp_path, catalog=catalog)
    assert outcome.no_runs
    assert "quarter '2026-Q9' is not YYYY-QN" in outcome.markdown.read_text(encoding="utf-8")


def test_build_report_empty_runs_dir_no_runs(runs_dir, tmp_path, catalog):
    runs_dir.mkdir()
    outcome = build_report("2027-Q2", runs_dir=runs_dir, out_dir=tmp_path, catalog=catalog)
    assert outcome.no_runs and outcome.not_run == ["rds-pitr"]


@pytest.mark.parametrize("bad", ["2026Q4", "2026-Q5", "2026-q4x", "", "Q4-2026", "26-Q1"])
def test_build_report_bad_quarter_usage_error(runs_dir, tmp_path, catalog, bad):
    runs_dir.mkdir()
    with pytest.raises(UsageError, match="bad quarter"):
        build_report(bad, runs_dir=runs_dir, out_dir=tmp_path, catalog=catalog)
    assert not list(tmp_path.glob("*.md"))


def test_build_report_missing_runs_dir_usage_error(tmp_path, catalog):
    with pytest.raises(UsageError, match="does not exist"):
        build_report(Q, runs_dir=tmp_path / "nope", out_dir=tmp_path, catalog=catalog)


def test_build_report_scheduled_met_compliant_exit_ok(make_run, runs_dir, tmp_path, catalog):
    make_run(
        "region-failover", started_at="2027-01-15T10:00:00Z", rto_s=7200.0, rpo_s=120.0, hz=0.1
    )
    outcome = build_report("2027-Q1", runs_dir=runs_dir, out_dir=tmp_path, catalog=catalog)
    assert outcome.compliant and outcome.missed == [] and outcome.not_run == []
    assert outcome.exit_code == ExitCode.OK
    assert "**Overall: 1 of 1 scenarios met both targets (100 %): compliant.**" in (
        outcome.markdown.read_text(encoding="utf-8")
    )


def test_build_report_scheduled_not_run_listed_with_reason(make_run, runs_dir, tmp_path, catalog):
    make_run("rds-failover", started_at="2027-04-03T10:00:00Z")
    outcome = build_report("2027-Q2", runs_dir=runs_dir, out_dir=tmp_path, catalog=catalog)
    assert outcome.not_run == ["rds-pitr"] and not outcome.compliant
    md = outcome.markdown.read_text(encoding="utf-8")
    (row,) = _rows(_section(md, "Compliance summary"), "rds-pitr")
    assert row[8:] == ["0", "not run", "—"]
    assert "**rds-pitr: scheduled, not run.** Evidence: scheduled for 2027-Q2" in md
    assert "**Not run.** Scheduled for 2027-Q2: no run folder has a started" in md


def test_build_report_hostile_run_text_escaped(make_run, runs_dir, tmp_path, catalog):
    make_run(
        "ecs-task-failure",
        status="failed",
        rto_s=None,
        rpo_s=None,
        reason="a | b <script>alert(1)</script> **bold**\nnext",
    )
    outcome = build_report(Q, runs_dir=runs_dir, out_dir=tmp_path, catalog=catalog)
    md = outcome.markdown.read_text(encoding="utf-8")
    assert r"a \| b \<script\>alert(1)\</script\> \*\*bold\*\* next" in md
    html = (tmp_path / f"{Q}.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;alert(1)" in html


def test_build_report_many_runs_charts_capped_rest_tabled(make_run, runs_dir, tmp_path, catalog):
    for day in range(1, 15):
        make_run(
            "rds-failover",
            started_at=f"2026-10-{day:02d}T10:00:00Z",
            rto_s=500.0 if day == 3 else 30.0 + day,
            hz=0.5,
            lead_s=4,
            tail_s=4,
        )
    outcome = build_report(Q, runs_dir=runs_dir, out_dir=tmp_path, catalog=catalog)
    charts = sorted(p.name for p in tmp_path.glob(f"{Q}-timeline-*.png"))
    assert [c[len(Q) + 10 : len(Q) + 18] for c in charts] == ["20261003", "20261014"]
    md = outcome.markdown.read_text(encoding="utf-8")
    assert f"<details><summary>Other runs of rds-failover in {Q} (12)</summary>" in md
    assert len(_csv(tmp_path / f"{Q}.csv")) == 14


def test_build_report_degenerate_artifacts_noted_not_crashed(make_run, runs_dir, tmp_path, catalog):
    empty = make_run("rds-failover", started_at="2026-11-01T10:00:00Z")
    (empty / "timeline.csv").write_text("")
    (empty / "load_per_second.csv").write_text("t_utc,name,requests,failures,p95_ms\n")
    never = make_run(
        "rds-failover",
        started_at="2026-11-02T10:00:00Z",
        status="failed",
        detect_s=None,
        rto_s=None,
        reason="sandbox did not start",
    )
    make_run.edit(never, lambda d: d["fault"].update(injected_at=None))
    (never / "timeline.csv").write_text("t_utc,t_rel_s,service,ok,status,latency_ms\n")
    outcome = build_report(Q, runs_dir=runs_dir, out_dir=tmp_path, catalog=catalog)
    assert outcome.n_runs == 2 and not outcome.skipped
    md = outcome.markdown.read_text(encoding="utf-8")
    assert "timeline.csv is unreadable: the file is empty" in md
    assert escape("load_per_second.csv is unreadable: no rows") in md
    assert len(list(tmp_path.glob(f"{Q}-timeline-*.png"))) == 2


def test_build_report_pgw_reconciliation_list_rendered_from_run_folder(
    make_run, runs_dir, tmp_path
):
    from reports import build_report

    folder = make_run("pgw-region-failover", rto_s=300.0, rpo_s=0.4, lost=3)
    rows = [
        f"drill-qr-{i},drill-{i % 2},{100 + i},2026-11-10T10:00:0{i}.000000Z,-0.{i}"
        for i in range(3)
    ]
    (folder / "reconciliation.csv").write_text(
        "payment_id,client,amount,sent_at,acked_at_rel_s\n" + "\n".join(rows) + "\n"
    )
    out = build_report("2026-Q4", runs_dir=runs_dir, out_dir=tmp_path / "out")
    md = out.markdown.read_text()
    assert "QR payments to reconcile (runbook 1.5)**: 3 acknowledged" in md
    for i in range(3):
        assert f"| drill-qr-{i} | drill-{i % 2} | {100 + i} |" in md

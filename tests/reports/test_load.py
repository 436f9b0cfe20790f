"""Run folders → frames: bad folders are skipped with a reason, never fatal."""

from __future__ import annotations

import hashlib
import json
import shutil
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reports import columns as C
from reports import metrics
from reports.load import load_runs, load_timelines, load_traffic


def _load(runs_dir, catalog):
    return load_runs(runs_dir, catalog.scenarios)


def _reason(runset, folder):
    return next(s.reason for s in runset.skipped if s.folder == folder.name)


def test_load_runs_broken_json_skipped_with_reason(make_run, runs_dir, catalog):
    good, bad = make_run(), make_run(started_at="2026-11-11T10:00:00Z")
    (bad / "result.json").write_text('{"run_id": "x", ', encoding="utf-8")
    runset = _load(runs_dir, catalog)
    assert runset.runs[C.FOLDER].tolist() == [good.name]
    assert _reason(runset, bad) == "result.json is not valid JSON at line 1"


def test_load_runs_no_result_json_skipped_as_unfinished(make_run, runs_dir, catalog):
    folder = make_run()
    (folder / "result.json").unlink()
    (runs_dir / ".hidden").mkdir()
    runset = _load(runs_dir, catalog)
    assert runset.runs.empty
    assert [s.folder for s in runset.skipped] == [folder.name]
    assert "no result.json" in _reason(runset, folder)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.pop("measurements"), "result.json lacks measurements"),
        (lambda d: d["measurements"].pop("rpo_s"), "measurements lacks rpo_s"),
        (lambda d: d["measurements"].update(rto_s="fast"), "measurements.rto_s must be a number"),
        (lambda d: d["measurements"].update(lost_writes=-1), "measurements.lost_writes must be"),
        (lambda d: d.update(scenario="moon-landing"), "scenario 'moon-landing' is not in"),
        (lambda d: d.update(status="done"), "status 'done' is not one of"),
        (lambda d: d.update(started_at="2026-11-10T10:00:00"), "started_at has no UTC offset"),
        (lambda d: d.update(ended_at="yesterday"), "ended_at is not an ISO-8601 time"),
        (lambda d: d.update(ended_at="2026-11-01T00:00:00Z"), "ended_at is before started_at"),
        (lambda d: d.update(schema_version=99), "schema_version 99 is not one of 1, 2, 3"),
        (lambda d: d.update(artifacts=["journal.json"]), "artifacts must map names"),
    ],
    ids=[
        "no-measurements",
        "no-rpo",
        "rto-text",
        "negative-lost",
        "scenario",
        "status",
        "naive-time",
        "bad-time",
        "ended-first",
        "version",
        "artifacts-list",
    ],
)
def test_load_runs_invalid_result_skipped_with_named_reason(
    make_run, runs_dir, catalog, change, reason
):
    folder = make_run()
    make_run.edit(folder, change)
    runset = _load(runs_dir, catalog)
    assert runset.runs.empty
    assert _reason(runset, folder).startswith(reason)


def test_load_runs_duplicate_run_id_later_folder_skipped(make_run, runs_dir, catalog):
    first, second = make_run(), make_run(started_at="2026-11-11T10:00:00Z")
    make_run.edit(second, lambda d: d.update(run_id=make_run.read(first)["run_id"]))
    runset = _load(runs_dir, catalog)
    assert runset.runs[C.FOLDER].tolist() == [first.name]
    assert "already read from" in _reason(runset, second)


def test_load_runs_missing_artifact_run_kept_and_named(make_run, runs_dir, catalog):
    folder = make_run()
    (folder / "timeline.csv").unlink()
    (folder / "canary.csv").unlink()
    runs = _load(runs_dir, catalog).runs
    assert runs[C.MISSING].tolist() == ["canary;timeline"]
    assert runs[C.TIMELINE_FILE].tolist() == [""]
    assert runs[C.RTO].tolist() == [42.0]


def test_load_runs_artifact_outside_folder_counted_missing(make_run, runs_dir, catalog):
    folder = make_run()
    make_run.edit(folder, lambda d: d["artifacts"].update(timeline="../../etc/passwd"))
    runs = _load(runs_dir, catalog).runs
    assert runs[C.MISSING].tolist() == ["timeline"]
    assert runs[C.TIMELINE_FILE].tolist() == [""]


def test_load_runs_manifest_every_file_hashed(make_run, runs_dir, catalog):
    folder = make_run()
    (folder / "locust").mkdir()
    (folder / "locust" / "stats.csv").write_text("Name,Requests\n")
    manifest = _load(runs_dir, catalog).manifest
    expected = {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }
    assert dict(zip(manifest[C.PATH], manifest[C.SHA256], strict=True)) == expected
    assert "locust/stats.csv" in expected


def test_load_timelines_unreadable_csv_noted_not_raised(make_run, runs_dir, catalog):
    folder = make_run()
    (folder / "timeline.csv").write_text("when,who\n1,2\n")
    runs = _load(runs_dir, catalog).runs
    frame, problems = load_timelines(runs_dir, runs)
    assert frame.empty
    assert "timeline.csv is unreadable" in problems[runs[C.RUN_ID].iloc[0]]


def test_load_traffic_no_aggregated_rows_summed_per_second(make_run, runs_dir, catalog):
    folder = make_run()
    (folder / "load_per_second.csv").write_text(
        "t_utc,name,requests,failures,p95_ms\n"
        "2026-11-10T10:00:20Z,a,10,1,50\n2026-11-10T10:00:20Z,b,5,2,70\n"
        "2026-11-10T10:00:21Z,a,7,0,40\n"
    )
    runs = _load(runs_dir, catalog).runs
    frame, problems = load_traffic(runs_dir, runs)
    assert not problems
    assert frame[C.REQUESTS].tolist() == [15, 7]
    assert frame[C.FAILURES].tolist() == [3, 0]
    assert frame[C.T_REL].tolist() == [0.0, 1.0]


def test_load_runs_dry_run_skipped_as_not_a_drill(make_run, runs_dir, catalog):
    folder = make_run()
    make_run.edit(folder, lambda d: d.update(dry_run=True))
    runset = _load(runs_dir, catalog)
    assert runset.runs.empty
    assert _reason(runset, folder).startswith("dry run")


def test_load_runs_malformed_impact_value_nulled_run_kept(make_run, runs_dir, catalog):
    make_run(
        "redis-failover",
        rpo_s=None,
        impact={
            "revoked_token_accepted_s": "n/a",
            "duplicate_orders": 0,
            "rate_limit_bypassed": True,
            "order_retries_sent": 40,
        },
    )
    runs = _load(runs_dir, catalog).runs
    assert runs[C.REVOKED_S].isna().all() and runs[C.BYPASSED].isna().all()
    assert runs[C.DUPLICATES].tolist() == [0]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


def _places(value: Any, path: tuple = ()) -> list[tuple]:
    """Every place inside a result where a value sits."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    out = []
    for key, sub in items:
        out.append((*path, key))
        if isinstance(sub, dict | list):
            out += _places(sub, (*path, key))
    return out


@pytest.fixture(scope="module")
def sound(tmp_path_factory, factory_at) -> dict[str, Any]:
    """A sound result.json (hypothesis reruns a test body: no function fixture)."""
    folder = factory_at(tmp_path_factory.mktemp("sound"))(impact={"duplicate_orders": 0})
    return json.loads((folder / "result.json").read_text(encoding="utf-8"))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_load_runs_damaged_result_kept_or_skipped_never_fatal(tmp_path, sound, catalog, data):
    damaged = json.loads(json.dumps(sound))
    *parents, last = data.draw(st.sampled_from(_places(damaged)))
    holder = damaged
    for key in parents:
        holder = holder[key]
    if isinstance(holder, dict) and data.draw(st.booleans()):
        del holder[last]
    else:
        holder[last] = data.draw(JSON)
    runs_dir = tmp_path / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    (runs_dir / "run").mkdir(parents=True)
    (runs_dir / "run" / "result.json").write_text(json.dumps(damaged), encoding="utf-8")
    runset = load_runs(runs_dir, catalog.scenarios)
    assert len(runset.runs) + len(runset.skipped) == 1
    assert all(s.reason and "\n" not in s.reason for s in runset.skipped)


@pytest.fixture(scope="module")
def sound_v2(tmp_path_factory, factory_at) -> dict[str, Any]:
    """A sound schema 2 result: an inconclusive RTO, the fault's effect, clean-ups."""
    folder = factory_at(tmp_path_factory.mktemp("sound_v2"))(
        schema_version=2,
        detect_s=None,
        rto_s=0.0,
        inconclusive="no sampled endpoint ever failed",
        effect={"verified": True, "evidence": "primary moved"},
        cleanup=[{"what": "rows", "resource": "t", "outcome": "deleted", "region": "x"}],
        artifacts=False,
    )
    return json.loads((folder / "result.json").read_text(encoding="utf-8"))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_load_runs_damaged_v2_result_kept_or_skipped_judged_never_fatal(
    tmp_path, sound_v2, catalog, data
):
    damaged = json.loads(json.dumps(sound_v2))
    *parents, last = data.draw(st.sampled_from(_places(damaged)))
    holder = damaged
    for key in parents:
        holder = holder[key]
    if isinstance(holder, dict) and data.draw(st.booleans()):
        del holder[last]
    else:
        holder[last] = data.draw(JSON)
    runs_dir = tmp_path / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    (runs_dir / "run").mkdir(parents=True)
    (runs_dir / "run" / "result.json").write_text(json.dumps(damaged), encoding="utf-8")
    runset = load_runs(runs_dir, catalog.scenarios)
    assert len(runset.runs) + len(runset.skipped) == 1
    judged = metrics.judge_runs(runset.runs, catalog)
    assert set(judged[C.OUTCOME]) <= set(metrics.RUN_OUTCOMES)
    assert runset.cleanup.columns.tolist()[0] == C.RUN_ID

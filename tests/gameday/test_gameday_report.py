"""The quarterly report's "Game days": a Gantt chart per game day telling people time from
machine time, §3 compliance, RTO from injection and from declaration, labelled by target."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from reports import columns as C
from reports.document import Doc, Image, Table
from reports.gameday import add_section, bars, gameday_runs, gaps
from reports.render_md import render_markdown

T0 = "2026-11-30T06:00:00Z"


def _at(s: float) -> str:
    return f"2026-11-30T06:{int(s // 60):02d}:{s % 60:06.3f}Z"


def _step(n, name, shown, people, machine, manual=True):
    return {
        "number": n, "name": name, "manual": manual, "shown_at": _at(shown),
        "confirmed_at": _at(shown + people), "effect_seen_at": _at(shown + people + machine),
        "who": "ana@laptop" if manual else "harness", "notes": [], "people_s": people,
        "machine_s": machine,
    }  # fmt: skip


def _write(runs: Path, run_id: str, target: str, block: dict, rto: float) -> dict:
    (runs / run_id).mkdir(parents=True)
    (runs / run_id / "result.json").write_text(
        json.dumps({"measurements": {"rto_s": rto}, "gameday": block})
    )
    return {C.RUN_ID: run_id, C.FOLDER: run_id, C.SCENARIO: "region-failover", C.TARGET: target}


def _blocks():
    one_go = {
        "plan": "region-failover.yaml", "severity": "P0", "status": "done", "injected_at": T0,
        "response_s": 12.0, "respond_target_s": 300, "response_met": True,
        "update_target_s": 900, "update_compliant": True, "max_update_gap_s": 40.0,
        "updates": [], "people_s": 30.0, "machine_s": 9.0, "rto_from_declaration_s": 40.0,
        "steps": [_step(1, "detect region loss", 2.0, 10.0, 0.0),
                  _step(2, "activate DR stack", 12.5, 20.0, 9.0)],
    }  # fmt: skip
    resumed = {
        **one_go, "status": "done", "update_compliant": False, "max_update_gap_s": 95.0,
        "update_target_s": 60,
        "gaps": [{"step": 2, "from": _at(20.0), "to": _at(50.0), "gap_s": 30.0,
                  "reason": "SIGINT"}],
        "gap_s": 30.0, "rto_timeline_s": 85.0, "rto_timeline_without_gaps_s": 55.0,
        "segments": [{"run_dir": "a", "injected_at": T0, "from_step": 1},
                     {"run_dir": "b", "injected_at": _at(50.0), "from_step": 2}],
    }  # fmt: skip
    return one_go, resumed


def test_people_and_machine_time_per_step_from_the_injection(tmp_path: Path):
    one_go, resumed = _blocks()
    frame = bars(one_go)
    assert list(frame["shown"]) == [2.0, 12.5]
    assert list(frame["confirmed"]) == [12.0, 32.5]  # shown + people time
    assert list(frame["machine"]) == [0.0, 9.0]
    assert gaps(resumed) == [(20.0, 30.0)]
    assert gaps(one_go) == []


def test_section_labels_each_game_day_with_its_target_and_marks_compliance(tmp_path: Path):
    one_go, resumed = _blocks()
    runs = pd.DataFrame(
        [
            _write(tmp_path, "r1", "sandbox", one_go, 52.0),
            _write(tmp_path, "r2", "staging", resumed, 35.0),
            {C.RUN_ID: "plain", C.FOLDER: "missing", C.SCENARIO: "x", C.TARGET: "sandbox"},
        ]
    )
    found = gameday_runs(tmp_path, runs)
    assert [(r["run_id"], r["target"]) for r in found] == [("r1", "sandbox"), ("r2", "staging")]
    doc = Doc(title="t")
    add_section(doc, SimpleNamespace(runs_q=runs, quarter="2026-Q4"), tmp_path)
    summary = next(b for b in doc.blocks if isinstance(b, Table))
    r1, r2 = summary.rows
    assert r1[:2] == ["region-failover", "sandbox"] and r2[1] == "staging"
    assert "met" in r1[5] and "MISSED" in r2[6]
    assert r1[9] == "52.00"  # one go: the drill's RTO
    assert r2[9] == "85.00" and r2[11] == "30.00"  # resumed: over the timeline, the gap apart
    assert r1[10] == "40.00"  # from the declaration
    images = [b for b in doc.blocks if isinstance(b, Image)]
    assert [i.file for i in images] == ["2026-Q4-gameday-r1.png", "2026-Q4-gameday-r2.png"]
    assert all(i.png.startswith(b"\x89PNG") and "staging" in images[1].alt for i in images)
    md = render_markdown(doc)
    assert "## Game days" in md and "ana@laptop" in md


def test_no_game_day_says_so(tmp_path: Path):
    doc = Doc(title="t")
    runs = pd.DataFrame(columns=[C.RUN_ID, C.FOLDER, C.SCENARIO, C.TARGET])
    add_section(doc, SimpleNamespace(runs_q=runs, quarter="2026-Q4"), tmp_path)
    assert "No game day" in render_markdown(doc)

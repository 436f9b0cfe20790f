"""The report's "Where recovery time goes" from result.json phases (contract version 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from reports import columns as C
from reports.phases import medians, phase_frame, spread_chart, stacked_chart


def _run(folder: Path, run_id: str, scenario: str, rto: float, slo: float) -> dict:
    phases = [
        {"name": "detect", "start_s": 0, "end_s": 0.1, "duration_s": 0.1, "seen": True,
         "evidence": ""},
        {"name": "platform", "start_s": 0.1, "end_s": None, "duration_s": None, "seen": False,
         "evidence": "not seen"},
        {"name": "endpoint", "start_s": 0.1, "end_s": rto, "duration_s": rto - 0.1, "seen": True,
         "evidence": ""},
        {"name": "slo", "start_s": rto, "end_s": slo, "duration_s": slo - rto, "seen": True,
         "evidence": ""},
    ]  # fmt: skip
    (folder / run_id).mkdir(parents=True)
    (folder / run_id / "result.json").write_text(
        json.dumps({"phases": {"rto_s": rto, "rto_slo_s": slo, "phases": phases}})
    )
    return {C.RUN_ID: run_id, C.FOLDER: run_id, C.SCENARIO: scenario, C.TARGET: "sandbox"}


def test_phase_medians_per_scenario_and_target_leave_unseen_phases_out(tmp_path: Path):
    runs = pd.DataFrame(
        [
            _run(tmp_path, "a", "rds-failover", 2.0, 3.0),
            _run(tmp_path, "b", "rds-failover", 3.0, 4.0),
            _run(tmp_path, "c", "rds-failover", 4.0, 9.0),
            {C.RUN_ID: "old", C.FOLDER: "missing", C.SCENARIO: "rds-failover", C.TARGET: "sandbox"},
        ]
    )
    frame = phase_frame(tmp_path, runs)
    assert sorted(frame[C.RUN_ID]) == ["a", "b", "c"]  # a run without phases is left out
    (row,) = medians(frame).to_dict("records")
    assert row["runs"] == 3 and row["rto_s"] == 3.0 and row["rto_slo_s"] == 4.0
    assert pd.isna(row["platform"]) and row["endpoint"] == 2.9
    for png in (stacked_chart(medians(frame), "2026-Q4"), spread_chart(frame, "2026-Q4")):
        assert png.startswith(b"\x89PNG")

"""The quarterly report lists interrupted runs (skipped, telling to recover) and says what
`mpac-drill recover` did for a recovered one (issue 17)."""

from __future__ import annotations

import json

from mpac_drill.config import load_catalog
from reports import columns as C
from reports.load import load_runs
from tests.test_contract import _result


def test_report_lists_interrupted_and_recovered_runs(tmp_path):
    runs = tmp_path / "runs"
    interrupted = runs / "20261110T090000Z-rds-failover-sandbox"
    interrupted.mkdir(parents=True)
    (interrupted / "inflight.json").write_text("{}")
    recovered = _result("rds-failover", "1.2")
    recovered.update(
        status="aborted",
        reason="harness died",
        verdicts=[],
        passed=False,
        recovery={
            "by": "mpac-drill recover",
            "at": "2026-11-10T10:05:00.000000Z",
            "steps": [
                {
                    "what": "sandbox sandbox",
                    "resource": "x",
                    "outcome": "up and healthy",
                    "ok": True,
                }
            ],
        },
    )
    folder = runs / recovered["run_id"]
    folder.mkdir()
    (folder / "result.json").write_text(json.dumps(recovered))
    (folder / "journal.json").write_text("{}")
    runset = load_runs(runs, list(load_catalog().scenarios))
    (skipped,) = runset.skipped
    assert skipped.folder == interrupted.name
    assert "interrupted run" in skipped.reason and "mpac-drill recover" in skipped.reason
    (reason,) = runset.runs[C.REASON]
    assert reason.startswith("harness died; recovered by mpac-drill recover")
    assert "up and healthy" in reason

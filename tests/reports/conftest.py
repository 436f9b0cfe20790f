"""A factory of synthetic run folders, in the layout of docs/run-folder.md.

``make_run(scenario, started_at=..., rto_s=..., ...)`` writes result.json (valid against the
contract schema), journal.json, fault.json, timeline.csv, canary.csv and load_per_second.csv,
all consistent with the figures given: services are down from detection to recovery, the
canary ledger loses exactly ``lost`` acknowledged writes, and the load dips during the outage.

``schema_version=2`` writes what the harness writes since contract version 2: each verdict's
``outcome``, the run's ``outcome`` (``mpac_drill.drill.result.run_outcome``), and optionally
``fault.effect``, ``cleanup`` and ``preflight``; ``inconclusive="why"`` makes the RTO verdict
inconclusive (``value`` null, ``passed`` false, that reason), ``verdicts=[]`` judges nothing.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mpac_drill.config import Catalog, load_catalog
from mpac_drill.drill.result import SCHEMA_CANDIDATES, run_outcome

SCHEMA_PATH = next((p for p in SCHEMA_CANDIDATES if p.is_file()), SCHEMA_CANDIDATES[-1])
SERVICES = ("svc-portal", "svc-smarttab", "pgw")
SECTIONS = {
    "ecs-task-failure": "1.1",
    "rds-failover": "1.2",
    "redis-failover": "1.3",
    "region-failover": "1.4",
    "pgw-region-failover": "1.5",
    "obs-failure": "1.6",
    "rds-pitr": "2.3",
}


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


class RunFactory:
    """Writes run folders under ``root``; each call returns the new folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._n = 0

    def __call__(
        self,
        scenario: str = "rds-failover",
        *,
        started_at: str = "2026-11-10T10:00:00Z",
        status: str = "completed",
        detect_s: float | None = 3.0,
        rto_s: float | None = 42.0,
        rpo_s: float | None = 0.0,
        acked: int | None = 200,
        lost: int | None = 0,
        target: str = "sandbox",
        reason: str | None = None,
        impact: dict[str, Any] | None = None,
        findings: list[dict[str, str]] | None = None,
        steps: list[dict[str, Any]] | None = None,
        user: str = "alice",
        host: str = "drill-host",
        lead_s: float = 20.0,
        tail_s: float = 30.0,
        hz: float = 2.0,
        artifacts: bool = True,
        rto_target: float = 300.0,
        schema_version: int = 1,
        inconclusive: str | None = None,
        verdicts: list[dict[str, Any]] | None = None,
        effect: dict[str, Any] | None = None,
        cleanup: list[dict[str, str]] | None = None,
        preflight: list[dict[str, Any]] | None = None,
    ) -> Path:
        self._n += 1
        start = _parse(started_at)
        injected = start + timedelta(seconds=lead_s)
        bound = (rto_s if rto_s is not None else 120.0) + tail_s
        ended = injected + timedelta(seconds=bound)
        run_id = f"{start:%Y%m%dT%H%M%SZ}-{scenario}-{target}-{self._n:03d}"
        folder = self.root / run_id
        folder.mkdir()
        result: dict[str, Any] = {
            "schema_version": 1,
            "run_id": run_id,
            "scenario": scenario,
            "runbook_section": SECTIONS[scenario],
            "target": target,
            "started_at": _iso(start),
            "ended_at": _iso(ended),
            "status": status,
            "fault": {
                "action": f"inject {scenario}",
                "resources": ["sandbox"],
                "injected_at": _iso(injected),
            },
            "measurements": {
                "detect_s": detect_s,
                "rto_s": rto_s,
                "rpo_s": rpo_s,
                "acked_writes": acked,
                "lost_writes": lost,
                "load": {"requests": 0, "failures": 0, "p95_ms": 85.0},
            },
            "verdicts": [
                {
                    "metric": "rto_s",
                    "value": rto_s,
                    "target": rto_target,
                    "passed": rto_s is not None and rto_s <= rto_target,
                }
            ],
            "passed": status == "completed" and rto_s is not None,
            "artifacts": {
                "journal": "journal.json",
                "timeline": "timeline.csv",
                "canary": "canary.csv",
                "load_per_second": "load_per_second.csv",
                "fault": "fault.json",
            },
            "harness": {
                "version": "0.1.0",
                "git_commit": "4e8079a",
                "user": user,
                "host": host,
                "python": "3.11.2",
            },
            "settings": {},
        }
        if schema_version >= 2:
            self._v2(result, inconclusive, verdicts, effect, cleanup, preflight)
        if reason is not None:
            result["reason"] = reason
        if impact is not None:
            result["impact"] = impact
        if findings is not None:
            result["findings"] = findings
        if steps is not None:
            result["steps"] = steps
        if artifacts:
            requests, failures = self._write_artifacts(folder, result, injected, lead_s, bound, hz)
            result["measurements"]["load"].update(requests=requests, failures=failures)
        (folder / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        return folder

    @staticmethod
    def _v2(
        result: dict[str, Any],
        inconclusive: str | None,
        verdicts: list[dict[str, Any]] | None,
        effect: dict[str, Any] | None,
        cleanup: list[dict[str, str]] | None,
        preflight: list[dict[str, Any]] | None,
    ) -> None:
        """Turn a version 1 result into what the harness writes as version 2."""
        result["schema_version"] = 2
        if verdicts is None:
            verdicts = [
                {**v, "outcome": "met" if v["passed"] else "missed"} for v in result["verdicts"]
            ]
            if inconclusive is not None:
                verdicts[0].update(value=None, passed=False, outcome="inconclusive")
                verdicts[0]["reason"] = inconclusive
        result["verdicts"] = verdicts
        result["passed"] = (
            result["status"] == "completed"
            and bool(verdicts)
            and all(v["passed"] for v in verdicts)
        )
        result["outcome"] = run_outcome(result)
        if effect is not None:
            result["fault"]["effect"] = effect
        if cleanup is not None:
            result["cleanup"] = cleanup
        if preflight is not None:
            result["preflight"] = preflight

    @staticmethod
    def read(folder: Path) -> dict[str, Any]:
        """The folder's result.json as a dict."""
        return json.loads((folder / "result.json").read_text(encoding="utf-8"))

    def edit(self, folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
        """Rewrite the folder's result.json after ``change`` mutated it."""
        data = self.read(folder)
        change(data)
        (folder / "result.json").write_text(json.dumps(data), encoding="utf-8")

    @staticmethod
    def _write_artifacts(
        folder: Path, result: dict, injected: datetime, lead_s: float, bound: float, hz: float
    ) -> tuple[int, int]:
        m = result["measurements"]
        down_from = m["detect_s"] if m["detect_s"] is not None else 0.0
        down_to = m["rto_s"] if m["rto_s"] is not None else float("inf")

        def down(t: float) -> bool:
            return down_from <= t < down_to

        (folder / "journal.json").write_text(
            json.dumps({"chaoslib-version": "1.44.0", "status": result["status"], "run": []})
        )
        (folder / "fault.json").write_text(json.dumps(result["fault"]))
        with (folder / "timeline.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["t_utc", "t_rel_s", "service", "ok", "status", "latency_ms"])
            n = int((lead_s + bound) * hz)
            for i in range(n):
                t = -lead_s + i / hz
                for service in SERVICES:
                    bad = down(t) and service == "svc-smarttab"
                    w.writerow(
                        [
                            _iso(injected + timedelta(seconds=t)),
                            f"{t:.3f}",
                            service,
                            0 if bad else 1,
                            503 if bad else 200,
                            f"{12.5 + i % 7:.1f}",
                        ]
                    )
        acked, lost = m["acked_writes"] or 0, m["lost_writes"] or 0
        with (folder / "canary.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["seq", "sent_at", "t_rel_s", "acked", "present"])
            for seq in range(acked):
                t = -lead_s + seq * (lead_s + bound) / max(acked, 1)
                gone = 0 <= seq - int(acked * lead_s / (lead_s + bound)) < lost
                w.writerow(
                    [seq, _iso(injected + timedelta(seconds=t)), f"{t:.3f}", 1, 0 if gone else 1]
                )
        requests = failures = 0
        with (folder / "load_per_second.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["t_utc", "name", "requests", "failures", "p95_ms"])
            second = injected.replace(microsecond=0) - timedelta(seconds=int(lead_s))
            for s in range(int(lead_s + bound)):
                t = (second + timedelta(seconds=s) - injected).total_seconds()
                req, fail = 50, (20 if down(t) else 0)
                requests, failures = requests + req, failures + fail
                stamp = (second + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ")
                w.writerow([stamp, "smarttab /orders", req, fail, 240.0 if down(t) else 80.0])
                w.writerow([stamp, "Aggregated", req, fail, 240.0 if down(t) else 80.0])
        return requests, failures


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def make_run(runs_dir: Path) -> RunFactory:
    return RunFactory(runs_dir)


@pytest.fixture(scope="session")
def factory_at() -> Callable[[Path], RunFactory]:
    """The factory class itself, for tests that need run folders outside ``tmp_path``."""
    return RunFactory


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def contract_schema() -> dict:
    if not SCHEMA_PATH.is_file():
        pytest.skip(f"contract schema not found at {SCHEMA_PATH}")
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))

"""Benchmark: the quarterly report over many synthetic run folders.

    .venv/bin/python bench/report.py                 # 2,000 runs, all in 2026-Q4
    .venv/bin/python bench/report.py --quarters 4    # the same runs spread over 2026-Q1..Q4
    .venv/bin/python bench/report.py --keep /tmp/bench-runs

Each run folder holds a 10 Hz observer timeline of 5 minutes for 3 services (9,000 rows),
the canary ledger, locust's per-second load, a journal and result.json; every seventh run
misses its RTO, every thirteenth is aborted, region drills carry steps. The folders are
written first; then ``build_report`` runs in a child process, so its wall time and peak
memory (ru_maxrss) are the report's alone. Goals: at most 15 s and 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL_WALL_S = 15.0
GOAL_RSS_BYTES = 2 * 1024**3
QUARTER = "2026-Q4"
SERVICES = ("svc-portal", "svc-smarttab", "pgw")
SCENARIOS = {  # id: (runbook section, typical RTO s, RPO s or None)
    "ecs-task-failure": ("1.1", 45.0, None),
    "rds-failover": ("1.2", 70.0, 0.0),
    "redis-failover": ("1.3", 25.0, None),
    "region-failover": ("1.4", 150.0, 120.0),
    "pgw-region-failover": ("1.5", 160.0, 90.0),
    "obs-failure": ("1.6", 120.0, 0.0),
    "rds-pitr": ("2.3", 200.0, 60.0),
}


def _timeline_body(
    hz: float, minutes: float, lead_s: float, down: tuple[float, float]
) -> tuple[np.ndarray, list[str]]:
    """Relative times and the row text after ``t_utc`` for one outage shape."""
    n = int(minutes * 60 * hz)
    t_rel = np.repeat(np.arange(n) / hz - lead_s, len(SERVICES))
    service = np.tile(np.array(SERVICES), n)
    bad = (t_rel >= down[0]) & (t_rel < down[1]) & (service == "svc-smarttab")
    latency = 10 + (np.arange(n * len(SERVICES)) % 17) * 0.7
    rows = [
        f",{t:.3f},{s},{0 if b else 1},{503 if b else 200},{lat:.1f}"
        for t, s, b, lat in zip(t_rel, service, bad, latency, strict=True)
    ]
    return t_rel, rows


def _write_run(
    root: Path,
    i: int,
    start: np.datetime64,
    scenario: str,
    rto: float | None,
    status: str,
    body: tuple[np.ndarray, list[str]],
    lead_s: float,
    minutes: float,
) -> None:
    section, _, rpo = SCENARIOS[scenario]
    injected = start + np.timedelta64(int(lead_s * 1e6), "us")
    stamp = np.datetime_as_string(start, unit="s").replace("-", "").replace(":", "")
    run_id = f"{stamp}Z-{scenario}-bench-{i:05d}"
    folder = root / run_id
    folder.mkdir()
    t_rel, rows = body
    t_utc = np.datetime_as_string(injected + (t_rel * 1e6).astype("timedelta64[us]"), unit="us")
    (folder / "timeline.csv").write_text(
        "t_utc,t_rel_s,service,ok,status,latency_ms\n"
        + "".join(f"{t}Z{r}\n" for t, r in zip(t_utc.tolist(), rows, strict=True))
    )
    seconds = int(minutes * 60)
    sec_utc = np.datetime_as_string(start + np.arange(seconds).astype("timedelta64[s]"), unit="s")
    outage = (rto or 1e9) + lead_s
    load = "".join(
        f"{t}Z,{name},{50},{20 if lead_s <= k < outage else 0},{80.0}\n"
        for k, t in enumerate(sec_utc.tolist())
        for name in ("smarttab /orders", "Aggregated")
    )
    (folder / "load_per_second.csv").write_text("t_utc,name,requests,failures,p95_ms\n" + load)
    (folder / "canary.csv").write_text(
        "seq,sent_at,t_rel_s,acked,present\n"
        + "".join(f"{k},{t}Z,{k - lead_s:.3f},1,1\n" for k, t in enumerate(sec_utc.tolist()))
    )
    (folder / "journal.json").write_text(json.dumps({"status": status, "run": []}))
    fault = {"action": f"inject {scenario}", "injected_at": f"{injected}Z"}
    (folder / "fault.json").write_text(json.dumps(fault))
    result = {
        "schema_version": 1,
        "run_id": run_id,
        "scenario": scenario,
        "runbook_section": section,
        "target": "bench",
        "started_at": f"{start}Z",
        "ended_at": f"{start + np.timedelta64(seconds, 's')}Z",
        "status": status,
        "fault": fault,
        "measurements": {
            "detect_s": 2.5,
            "rto_s": rto,
            "rpo_s": rpo,
            "acked_writes": seconds if rpo is not None else None,
            "lost_writes": 0 if rpo is not None else None,
            "load": {"requests": 100 * seconds, "failures": 0, "p95_ms": 80.0},
        },
        "verdicts": [],
        "passed": status == "completed",
        "artifacts": {
            "journal": "journal.json",
            "timeline": "timeline.csv",
            "canary": "canary.csv",
            "load_per_second": "load_per_second.csv",
            "fault": "fault.json",
        },
        "harness": {"version": "0.1.0", "git_commit": "bench", "user": "bench", "host": "bench"},
    }
    if status != "completed":
        result["reason"] = "stop condition: error rate above 50 %"
    if scenario == "redis-failover":
        result["impact"] = {
            "revoked_token_accepted_s": rto,
            "duplicate_orders": 0,
            "rate_limit_bypassed": 3,
            "token_lifetime_s": 900,
        }
    if scenario == "region-failover":
        result["steps"] = [
            {
                "name": n,
                "started_at": f"{start + np.timedelta64(30 * k, 's')}Z",
                "duration_s": 30.0,
                "ok": True,
                "detail": "",
            }
            for k, n in enumerate(("activate DR", "switch DNS", "restore"))
        ]
        result["findings"] = [
            {
                "id": "F1",
                "section": "1.4",
                "summary": "DNS step region",
                "evidence": "--region ap-northeast-1",
            }
        ]
    (folder / "result.json").write_text(json.dumps(result))


def generate(root: Path, runs: int, quarters: int, hz: float, minutes: float) -> None:
    lead_s = 30.0
    names = list(SCENARIOS)
    bodies = {}
    year_start = np.datetime64("2026-10-01T00:00:00")
    span_s = 90 * 86400 * quarters
    for i in range(runs):
        scenario = names[i % len(names)]
        base = SCENARIOS[scenario][1]
        rto = base * (5 if i % 7 == 3 else 1) + (i % 5)
        status = "aborted" if i % 13 == 5 else "completed"
        rto_value = None if status == "aborted" else min(rto, minutes * 60 - lead_s - 1)
        key = (round(rto_value or 0.0), status)
        if key not in bodies:
            bodies[key] = _timeline_body(hz, minutes, lead_s, (2.5, rto_value or 1e9))
        offset = span_s - 1 - (i * span_s) // runs  # newest first, ends in QUARTER
        start = (
            year_start
            - np.timedelta64(90 * 86400 * (quarters - 1), "s")
            + np.timedelta64(offset % span_s, "s")
        )
        _write_run(root, i, start, scenario, rto_value, status, bodies[key], lead_s, minutes)


def measure(runs_dir: Path, out_dir: Path) -> None:
    """Child process: import, build the report, print figures as JSON."""
    t0 = time.perf_counter()
    from reports import build_report

    t1 = time.perf_counter()
    outcome = build_report(QUARTER, runs_dir=runs_dir, out_dir=out_dir)
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                "import_s": t1 - t0,
                "build_s": t2 - t1,
                "n_runs": outcome.n_runs,
                "skipped": len(outcome.skipped),
                "files": len(outcome.paths),
                "md_bytes": outcome.markdown.stat().st_size,
                "maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument(
        "--quarters",
        type=int,
        default=1,
        help="spread the runs over this many quarters ending in 2026-Q4",
    )
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--keep", type=Path, help="write the run folders here and keep them")
    parser.add_argument("--measure", type=Path, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure)
        return 0
    work = Path(tempfile.mkdtemp(prefix="mpac-bench-"))
    runs_dir = args.keep or work / "runs"
    try:
        runs_dir.mkdir(parents=True, exist_ok=False)
        t0 = time.perf_counter()
        generate(runs_dir, args.runs, args.quarters, args.hz, args.minutes)
        size = sum(p.stat().st_size for p in runs_dir.rglob("*") if p.is_file())
        print(
            f"generated {args.runs} run folders ({size / 1e9:.2f} GB, "
            f"{args.hz:g} Hz x {args.minutes:g} min x {len(SERVICES)} services) "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        child = subprocess.run(
            [sys.executable, __file__, "--measure", str(runs_dir), str(work / "out")],
            capture_output=True,
            text=True,
            check=True,
        )
        m = json.loads(child.stdout.strip().splitlines()[-1])
        wall = m["import_s"] + m["build_s"]
        rss = m["maxrss_bytes"]
        print(
            f"report {QUARTER}: {m['n_runs']} runs in the quarter, {m['files']} files, "
            f"Markdown {m['md_bytes'] / 1e6:.1f} MB"
        )
        print(
            f"wall time   {wall:6.2f} s  (import {m['import_s']:.2f} s + build "
            f"{m['build_s']:.2f} s)  goal <= {GOAL_WALL_S:.0f} s  "
            f"{'ok' if wall <= GOAL_WALL_S else 'MISSED'}"
        )
        print(
            f"cpu time    {m['cpu_s']:6.2f} s  (user + sys of the report process; wall time "
            "above it means the machine was busy)"
        )
        print(
            f"peak memory {rss / 2**20:6.0f} MiB (ru_maxrss of the report process)  "
            f"goal <= {GOAL_RSS_BYTES / 2**30:.0f} GiB  "
            f"{'ok' if rss <= GOAL_RSS_BYTES else 'MISSED'}"
        )
        return 0 if wall <= GOAL_WALL_S and rss <= GOAL_RSS_BYTES else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

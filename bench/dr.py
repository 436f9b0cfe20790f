"""Benchmark: the wall time of the sandbox's DR procedures, step by step (issue 6).

    .venv/bin/python bench/dr.py                  # 3 runs of each DR procedure
    .venv/bin/python bench/dr.py --runs 5 --scenarios rds-pitr --keep

Each sandbox DR procedure (``--scenarios``, default: rds-pitr, region-failover,
pgw-region-failover, obs-failure) runs ``--runs`` times (``run_drill``) on the benchmark's
own sandbox; the figures come from each result.json: the drill's wall time, RTO, RPO and
every step's duration, then the median, min and max over the runs. For rds-pitr also
``restore_s`` (→ promoted and answering) and how old the base backup was at T.

The sandbox is a copy of ``experiments/targets/sandbox.yaml`` with state folder
``.sandbox-dr`` and ports 23xxx (below the kernel's ephemeral range 32768-60999, so the
TIME_WAIT sockets of a busy sandbox never hold them); it is started if needed (not timed) and
stopped at the end unless ``--keep``. Run folders go to a temporary folder (printed).
Exit 0 whatever the figures (a benchmark, not a test); 3 when the sandbox cannot start or a
drill fails; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mpac_drill.config import Target, load_target  # noqa: E402
from mpac_drill.drill.runner import run_drill  # noqa: E402
from mpac_drill.errors import DrillError, ExitCode  # noqa: E402
from mpac_drill.sandbox import control  # noqa: E402

STATE_DIR = ".sandbox-dr"  # git-ignored (.sandbox-*/), relative to the project root
PORTS = {
    "rds": {"primary_port": 23432, "standby_port": 23433},
    "redis": {
        "primary_port": 23379,
        "replica_port": 23380,
        "sentinel_ports": [23381, 23382, 23383],
    },
    "ecs": {"task_port_base": 23100},
}
SERVICE_PORT_BASE = 23080


def write_target(folder: Path) -> Target:
    """The benchmark's sandbox target, written to ``folder``."""
    settings = yaml.safe_load((ROOT / "experiments" / "targets" / "sandbox.yaml").read_text())
    settings.update(name="sandbox-dr", state_dir=STATE_DIR)
    for section, values in PORTS.items():
        settings[section].update(values)
    for i, svc in enumerate(settings["ecs"]["services"].values()):
        svc["port"] = SERVICE_PORT_BASE + i
    path = folder / "sandbox-dr.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return load_target(str(path))


def _row(label: str, values: list[float | None]) -> str:
    return f"  {label:<30}" + "".join(f"{'-' if v is None else f'{v:.3f}':>9}" for v in values)


def _stats(values: list[float]) -> list[float | None]:
    if not values:
        return [None, None, None]
    return [statistics.median(values), min(values), max(values)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per procedure (default 3)")
    ap.add_argument(
        "--scenarios",
        default=",".join(PROCEDURES),
        help=f"comma-separated (default {','.join(PROCEDURES)})",
    )
    ap.add_argument("--users", type=int, default=2, help="locust users during each drill")
    ap.add_argument("--keep", action="store_true", help="leave the sandbox running")
    args = ap.parse_args(argv)
    scenarios = [x.strip() for x in args.scenarios.split(",") if x.strip()]
    runs_dir = Path(tempfile.mkdtemp(prefix="mpac-bench-dr-"))
    target = write_target(runs_dir)
    print(f"sandbox {target.require('state_dir')} (ports 23xxx); run folders in {runs_dir}")
    results: dict[str, list[dict[str, Any]]] = {s: [] for s in scenarios}
    try:
        control.up(target, lambda m: print(f"  sandbox: {m}"))
        for scenario in scenarios:
            for i in range(args.runs):
                outcome = run_drill(scenario, target, runs_dir=runs_dir, users=args.users)
                r = outcome.result
                if r["status"] != "completed":
                    print(
                        f"{scenario} run {i + 1}: {r['status']}: {r.get('reason')} "
                        f"({outcome.run_dir})"
                    )
                    return ExitCode.HARNESS
                results[scenario].append(r)
                print(
                    f"{scenario} run {i + 1}: wall {_wall(r):.2f} s, RTO "
                    f"{r['measurements']['rto_s']:.3f} s ({outcome.run_dir.name})"
                )
    except DrillError as exc:
        print(f"bench: {exc}")
        return ExitCode.HARNESS
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    finally:
        if not args.keep:
            control.down(target)
    for scenario, rs in results.items():
        _report(scenario, rs)
    return ExitCode.OK


PROCEDURES = ("rds-pitr", "region-failover", "pgw-region-failover", "obs-failure")


def _wall(r: dict[str, Any]) -> float:
    start = datetime.fromisoformat(r["started_at"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(r["ended_at"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def _report(scenario: str, results: list[dict[str, Any]]) -> None:
    n = len(results)
    if not n:
        return
    print(f"\n{scenario} on the sandbox: {n} runs (seconds)")
    print(
        f"  {'':<30}"
        + "".join(f"{f'run {i + 1}':>9}" for i in range(n))
        + f"{'median':>9}{'min':>9}{'max':>9}"
    )
    m = [r["measurements"] for r in results]
    figures: dict[str, list[Any]] = {
        "drill wall time": [_wall(r) for r in results],
        "RTO": [x["rto_s"] for x in m],
        "RPO": [x["rpo_s"] for x in m],
        "lost writes": [x["lost_writes"] for x in m],
    }
    if scenario == "rds-pitr":
        figures["restore_s (→ promoted)"] = [r["pitr"]["restore_s"] for r in results]
        figures["base backup age at T"] = [
            r["pitr"]["base_backup_before_target_s"] for r in results
        ]
    for label, values in figures.items():
        print(_row(label, [*values, *_stats([v for v in values if v is not None])]))
    names = [s["name"] for s in results[0].get("steps", [])]
    if names:
        print("  steps:")
    for name in names:
        values = [
            next((s["duration_s"] for s in r["steps"] if s["name"] == name), None) for r in results
        ]
        print(_row(f"  {name}", [*values, *_stats([v for v in values if v is not None])]))


if __name__ == "__main__":
    sys.exit(main())

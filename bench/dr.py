"""Benchmark: the wall time of the sandbox's DR procedures, step by step (issue 6).

    .venv/bin/python bench/dr.py                  # 3 rds-pitr drills
    .venv/bin/python bench/dr.py --runs 5 --users 2 --keep

For now the procedure is the point-in-time restore (runbook §2.3): each run is the rds-pitr
drill (``run_drill``) on the benchmark's own sandbox, and the figures come from its
result.json: RTO (restore start → restored instance verified), ``restore_s`` (→ promoted and
answering), ``rpo_s``, how old the base backup was at T (the WAL to replay grows with it) and
every step's duration. Then the median, min and max per step over the runs.

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
PORTS = {"rds": {"primary_port": 23432, "standby_port": 23433},
         "redis": {"primary_port": 23379, "replica_port": 23380,
                   "sentinel_ports": [23381, 23382, 23383]},
         "ecs": {"task_port_base": 23100}}
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
    return f"  {label:<30}" + "".join(
        f"{'-' if v is None else f'{v:.3f}':>9}" for v in values)


def _stats(values: list[float]) -> list[float | None]:
    if not values:
        return [None, None, None]
    return [statistics.median(values), min(values), max(values)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="rds-pitr drills to run (default 3)")
    ap.add_argument("--users", type=int, default=2, help="locust users during each drill")
    ap.add_argument("--keep", action="store_true", help="leave the sandbox running")
    args = ap.parse_args(argv)
    runs_dir = Path(tempfile.mkdtemp(prefix="mpac-bench-dr-"))
    target = write_target(runs_dir)
    print(f"sandbox {target.require('state_dir')} (ports 23xxx); run folders in {runs_dir}")
    results: list[dict[str, Any]] = []
    try:
        control.up(target, lambda m: print(f"  sandbox: {m}"))
        for i in range(args.runs):
            outcome = run_drill("rds-pitr", target, runs_dir=runs_dir, users=args.users)
            r = outcome.result
            if r["status"] != "completed":
                print(f"run {i + 1}: {r['status']}: {r.get('reason')} ({outcome.run_dir})")
                return ExitCode.HARNESS
            results.append(r)
            print(f"run {i + 1}: RTO {r['measurements']['rto_s']:.3f} s "
                  f"({outcome.run_dir.name})")
    except DrillError as exc:
        print(f"bench: {exc}")
        return ExitCode.HARNESS
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    finally:
        if not args.keep:
            control.down(target)
    _report(results)
    return ExitCode.OK


def _report(results: list[dict[str, Any]]) -> None:
    n = len(results)
    print(f"\nrds-pitr on the sandbox: {n} runs (seconds)")
    print(f"  {'':<30}" + "".join(f"{f'run {i + 1}':>9}" for i in range(n))
          + f"{'median':>9}{'min':>9}{'max':>9}")
    figures = {
        "RTO (restore start → verified)": [r["measurements"]["rto_s"] for r in results],
        "restore_s (→ promoted)": [r["pitr"]["restore_s"] for r in results],
        "rpo_s (precision at T)": [r["measurements"]["rpo_s"] for r in results],
        "base backup age at T": [r["pitr"]["base_backup_before_target_s"] for r in results],
    }
    for label, values in figures.items():
        print(_row(label, [*values, *_stats([v for v in values if v is not None])]))
    print("  steps:")
    names = [s["name"] for s in results[0]["steps"]] if results else []
    for name in names:
        values = [next((s["duration_s"] for s in r["steps"] if s["name"] == name), None)
                  for r in results]
        print(_row(f"  {name}", [*values, *_stats([v for v in values if v is not None])]))
    lost = [r["measurements"]["lost_writes"] for r in results]
    late = [r["pitr"]["rows_after_target"] for r in results]
    print(f"  lost writes {lost}, rows after T {late} (expected all 0)")


if __name__ == "__main__":
    sys.exit(main())

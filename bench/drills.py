"""Benchmark: how true, how cheap and how steady a drill's measurements are, on the sandbox.

    .venv/bin/python bench/drills.py              # 5 runs of each drill below (~25 drills)
    .venv/bin/python bench/drills.py --quick      # 2 runs each: a smoke check
    .venv/bin/python bench/drills.py --target ./my-sandbox.yaml --runs 8
    .venv/bin/python bench/drills.py --repeat 10  # the spread of each drill's RTO (5.)

Each round runs five drills in-process (``run_drill``, ``--users`` locust users):
ecs-task-failure with ``ecs.task_start_delay_s`` D1 and D2, rds-failover with
``rds.failover_delay_s`` D1 and D2, and rds-failover with ``rds.replication_lag_s`` LAG.
Then it prints:

1. accuracy: measured RTO = configured delay + a platform constant (task boot, ALB
   re-admission, reconnection), so the error is RTO(D2) - RTO(D1) - (D2 - D1) per round
   (mean and max |error|), with the offset RTO - delay for each delay; and rpo_s - LAG.
   Goal: max |error| <= 0.3 s. The sandbox daemon's log splits each RTO into "platform
   acted" (task relaunched, standby promoted) and what came after it;
2. harness overhead: a drill's wall time minus rto_s, warmup_s, cooldown_s (and the lag
   the fault waits on purpose), split by activity from each run's journal.json. Goal <= 5 s;
3. observer jitter: p99 of |sampling interval - observer_interval_s| over every drill's
   timeline.csv (goal <= 20 ms), also without the slots a slow answer overran, and the
   same for the canary's writes (canary.csv);
4. locust requests per second against the sandbox, one process and a master with two
   workers, the same users (no think time by default: capacity, not a user model);
5. spread: per drill, the RTO's p5, median and p95 over the rounds (goal: p95 - p5 <= 0.3 s
   for the ECS and RDS drills on an idle machine), its bootstrap 95 % interval of the median
   (``mpac_drill.measure.stats``, the gate's statistics), and the wall time of one drill
   against its recovery delay + warm-up + cool-down + 2 s.

Besides the figures it lists anything odd (a drill that did not complete, an RTO that the
run's own timeline.csv does not give back, writes lost without lag, ...) with its run folder.

By default the benchmark starts its own sandbox (``bench/_target.py``: state folder
``.sandbox-bench``, ports 29xxx) so it never touches one a developer or a test uses,
and stops it at the end, also on Ctrl-C. Run folders go to a temporary folder (printed).
Exit 0 whatever the figures (a benchmark, not a test); 3 when the sandbox cannot start,
130 on Ctrl-C and 143 on SIGTERM (the figures so far are still printed).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._drills_model import Drill, make_plans  # noqa: E402
from bench._drills_print import report  # noqa: E402
from bench._drills_run import run_locust, run_one, sandbox_up  # noqa: E402
from bench._target import write_bench_target  # noqa: E402
from mpac_drill.config import load_target  # noqa: E402
from mpac_drill.errors import DrillError, ExitCode, Terminated  # noqa: E402
from mpac_drill.sandbox import control  # noqa: E402


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds of the five drills (5)")
    parser.add_argument("--quick", action="store_true", help="2 rounds: a smoke check")
    parser.add_argument(
        "--repeat",
        type=int,
        help="rounds, as --runs (the spread section 5 wants 10: p5 and p95 of each drill)",
    )
    parser.add_argument(
        "--target",
        help="a sandbox target file (default: the benchmark's own, generated on ports 29xxx)",
    )
    parser.add_argument(
        "--out", help="folder for the target copy and run folders (default: a new temporary folder)"
    )
    parser.add_argument("--delays", default="1,3", help="the two recovery delays D1,D2 (1,3)")
    parser.add_argument("--lag", type=float, default=2.0, help="replication lag in s (2)")
    parser.add_argument("--users", type=int, default=3, help="locust users during drills (3)")
    parser.add_argument("--load-users", type=int, default=20, help="users for 4. (20)")
    parser.add_argument("--load-seconds", type=float, default=10.0, help="each, for 4. (10)")
    parser.add_argument(
        "--load-wait",
        default="0,0",
        help="think time min,max s for 4. (0,0; the locustfile's is 0.02,0.1)",
    )
    args = parser.parse_args(argv)
    rounds = args.repeat if args.repeat else (2 if args.quick else args.runs)
    try:
        d1, d2 = (float(x) for x in args.delays.split(","))
    except ValueError:
        parser.error(f"--delays {args.delays!r}: expected two numbers D1,D2")
    if rounds < 1 or d2 <= d1:
        parser.error("--runs must be >= 1 and --delays D1,D2 with D2 > D1")

    out = Path(args.out or tempfile.mkdtemp(prefix="mpac-bench-drills-")).resolve()
    target_path = Path(args.target).resolve() if args.target else write_bench_target(out)
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    target = load_target(str(target_path))
    sdir = control.state_dir(target)
    print(f"target {target_path} (state folder {sdir})\nrun folders under {runs_dir}", flush=True)
    signal.signal(signal.SIGTERM, _terminated)
    started_here = not control.status(target)["running"]
    plans = make_plans(d1, d2, args.lag)
    drills: list[Drill] = []
    load: dict[int, dict[str, float]] = {}
    code = 0
    try:
        t0 = time.monotonic()
        sandbox_up(target)
        print(
            f"sandbox up in {time.monotonic() - t0:.1f} s; {rounds} round(s) of "
            f"{len(plans)} drills, {args.users} users",
            flush=True,
        )
        for i in range(1, rounds + 1):
            for plan in plans:
                d = run_one(target_path, plan, i, runs_dir, args.users)
                drills.append(d)
                m = d.m
                print(
                    f"[{len(drills):>2}/{rounds * len(plans)}] {plan.label:<11} "
                    f"{d.result.get('status', 'error'):<9} rto {m.get('rto_s')}  detect "
                    f"{m.get('detect_s')}  rpo {m.get('rpo_s')}  lost {m.get('lost_writes')}"
                    f"  wall {d.wall_s:.1f} s  {d.run_dir.name if d.run_dir else d.error}",
                    flush=True,
                )
        for workers in (0, 2):
            load[workers] = run_locust(
                target,
                out / f"locust-{workers}-workers",
                users=args.load_users,
                seconds=args.load_seconds,
                workers=workers,
                wait=args.load_wait,
            )
            print(f"locust {workers} workers: {load[workers]['rps']:.0f} req/s", flush=True)
    except (KeyboardInterrupt, Terminated) as exc:
        print("interrupted: stopping the sandbox; figures so far follow", file=sys.stderr)
        code = int(ExitCode.TERMINATED if isinstance(exc, Terminated) else ExitCode.INTERRUPTED)
    except DrillError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        code = int(ExitCode.HARNESS)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop `down`
        if started_here or not args.target:
            with contextlib.suppress(Exception):
                control.down(target)
        else:
            print(f"the sandbox of {target_path} was already running: left running")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    report(drills, plans, load, target, sdir, args)
    return code


if __name__ == "__main__":
    sys.exit(main())

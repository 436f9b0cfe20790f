"""Benchmark: how fast the sandbox comes up cold, and how much memory it holds.

    .venv/bin/python bench/sandbox.py              # 3 cold starts
    .venv/bin/python bench/sandbox.py --runs 5

Each run stops the sandbox (``mpac-drill sandbox down``, not timed) and times
``mpac-drill sandbox up`` as a user runs it: a fresh interpreter, until every component
answers healthy. After the last start (and ``--settle-s`` of quiet) it sums the memory of
every process the sandbox started (``marked_processes`` of its state folder): PSS, which
splits each shared page among the processes mapping it, and RSS for comparison; RSS counts
PostgreSQL's shared buffers and the forked workers' shared pages once per process, so
its sum overstates what the sandbox costs. Goals: up in at most 10 s, at most 512 MiB PSS.
The sandbox is stopped at the end.

The sandbox's ports and state folder are fixed by the target: a sandbox that is already
running (someone may be using it), or that ran in the last ``--quiet-s`` seconds (a test
session may be between two drills), is left alone and the benchmark refuses to run;
``--force`` skips the second check only.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mpac_drill.config import load_target  # noqa: E402
from mpac_drill.sandbox import control  # noqa: E402
from mpac_drill.sandbox.procs import marked_processes  # noqa: E402

GOAL_UP_S = 10.0
GOAL_PSS_BYTES = 512 * 1024**2
QUIET_S = 120.0
MIB = 1024**2
CLI = [sys.executable, "-c", "import sys; from mpac_drill.cli import main; sys.exit(main())"]


def _cli(*args: str, timeout_s: float = 180.0) -> float:
    """Run ``mpac-drill ARGS`` in a fresh interpreter; its wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(
            f"mpac-drill {' '.join(args)} exited {done.returncode}: " + " | ".join(tail)
        )
    return elapsed


def _memory(state_dir: Path) -> tuple[int, int, dict[str, list[int]], int]:
    """PSS sum, RSS sum, {process name: [count, pss, rss]}, processes not readable."""
    pss = rss = unreadable = 0
    by_name: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for process in marked_processes(state_dir):
        try:
            info = process.memory_full_info()
            name = process.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            unreadable += 1
            continue
        pss, rss = pss + info.pss, rss + info.rss
        row = by_name[name]
        row[0], row[1], row[2] = row[0] + 1, row[1] + info.pss, row[2] + info.rss
    return pss, rss, dict(by_name), unreadable


def _idle_s(state_dir: Path) -> float:
    """Seconds since the sandbox's daemon last wrote its log or state (inf: never ran)."""
    stamps = []
    for name in ("daemon.log", "state.json"):
        with contextlib.suppress(FileNotFoundError):
            stamps.append((state_dir / name).stat().st_mtime)
    return time.time() - max(stamps) if stamps else float("inf")


def _verdict(value: float, goal: float) -> str:
    return "met" if value <= goal else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="cold starts to time (default 3)")
    parser.add_argument(
        "--settle-s",
        type=float,
        default=2.0,
        help="quiet seconds after the last start before memory is read",
    )
    parser.add_argument(
        "--quiet-s",
        type=float,
        default=QUIET_S,
        help="refuse when the sandbox ran this recently (default 120)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="run although the sandbox ran recently (never when it runs)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    target = load_target("sandbox")
    state_dir = control.state_dir(target)
    if control.status(target)["running"]:
        print(
            f"a sandbox is already running (state folder {state_dir}): not touching it; "
            "stop it with `mpac-drill sandbox down` and run the benchmark again",
            file=sys.stderr,
        )
        return 2
    idle_s = _idle_s(state_dir)
    if idle_s < args.quiet_s and not args.force:
        print(
            f"the sandbox ran {idle_s:.0f} s ago (state folder {state_dir}): someone may be "
            f"between two drills; wait {args.quiet_s:.0f} s of quiet or pass --force",
            file=sys.stderr,
        )
        return 2

    times: list[float] = []
    try:
        for i in range(args.runs):
            _cli("sandbox", "down")
            times.append(_cli("sandbox", "up"))
            print(f"run {i + 1}/{args.runs}: sandbox up (cold) in {times[-1]:.2f} s", flush=True)
        time.sleep(args.settle_s)
        pss, rss, by_name, unreadable = _memory(state_dir)
    finally:
        with contextlib.suppress(Exception):
            _cli("sandbox", "down")

    worst, median = max(times), statistics.median(times)
    print()
    print(
        f"cold `sandbox up`: median {median:.2f} s, worst {worst:.2f} s, best "
        f"{min(times):.2f} s over {len(times)} run(s); goal <= {GOAL_UP_S:.0f} s: "
        f"{_verdict(worst, GOAL_UP_S)} (judged on the worst run)"
    )
    count = sum(row[0] for row in by_name.values())
    print(
        f"memory of {count} sandbox processes: PSS {pss / MIB:.1f} MiB; goal <= "
        f"{GOAL_PSS_BYTES / MIB:.0f} MiB: {_verdict(pss, GOAL_PSS_BYTES)}"
    )
    print(
        f"  (RSS sum {rss / MIB:.1f} MiB, for comparison only: RSS counts PostgreSQL's "
        "shared memory and pages shared with forked workers once per process)"
    )
    if unreadable:
        print(f"  {unreadable} process(es) could not be read (gone or not ours): not counted")
    print(f"  {'process':<24} {'count':>5} {'PSS MiB':>9} {'RSS MiB':>9}")
    for name, (n, p, r) in sorted(by_name.items(), key=lambda item: -item[1][1]):
        print(f"  {name:<24} {n:>5} {p / MIB:>9.1f} {r / MIB:>9.1f}")
    met = worst <= GOAL_UP_S and pss <= GOAL_PSS_BYTES
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

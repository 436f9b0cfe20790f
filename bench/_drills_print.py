"""``bench/drills.py``: printing the figures (accuracy, overhead, jitter, locust) and what
looks odd in the run folders."""

from __future__ import annotations

import argparse
import os
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench._drills_model import (
    GOAL_ERROR_S,
    GOAL_JITTER_S,
    GOAL_OVERHEAD_S,
    OVERHEAD_PARTS,
    Drill,
    Plan,
)
from bench._drills_read import (
    canary_intervals,
    intervals,
    overhead,
    platform_times,
    read_csv,
    timeline,
    ts,
)
from mpac_drill.config import Target
from mpac_drill.measure.recovery import Sample, compute_recovery


def report(
    drills: list[Drill],
    plans: list[Plan],
    load: dict[int, dict[str, float]],
    target: Target,
    sdir: Path,
    args: argparse.Namespace,
) -> None:
    if not drills:
        return
    odd: list[str] = []
    warmup, cooldown = float(target.get("drill.warmup_s")), float(target.get("drill.cooldown_s"))
    print(
        f"\n=== {len(drills)} drills, {sum(d.ok for d in drills)} completed with an RTO "
        f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}) ==="
    )
    _accuracy(drills, plans, sdir / "daemon.log", odd)
    _overheads(drills, warmup, cooldown)
    _jitter(
        drills,
        float(target.get("drill.observer_interval_s")),
        float(target.get("drill.canary_interval_s")),
        odd,
    )
    print(
        f"\n4. LOCUST  {args.load_users} users, think time {args.load_wait} s, "
        f"{args.load_seconds:g} s each (first and last second dropped)"
    )
    for workers, f in load.items():
        what = "1 process" if not workers else f"master + {workers} workers"
        print(
            f"  {what:<20} {f['rps']:7.0f} req/s (per second {f['rps_min']}-{f['rps_max']})"
            f"  requests {f['requests']}  failures {f['failures']}  p95 {f['p95_ms']:.0f} ms"
        )
    if len(load) == 2 and load[0]["rps"]:
        print(f"  ratio 2 workers / 1 process: {load[2]['rps'] / load[0]['rps']:.2f}")
    _spread(drills, plans, warmup, cooldown)
    _check(drills, odd)
    print("\nODD" if odd else "\nnothing odd in the run folders")
    for line in odd:
        print(f"  - {line}")


GOAL_SPREAD_S = 0.3  # p95 - p5 of one drill's RTO over the rounds, idle machine
GOAL_WALL_EXTRA_S = 2.0  # a drill's wall time beyond its delay, warm-up and cool-down


def _spread(drills: list[Drill], plans: list[Plan], warmup: float, cooldown: float) -> None:
    """5. How steady each drill's RTO is over the rounds, and what one drill costs."""
    from mpac_drill.measure.stats import spread as spread_of

    print(
        f"\n5. SPREAD  RTO per drill over the rounds: p95 - p5 (goal <= {GOAL_SPREAD_S} s for "
        f"ECS and RDS), median with its bootstrap 95 % interval; wall time per drill against "
        f"delay + warm-up + cool-down + {GOAL_WALL_EXTRA_S:g} s"
    )
    for plan in plans:
        mine = [d for d in drills if d.plan == plan and d.ok]
        rtos = [float(d.m["rto_s"]) for d in mine]
        if len(rtos) < 2:
            print(f"  {plan.label:<11} n={len(rtos)}: too few rounds for a spread")
            continue
        s = spread_of(rtos)
        spread = _p(rtos, 95) - _p(rtos, 5)
        walls = [d.wall_s for d in mine]
        budget = plan.delay + plan.lag + warmup + cooldown + GOAL_WALL_EXTRA_S
        print(
            f"  {plan.label:<11} p5 {_p(rtos, 5):.3f}  median {s['median'] or 0:.3f} "
            f"[{s['ci_low'] or 0:.3f}, {s['ci_high'] or 0:.3f}]  p95 {_p(rtos, 95):.3f}  "
            f"spread {spread:.3f} {_v(spread, GOAL_SPREAD_S)}  wall median "
            f"{statistics.median(walls):.1f} s / {budget:.1f} s "
            f"{_v(statistics.median(walls), budget)}  (n={len(rtos)})"
        )


def _v(value: float | None, goal: float) -> str:
    return "n/a" if value is None else ("PASS" if value <= goal else "MISS")


def _stats(values: list[float]) -> str:
    if not values:
        return "no data"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return (
        f"mean {statistics.mean(values):+.3f}  sd {sd:.3f}  min {min(values):+.3f}  "
        f"max {max(values):+.3f}  (n={len(values)})"
    )


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _ready(d: Drill, log: Path) -> float | None:
    """When the platform was back, in s after injection: ECS, the first replacement task
    answering /health directly (polled every 20 ms); RDS, the daemon's "promoted" line."""
    if d.plan.scenario == "ecs-task-failure":
        if d.task_ready is None:
            return None
        return d.task_ready - ts(d.result["fault"]["injected_at"])
    return platform_times(log, d)[1]


def _err_line(name: str, errs: list[float]) -> str:
    worst = max((abs(e) for e in errs), default=None)
    mean = f"{statistics.mean(errs):+.3f}" if errs else "n/a"
    wtxt = "n/a" if worst is None else f"{worst:.3f}"
    return f"{name}  mean {mean}  max |error| {wtxt}  (n={len(errs)})  {_v(worst, GOAL_ERROR_S)}"


def _accuracy(drills: list[Drill], plans: list[Plan], log: Path, odd: list[str]) -> None:
    print(f"\n1. ACCURACY  (seconds; goal: max |error| <= {GOAL_ERROR_S:.1f} s)")
    by = {p.label: {d.round: d for d in drills if d.plan == p and d.ok} for p in plans}
    ready = {id(d): _ready(d, log) for d in drills if d.ok}
    for lo, hi in ((plans[0], plans[1]), (plans[2], plans[3])):
        rounds = sorted(set(by[lo.label]) & set(by[hi.label]))
        pairs = [(by[lo.label][r], by[hi.label][r]) for r in rounds]
        dd = hi.delay - lo.delay
        errs = [b.m["rto_s"] - a.m["rto_s"] - dd for a, b in pairs]
        print(
            "  "
            + _err_line(f"{lo.scenario:<17} RTO({hi.delay:g}) - RTO({lo.delay:g}) - {dd:g}:", errs)
        )
        # The same difference with the platform's own variation taken out: what is left is
        # the harness's (observer, ALB re-admission) share of the error.
        harness = [
            (b.m["rto_s"] - rb) - (a.m["rto_s"] - ra)
            for a, b in pairs
            if (ra := ready[id(a)]) is not None and (rb := ready[id(b)]) is not None
        ]
        what = "task answered" if lo.scenario == "ecs-task-failure" else "standby promoted"
        print("    " + _err_line(f"the same, less the platform's variation ({what}):", harness))
        for p in (lo, hi):
            runs = list(by[p.label].values())
            offsets = [d.m["rto_s"] - p.delay for d in runs]
            print(f"    offset RTO - {p.delay:g} ({p.label}):  {_stats(offsets)}")
            back = [(d, r) for d in runs if (r := ready[id(d)]) is not None]
            print(f"      {what} - delay:      {_stats([r - p.delay for _, r in back])}")
            print(f"      RTO - {what}:      {_stats([d.m['rto_s'] - r for d, r in back])}")
            if p.scenario == "ecs-task-failure":
                relaunch = [
                    a - p.delay for d in runs if (a := platform_times(log, d)[1]) is not None
                ]
                print(f"      (tasks relaunched - delay: {_stats(relaunch)})")
            if len(offsets) > 2:
                med = statistics.median(offsets)
                odd += [
                    f"{p.label}: offset {o:+.3f} s is {o - med:+.3f} s from the median "
                    f"{med:+.3f} s ({d.run_dir})"
                    for d, o in zip(runs, offsets, strict=True)
                    if abs(o - med) > GOAL_ERROR_S
                ]
            for d, r in back:
                late = d.m["rto_s"] - r
                if not 0 <= late <= 0.5:
                    odd.append(
                        f"{p.label}: RTO {d.m['rto_s']:.3f} s but the platform was back "
                        f"at {r:.3f} s ({what}) ({d.run_dir})"
                    )
    lag = plans[4]
    runs = list(by[lag.label].values())
    errs = [d.m["rpo_s"] - lag.lag for d in runs if d.m.get("rpo_s") is not None]
    print("  " + _err_line(f"rds-failover      rpo_s - {lag.lag:g} (replication lag):", errs))
    if errs:
        print(f"    {_stats(errs)}")
    print(
        f"    lost_writes {[d.m.get('lost_writes') for d in runs]}; "
        f"RTO {[d.m['rto_s'] for d in runs]}"
    )


def _overheads(drills: list[Drill], warmup: float, cooldown: float) -> None:
    print(
        f"\n2. HARNESS OVERHEAD  wall - rto_s - warmup {warmup:g} s - cooldown {cooldown:g} s"
        f" (- lag)  (goal <= {GOAL_OVERHEAD_S:.0f} s)"
    )
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    for d in drills:
        if d.ok and d.run_dir is not None:
            parts = overhead(d, d.t_call, d.t_return, warmup, cooldown)
            if parts is not None:
                rows[d.plan.label].append(parts)
    every = [p for ps in rows.values() for p in ps]
    for label, ps in rows.items():
        tot = [p["total"] for p in ps]
        print(
            f"  {label:<12} mean {statistics.mean(tot):5.2f} s  max {max(tot):5.2f} s  "
            f"(n={len(tot)})  {_v(max(tot), GOAL_OVERHEAD_S)}"
        )
    if not every:
        print("  no completed drill")
        return
    tot = [p["total"] for p in every]
    print(
        f"  all drills   mean {statistics.mean(tot):5.2f} s  max {max(tot):5.2f} s  "
        f"{_v(max(tot), GOAL_OVERHEAD_S)}"
    )
    print("  split (mean s, max s, share of the mean):")
    for part in OVERHEAD_PARTS:
        vals = [p[part] for p in every]
        print(
            f"    {part:<22} {statistics.mean(vals):6.3f} {max(vals):6.3f}  "
            f"{statistics.mean(vals) / statistics.mean(tot):5.0%}"
        )


def _jitter(drills: list[Drill], obs_i: float, can_i: float, odd: list[str]) -> None:
    print(f"\n3. JITTER  |interval - nominal|, ms (goal p99 <= {GOAL_JITTER_S * 1000:.0f} ms)")
    o_all, o_clean, c_all, c_clean = [], [], [], []
    for d in drills:
        if d.run_dir is None:
            continue
        every, clean, longest = intervals(d.run_dir, obs_i)
        o_all += every
        o_clean += clean
        if longest > 3 * obs_i:
            odd.append(f"observer gap of {longest:.3f} s (nominal {obs_i:g} s) in {d.run_dir}")
        every, clean = canary_intervals(d.run_dir, can_i)
        c_all += every
        c_clean += clean
    for name, vals in (
        (f"observer ({obs_i * 1000:.0f} ms), every slot", o_all),
        ("observer, slots not overrun by a slow answer", o_clean),
        (f"canary ({can_i * 1000:.0f} ms), every write", c_all),
        ("canary, after acked writes faster than the interval", c_clean),
    ):
        p99 = _p(vals, 99)
        print(
            f"  {name:<52} p50 {_p(vals, 50) * 1000:6.1f}  p99 {p99 * 1000:6.1f}  "
            f"max {max(vals, default=float('nan')) * 1000:7.1f}  n={len(vals):<6} "
            f"{_v(p99 if vals else None, GOAL_JITTER_S)}"
        )


def _check(drills: list[Drill], odd: list[str]) -> None:
    """Anything a reader of the figures should know, with its run folder."""
    for d in drills:
        where = d.run_dir or "no run folder"
        if d.error:
            odd.append(f"{d.plan.label} round {d.round}: {d.error}")
            continue
        if not d.ok:
            odd.append(
                f"{d.plan.label} round {d.round}: status {d.result.get('status')}, "
                f"rto_s {d.m.get('rto_s')}: {d.result.get('reason')} ({where})"
            )
            continue
        assert d.run_dir is not None
        k = int(d.result.get("settings", {}).get("recovery_consecutive") or 3)
        samples = [
            Sample(t=t, service=s, ok=ok)
            for s, rows in timeline(d.run_dir).items()
            for t, ok, _ in rows
        ]
        again = compute_recovery(samples, k)["rto_s"]
        if again is None or abs(again - d.m["rto_s"]) > 0.0015:
            odd.append(
                f"{d.plan.label}: result rto_s {d.m['rto_s']} but timeline.csv gives "
                f"{again} ({where})"
            )
        ledger = read_csv(d.run_dir / "canary.csv")
        lost = sum(1 for r in ledger if r["acked"] == "1" and r["present"] == "0")
        acked = sum(1 for r in ledger if r["acked"] == "1")
        if (lost, acked) != (d.m.get("lost_writes"), d.m.get("acked_writes")):
            odd.append(
                f"{d.plan.label}: result lost/acked {d.m.get('lost_writes')}/"
                f"{d.m.get('acked_writes')} but canary.csv has {lost}/{acked} ({where})"
            )
        if d.plan.scenario == "rds-failover" and not d.plan.lag and d.m.get("lost_writes"):
            odd.append(
                f"{d.plan.label}: {d.m['lost_writes']} writes lost without replication "
                f"lag ({where})"
            )
        detect = d.m.get("detect_s")
        if detect is None or detect > 0.5:
            odd.append(f"{d.plan.label}: detect_s {detect} ({where})")

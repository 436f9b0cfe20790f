"""Benchmark: how true, how cheap and how steady a drill's measurements are, on the sandbox.

    .venv/bin/python bench/drills.py              # 5 runs of each drill below (~25 drills)
    .venv/bin/python bench/drills.py --quick      # 2 runs each: a smoke check
    .venv/bin/python bench/drills.py --target ./my-sandbox.yaml --runs 8

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
   workers, the same users (no think time by default: capacity, not a user model).

Besides the figures it lists anything odd (a drill that did not complete, an RTO that the
run's own timeline.csv does not give back, writes lost without lag, ...) with its run folder.

By default the benchmark starts its own sandbox (``bench/_target.py``: state folder
``.sandbox-bench``, ports 43xxx-45xxx) so it never touches one a developer or a test uses,
and stops it at the end, also on Ctrl-C. Run folders go to a temporary folder (printed).
Exit 0 whatever the figures (a benchmark, not a test); 3 when the sandbox cannot start,
130 on Ctrl-C and 143 on SIGTERM (the figures so far are still printed).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._target import write_bench_target  # noqa: E402
from mpac_drill.config import Target, load_target  # noqa: E402
from mpac_drill.drill.runner import run_drill  # noqa: E402
from mpac_drill.errors import DrillError, ExitCode, Terminated, UsageError  # noqa: E402
from mpac_drill.load import PER_SECOND_FILE, LoadRunner, summarize  # noqa: E402
from mpac_drill.sandbox import control  # noqa: E402
from probes.observer import probe_http  # noqa: E402
from probes.recovery import Sample, compute_recovery  # noqa: E402

GOAL_ERROR_S = 0.3
GOAL_OVERHEAD_S = 5.0
GOAL_JITTER_S = 0.020
ECS_SERVICE = "svc-portal"  # the service experiments/ecs-task-failure.yaml stops
OVERHEAD_PARTS = ("sandbox check", "steady state before", "load start", "observers start",
                  "fault injection", "recovery confirmed", "canary read-back",
                  "observers+load stop", "steady state after", "rollbacks", "result writing",
                  "chaoslib gaps")


@dataclass(frozen=True)
class Plan:
    label: str
    scenario: str
    sets: dict[str, float]
    delay: float  # the configured recovery delay of this drill
    lag: float = 0.0


@dataclass
class Drill:
    plan: Plan
    round: int
    wall_s: float = 0.0
    run_dir: Path | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    t_call: float = 0.0  # time.time() around run_drill
    t_return: float = 0.0
    task_ready: float | None = None  # ECS: when a replacement task first answered (time.time())

    @property
    def m(self) -> dict[str, Any]:
        return self.result.get("measurements", {})

    @property
    def ok(self) -> bool:
        return self.result.get("status") == "completed" and self.m.get("rto_s") is not None


def _plans(d1: float, d2: float, lag: float) -> list[Plan]:
    ecs, rds = "ecs.task_start_delay_s", "rds.failover_delay_s"
    lag_key = "rds.replication_lag_s"
    return [Plan(f"ecs d={d1:g}", "ecs-task-failure", {ecs: d1}, d1),
            Plan(f"ecs d={d2:g}", "ecs-task-failure", {ecs: d2}, d2),
            Plan(f"rds d={d1:g}", "rds-failover", {rds: d1, lag_key: 0.0}, d1),
            Plan(f"rds d={d2:g}", "rds-failover", {rds: d2, lag_key: 0.0}, d2),
            Plan(f"rds lag={lag:g}", "rds-failover", {rds: d1, lag_key: lag}, d1, lag)]


# ------------------------------------------------------------------ reading a run folder


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        return []


def _timeline(run_dir: Path) -> dict[str, list[tuple[float, bool, float]]]:
    """Per service, in time order: (t_rel_s, ok, latency_ms)."""
    out: dict[str, list[tuple[float, bool, float]]] = defaultdict(list)
    for r in _read_csv(run_dir / "timeline.csv"):
        if r["t_rel_s"]:
            out[r["service"]].append((float(r["t_rel_s"]), r["ok"] == "1",
                                      float(r["latency_ms"])))
    return {k: sorted(v) for k, v in out.items()}


def _overhead(d: Drill, t_call: float, t_return: float, warmup: float, cooldown: float
              ) -> dict[str, float] | None:
    """The drill's wall time beyond the fault's own times, by part (see OVERHEAD_PARTS)."""
    assert d.run_dir is not None
    try:
        j = json.loads((d.run_dir / "journal.json").read_text())
        run = {a["activity"]["name"]: a for a in j["run"]}
        rollbacks = j.get("rollbacks") or []
        injected = _ts(d.result["fault"]["injected_at"])

        def span(name: str) -> tuple[float, float]:
            return _ts(run[name]["start"]), _ts(run[name]["end"])

        load, obs, inject = span("start-load"), span("start-observers"), span("inject-fault")
        rto, rpo = span("measure-rto"), span("measure-rpo")
        stop_o, stop_l = span("stop-observers"), span("stop-load")
        rb_start = _ts(rollbacks[0]["start"]) if rollbacks else stop_l[1]
        rb_end = _ts(rollbacks[-1]["end"]) if rollbacks else stop_l[1]
        parts = {
            "sandbox check": _ts(j["start"]) - t_call,
            "steady state before": load[0] - _ts(j["start"]),
            "load start": load[1] - load[0],
            "observers start": obs[1] - obs[0] - warmup,
            "fault injection": injected - inject[0] - d.plan.lag,
            "recovery confirmed": rto[1] - injected - d.m["rto_s"] - cooldown,
            "canary read-back": rpo[1] - rpo[0],
            "observers+load stop": (stop_o[1] - stop_o[0]) + (stop_l[1] - stop_l[0]),
            "steady state after": rb_start - stop_l[1],
            "rollbacks": rb_end - rb_start,
            "result writing": t_return - _ts(j["end"]),
        }
    except (OSError, KeyError, TypeError, ValueError, IndexError):
        return None
    total = d.wall_s - d.m["rto_s"] - warmup - cooldown - d.plan.lag
    parts["chaoslib gaps"] = total - sum(parts.values())
    parts["total"] = total
    return parts


def _platform(log: Path, d: Drill) -> tuple[float | None, float | None]:
    """From the sandbox daemon's log: (seconds from injection until the daemon saw the fault,
    until it had relaunched every stopped task / promoted the standby)."""
    if not d.result.get("fault", {}).get("injected_at"):
        return None, None
    t0 = _ts(d.result["fault"]["injected_at"])
    seen = acted = None
    stopped: set[str] = set()
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            try:
                t = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").astimezone().timestamp()
            except ValueError:
                continue
            if t < t0 - 0.01 or t > t0 + 60:
                continue
            msg = line[24:]
            if seen is None and (" died" in msg or "stopped (exit" in msg):
                seen = t - t0
            if "stopped (exit" in msg:
                stopped.add(msg.split()[1])
            if msg.startswith("rds: promoted") and d.plan.scenario == "rds-failover":
                return seen, t - t0
            if msg.endswith(" replaced") and msg.split()[1] in stopped:
                stopped.discard(msg.split()[1])
                acted = t - t0
                if not stopped:
                    return seen, acted
    return seen, acted


def _intervals(run_dir: Path, interval: float) -> tuple[list[float], list[float], float]:
    """Observer: |interval error| of every slot, of the slots no slow answer overran; the
    longest gap between two samples of one service."""
    every, clean, longest = [], [], 0.0
    for rows in _timeline(run_dir).values():
        for (t_a, _, lat_a), (t_b, _, _) in zip(rows, rows[1:], strict=False):
            err = abs(t_b - t_a - interval)
            every.append(err)
            longest = max(longest, t_b - t_a)
            if lat_a / 1000 < interval:
                clean.append(err)
    return every, clean, longest


def _canary_intervals(run_dir: Path, interval: float) -> tuple[list[float], list[float]]:
    rows = _read_csv(run_dir / "canary.csv")
    every, clean = [], []
    for a, b in zip(rows, rows[1:], strict=False):
        err = abs(float(b["t_rel_s"]) - float(a["t_rel_s"]) - interval)
        every.append(err)
        if a["acked"] == "1" and float(a["ack_rel_s"]) - float(a["t_rel_s"]) < interval:
            clean.append(err)
    return every, clean


# ------------------------------------------------------------------ running


class _TaskProbe:
    """Ground truth for ECS drills: polls each task of a service directly (not through the
    ALB) and notes when the first replacement answers ``/health`` after the tasks died."""

    def __init__(self, urls: list[str], interval_s: float = 0.02) -> None:
        self.urls, self.interval_s = urls, interval_s
        self.ready: dict[str, float] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(u,), daemon=True)
                         for u in urls]

    def __enter__(self) -> _TaskProbe:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)

    def _loop(self, url: str) -> None:
        down = False
        while not self._stop.is_set():
            sent = time.time()
            ok, _ = probe_http(url, 0.5)
            if not ok:
                down = True
            elif down:
                self.ready[url] = sent
                return
            self._stop.wait(self.interval_s if down else 0.1)

    @property
    def first_ready(self) -> float | None:
        return min(self.ready.values(), default=None)


def _task_urls(target: Target, service: str) -> list[str]:
    state = control.view(target).state
    return [f"http://{c['address']}/health" for c in state["components"]
            if c["kind"] == "ecs" and c["name"].startswith(f"{service}/")]


def _drill(target_path: Path, plan: Plan, i: int, runs_dir: Path, users: int) -> Drill:
    d = Drill(plan=plan, round=i)
    target = load_target(str(target_path), plan.sets)
    t_call = time.time()
    try:
        urls = _task_urls(target, ECS_SERVICE) if plan.scenario == "ecs-task-failure" else []
        t_call = time.time()
        with _TaskProbe(urls) as probe:
            outcome = run_drill(plan.scenario, target, runs_dir=runs_dir, users=users)
            t_return = time.time()
        d.task_ready = probe.first_ready
    except DrillError as exc:
        d.wall_s, d.error = time.time() - t_call, f"{exc.__class__.__name__}: {exc}"
        return d
    d.wall_s, d.run_dir, d.result = t_return - t_call, outcome.run_dir, outcome.result
    d.t_call, d.t_return = t_call, t_return
    if outcome.exit_code == ExitCode.INTERRUPTED:
        raise KeyboardInterrupt
    if outcome.exit_code == ExitCode.TERMINATED:
        raise Terminated
    return d


def _locust(target: Target, out_dir: Path, *, users: int, seconds: float, workers: int,
            wait: str) -> dict[str, float]:
    hosts = control.view(target).endpoints["services"]
    runner = LoadRunner(out_dir=out_dir, hosts={"portal": hosts["svc-portal"],
                        "smarttab": hosts["svc-smarttab"], "pgw": hosts["pgw"]},
                        users=users, spawn_rate=users, run_time_s=int(seconds) + 60,
                        workers=workers)
    old = os.environ.get("MPAC_LOAD_WAIT_S")
    os.environ["MPAC_LOAD_WAIT_S"] = wait
    try:
        runner.start()
        time.sleep(seconds)
    finally:
        runner.stop()
        if old is None:
            os.environ.pop("MPAC_LOAD_WAIT_S", None)
        else:
            os.environ["MPAC_LOAD_WAIT_S"] = old
    totals = summarize(out_dir)
    per_s = [int(r["requests"]) for r in _read_csv(out_dir / PER_SECOND_FILE)
             if r["name"] == "Aggregated"][1:-1]  # the first and last seconds are partial
    return {"rps": statistics.mean(per_s) if per_s else 0.0,
            "rps_min": min(per_s, default=0), "rps_max": max(per_s, default=0),
            "requests": totals["requests"], "failures": totals["failures"],
            "p95_ms": totals["p95_ms"] or 0.0, "seconds": len(per_s)}


# ------------------------------------------------------------------ printing


def _v(value: float | None, goal: float) -> str:
    return "n/a" if value is None else ("PASS" if value <= goal else "MISS")


def _stats(values: list[float]) -> str:
    if not values:
        return "no data"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return (f"mean {statistics.mean(values):+.3f}  sd {sd:.3f}  min {min(values):+.3f}  "
            f"max {max(values):+.3f}  (n={len(values)})")


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _ready(d: Drill, log: Path) -> float | None:
    """When the platform was back, in s after injection: ECS, the first replacement task
    answering /health directly (polled every 20 ms); RDS, the daemon's "promoted" line."""
    if d.plan.scenario == "ecs-task-failure":
        if d.task_ready is None:
            return None
        return d.task_ready - _ts(d.result["fault"]["injected_at"])
    return _platform(log, d)[1]


def _err_line(name: str, errs: list[float]) -> str:
    worst = max((abs(e) for e in errs), default=None)
    mean = f"{statistics.mean(errs):+.3f}" if errs else "n/a"
    wtxt = "n/a" if worst is None else f"{worst:.3f}"
    return (f"{name}  mean {mean}  max |error| {wtxt}  (n={len(errs)})  "
            f"{_v(worst, GOAL_ERROR_S)}")


def _accuracy(drills: list[Drill], plans: list[Plan], log: Path, odd: list[str]) -> None:
    print(f"\n1. ACCURACY  (seconds; goal: max |error| <= {GOAL_ERROR_S:.1f} s)")
    by = {p.label: {d.round: d for d in drills if d.plan == p and d.ok} for p in plans}
    ready = {id(d): _ready(d, log) for d in drills if d.ok}
    for lo, hi in ((plans[0], plans[1]), (plans[2], plans[3])):
        rounds = sorted(set(by[lo.label]) & set(by[hi.label]))
        pairs = [(by[lo.label][r], by[hi.label][r]) for r in rounds]
        dd = hi.delay - lo.delay
        errs = [b.m["rto_s"] - a.m["rto_s"] - dd for a, b in pairs]
        print("  " + _err_line(f"{lo.scenario:<17} RTO({hi.delay:g}) - RTO({lo.delay:g}) - "
                               f"{dd:g}:", errs))
        # The same difference with the platform's own variation taken out: what is left is
        # the harness's (observer, ALB re-admission) share of the error.
        harness = [(b.m["rto_s"] - rb) - (a.m["rto_s"] - ra) for a, b in pairs
                   if (ra := ready[id(a)]) is not None and (rb := ready[id(b)]) is not None]
        what = "task answered" if lo.scenario == "ecs-task-failure" else "standby promoted"
        print("    " + _err_line(f"the same, less the platform's variation ({what}):",
                                   harness))
        for p in (lo, hi):
            runs = list(by[p.label].values())
            offsets = [d.m["rto_s"] - p.delay for d in runs]
            print(f"    offset RTO - {p.delay:g} ({p.label}):  {_stats(offsets)}")
            back = [(d, r) for d in runs if (r := ready[id(d)]) is not None]
            print(f"      {what} - delay:      {_stats([r - p.delay for _, r in back])}")
            print(f"      RTO - {what}:      {_stats([d.m['rto_s'] - r for d, r in back])}")
            if p.scenario == "ecs-task-failure":
                relaunch = [a - p.delay for d in runs if (a := _platform(log, d)[1]) is not None]
                print(f"      (tasks relaunched - delay: {_stats(relaunch)})")
            if len(offsets) > 2:
                med = statistics.median(offsets)
                odd += [f"{p.label}: offset {o:+.3f} s is {o - med:+.3f} s from the median "
                        f"{med:+.3f} s ({d.run_dir})" for d, o in zip(runs, offsets, strict=True)
                        if abs(o - med) > GOAL_ERROR_S]
            for d, r in back:
                late = d.m["rto_s"] - r
                if not 0 <= late <= 0.5:
                    odd.append(f"{p.label}: RTO {d.m['rto_s']:.3f} s but the platform was back "
                               f"at {r:.3f} s ({what}) ({d.run_dir})")
    lag = plans[4]
    runs = list(by[lag.label].values())
    errs = [d.m["rpo_s"] - lag.lag for d in runs if d.m.get("rpo_s") is not None]
    print("  " + _err_line(f"rds-failover      rpo_s - {lag.lag:g} (replication lag):", errs))
    if errs:
        print(f"    {_stats(errs)}")
    print(f"    lost_writes {[d.m.get('lost_writes') for d in runs]}; "
          f"RTO {[d.m['rto_s'] for d in runs]}")


def _overheads(drills: list[Drill], warmup: float, cooldown: float) -> None:
    print(f"\n2. HARNESS OVERHEAD  wall - rto_s - warmup {warmup:g} s - cooldown {cooldown:g} s"
          f" (- lag)  (goal <= {GOAL_OVERHEAD_S:.0f} s)")
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    for d in drills:
        if d.ok and d.run_dir is not None:
            parts = _overhead(d, d.t_call, d.t_return, warmup, cooldown)
            if parts is not None:
                rows[d.plan.label].append(parts)
    every = [p for ps in rows.values() for p in ps]
    for label, ps in rows.items():
        tot = [p["total"] for p in ps]
        print(f"  {label:<12} mean {statistics.mean(tot):5.2f} s  max {max(tot):5.2f} s  "
              f"(n={len(tot)})  {_v(max(tot), GOAL_OVERHEAD_S)}")
    if not every:
        print("  no completed drill")
        return
    tot = [p["total"] for p in every]
    print(f"  all drills   mean {statistics.mean(tot):5.2f} s  max {max(tot):5.2f} s  "
          f"{_v(max(tot), GOAL_OVERHEAD_S)}")
    print("  split (mean s, max s, share of the mean):")
    for part in OVERHEAD_PARTS:
        vals = [p[part] for p in every]
        print(f"    {part:<22} {statistics.mean(vals):6.3f} {max(vals):6.3f}  "
              f"{statistics.mean(vals) / statistics.mean(tot):5.0%}")


def _jitter(drills: list[Drill], obs_i: float, can_i: float, odd: list[str]) -> None:
    print(f"\n3. JITTER  |interval - nominal|, ms (goal p99 <= {GOAL_JITTER_S * 1000:.0f} ms)")
    o_all, o_clean, c_all, c_clean = [], [], [], []
    for d in drills:
        if d.run_dir is None:
            continue
        every, clean, longest = _intervals(d.run_dir, obs_i)
        o_all += every
        o_clean += clean
        if longest > 3 * obs_i:
            odd.append(f"observer gap of {longest:.3f} s (nominal {obs_i:g} s) in {d.run_dir}")
        every, clean = _canary_intervals(d.run_dir, can_i)
        c_all += every
        c_clean += clean
    for name, vals in (
            (f"observer ({obs_i * 1000:.0f} ms), every slot", o_all),
            ("observer, slots not overrun by a slow answer", o_clean),
            (f"canary ({can_i * 1000:.0f} ms), every write", c_all),
            ("canary, after acked writes faster than the interval", c_clean)):
        p99 = _p(vals, 99)
        print(f"  {name:<52} p50 {_p(vals, 50) * 1000:6.1f}  p99 {p99 * 1000:6.1f}  "
              f"max {max(vals, default=float('nan')) * 1000:7.1f}  n={len(vals):<6} "
              f"{_v(p99 if vals else None, GOAL_JITTER_S)}")


def _check(drills: list[Drill], odd: list[str]) -> None:
    """Anything a reader of the figures should know, with its run folder."""
    for d in drills:
        where = d.run_dir or "no run folder"
        if d.error:
            odd.append(f"{d.plan.label} round {d.round}: {d.error}")
            continue
        if not d.ok:
            odd.append(f"{d.plan.label} round {d.round}: status {d.result.get('status')}, "
                       f"rto_s {d.m.get('rto_s')}: {d.result.get('reason')} ({where})")
            continue
        assert d.run_dir is not None
        k = int(d.result.get("settings", {}).get("recovery_consecutive") or 3)
        samples = [Sample(t=t, service=s, ok=ok)
                   for s, rows in _timeline(d.run_dir).items() for t, ok, _ in rows]
        again = compute_recovery(samples, k)["rto_s"]
        if again is None or abs(again - d.m["rto_s"]) > 0.0015:
            odd.append(f"{d.plan.label}: result rto_s {d.m['rto_s']} but timeline.csv gives "
                       f"{again} ({where})")
        ledger = _read_csv(d.run_dir / "canary.csv")
        lost = sum(1 for r in ledger if r["acked"] == "1" and r["present"] == "0")
        acked = sum(1 for r in ledger if r["acked"] == "1")
        if (lost, acked) != (d.m.get("lost_writes"), d.m.get("acked_writes")):
            odd.append(f"{d.plan.label}: result lost/acked {d.m.get('lost_writes')}/"
                       f"{d.m.get('acked_writes')} but canary.csv has {lost}/{acked} ({where})")
        if d.plan.scenario == "rds-failover" and not d.plan.lag and d.m.get("lost_writes"):
            odd.append(f"{d.plan.label}: {d.m['lost_writes']} writes lost without replication "
                       f"lag ({where})")
        detect = d.m.get("detect_s")
        if detect is None or detect > 0.5:
            odd.append(f"{d.plan.label}: detect_s {detect} ({where})")


# ------------------------------------------------------------------ main


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated


def _up(target: Target, tries: int = 45) -> None:
    """``control.up``, retried while a port is busy: the benchmark's ports lie in Linux's
    ephemeral range (32768-60999), so a closed client connection can hold one in TIME-WAIT
    for 60 s."""
    for i in range(tries):
        try:
            control.up(target, lambda m: print(f"  sandbox: {m}", flush=True))
            return
        except UsageError as exc:
            if "already in use" not in str(exc) or i == tries - 1:
                raise
            if i % 5 == 0:
                print(f"  sandbox: {exc}; retrying every 2 s", flush=True)
            time.sleep(2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds of the five drills (5)")
    parser.add_argument("--quick", action="store_true", help="2 rounds: a smoke check")
    parser.add_argument("--target", help="a sandbox target file (default: the benchmark's "
                        "own, generated on ports 43xxx-45xxx)")
    parser.add_argument("--out", help="folder for the target copy and run folders "
                        "(default: a new temporary folder)")
    parser.add_argument("--delays", default="1,3", help="the two recovery delays D1,D2 (1,3)")
    parser.add_argument("--lag", type=float, default=2.0, help="replication lag in s (2)")
    parser.add_argument("--users", type=int, default=3, help="locust users during drills (3)")
    parser.add_argument("--load-users", type=int, default=20, help="users for 4. (20)")
    parser.add_argument("--load-seconds", type=float, default=10.0, help="each, for 4. (10)")
    parser.add_argument("--load-wait", default="0,0",
                        help="think time min,max s for 4. (0,0; the locustfile's is 0.02,0.1)")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else args.runs
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
    print(f"target {target_path} (state folder {sdir})\nrun folders under {runs_dir}",
          flush=True)
    signal.signal(signal.SIGTERM, _terminated)
    started_here = not control.status(target)["running"]
    plans = _plans(d1, d2, args.lag)
    drills: list[Drill] = []
    load: dict[int, dict[str, float]] = {}
    code = 0
    try:
        t0 = time.monotonic()
        _up(target)
        print(f"sandbox up in {time.monotonic() - t0:.1f} s; {rounds} round(s) of "
              f"{len(plans)} drills, {args.users} users", flush=True)
        for i in range(1, rounds + 1):
            for plan in plans:
                d = _drill(target_path, plan, i, runs_dir, args.users)
                drills.append(d)
                m = d.m
                print(f"[{len(drills):>2}/{rounds * len(plans)}] {plan.label:<11} "
                      f"{d.result.get('status', 'error'):<9} rto {m.get('rto_s')}  detect "
                      f"{m.get('detect_s')}  rpo {m.get('rpo_s')}  lost {m.get('lost_writes')}"
                      f"  wall {d.wall_s:.1f} s  {d.run_dir.name if d.run_dir else d.error}",
                      flush=True)
        for workers in (0, 2):
            load[workers] = _locust(target, out / f"locust-{workers}-workers",
                                    users=args.load_users, seconds=args.load_seconds,
                                    workers=workers, wait=args.load_wait)
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
    _report(drills, plans, load, target, sdir, args)
    return code


def _report(drills: list[Drill], plans: list[Plan], load: dict[int, dict[str, float]],
            target: Target, sdir: Path, args: argparse.Namespace) -> None:
    if not drills:
        return
    odd: list[str] = []
    warmup, cooldown = float(target.get("drill.warmup_s")), float(target.get("drill.cooldown_s"))
    print(f"\n=== {len(drills)} drills, {sum(d.ok for d in drills)} completed with an RTO "
          f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}) ===")
    _accuracy(drills, plans, sdir / "daemon.log", odd)
    _overheads(drills, warmup, cooldown)
    _jitter(drills, float(target.get("drill.observer_interval_s")),
            float(target.get("drill.canary_interval_s")), odd)
    print(f"\n4. LOCUST  {args.load_users} users, think time {args.load_wait} s, "
          f"{args.load_seconds:g} s each (first and last second dropped)")
    for workers, f in load.items():
        what = "1 process" if not workers else f"master + {workers} workers"
        print(f"  {what:<20} {f['rps']:7.0f} req/s (per second {f['rps_min']}-{f['rps_max']})"
              f"  requests {f['requests']}  failures {f['failures']}  p95 {f['p95_ms']:.0f} ms")
    if len(load) == 2 and load[0]["rps"]:
        print(f"  ratio 2 workers / 1 process: {load[2]['rps'] / load[0]['rps']:.2f}")
    _check(drills, odd)
    print("\nODD" if odd else "\nnothing odd in the run folders")
    for line in odd:
        print(f"  - {line}")


if __name__ == "__main__":
    sys.exit(main())

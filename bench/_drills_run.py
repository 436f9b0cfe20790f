"""``bench/drills.py``: running the drills and locust on the benchmark's sandbox."""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path

from bench._drills_model import ECS_SERVICE, Drill, Plan
from bench._drills_read import read_csv
from mpac_drill.config import Target, load_target
from mpac_drill.drill.runner import run_drill
from mpac_drill.errors import DrillError, ExitCode, Terminated, UsageError
from mpac_drill.load import PER_SECOND_FILE, LoadRunner, summarize
from mpac_drill.measure.observer import probe_http
from mpac_drill.sandbox import control


class _TaskProbe:
    """Ground truth for ECS drills: polls each task of a service directly (not through the
    ALB) and notes when the first replacement answers ``/health`` after the tasks died."""

    def __init__(self, urls: list[str], interval_s: float = 0.02) -> None:
        self.urls, self.interval_s = urls, interval_s
        self.ready: dict[str, float] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(u,), daemon=True) for u in urls]

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
    return [
        f"http://{c['address']}/health"
        for c in state["components"]
        if c["kind"] == "ecs" and c["name"].startswith(f"{service}/")
    ]


def run_one(target_path: Path, plan: Plan, i: int, runs_dir: Path, users: int) -> Drill:
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


def run_locust(
    target: Target, out_dir: Path, *, users: int, seconds: float, workers: int, wait: str
) -> dict[str, float]:
    hosts = control.view(target).endpoints["services"]
    runner = LoadRunner(
        out_dir=out_dir,
        hosts={
            "portal": hosts["svc-portal"],
            "smarttab": hosts["svc-smarttab"],
            "pgw": hosts["pgw"],
        },
        users=users,
        spawn_rate=users,
        run_time_s=int(seconds) + 60,
        workers=workers,
    )
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
    per_s = [
        int(r["requests"]) for r in read_csv(out_dir / PER_SECOND_FILE) if r["name"] == "Aggregated"
    ][1:-1]  # the first and last seconds are partial
    return {
        "rps": statistics.mean(per_s) if per_s else 0.0,
        "rps_min": min(per_s, default=0),
        "rps_max": max(per_s, default=0),
        "requests": totals["requests"],
        "failures": totals["failures"],
        "p95_ms": totals["p95_ms"] or 0.0,
        "seconds": len(per_s),
    }


def sandbox_up(target: Target, tries: int = 45) -> None:
    """``control.up``, retried while a port is busy (a port of an earlier round can still be
    held briefly while its processes exit)."""
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

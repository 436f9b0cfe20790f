"""User load during a drill: locust as its own process(es) (``mpac_drill.load``), started
against the platform's service URLs, read live for the stop conditions, summarised after.

locust stops by itself after the drill's bound (``--run-time``); :func:`stop_drill_load`
stops it earlier and merges its per-second history into ``load_per_second.csv``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpac_drill.errors import HarnessError
from mpac_drill.load import LOCUST_DIR, LoadRunner, rate_plan, summarize

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext


class LoadHandle:
    """A started :class:`LoadRunner` plus live figures read from its per-second files."""

    def __init__(self, runner: LoadRunner, out_dir: Path) -> None:
        self.runner = runner
        self.out_dir = out_dir
        self.stopped = False
        self.plan: dict[str, tuple[int, float]] = {}

    def _seconds(self) -> dict[int, tuple[int, int]]:
        """Per wall-clock second: (requests, failures), summed over locust processes."""
        out: dict[int, tuple[int, int]] = {}
        for path in (self.out_dir / LOCUST_DIR).glob("seconds-*.csv"):
            try:
                with path.open(newline="") as fh:
                    for row in csv.DictReader(fh):
                        if row.get("name") != "Aggregated":
                            continue
                        sec = int(row["second"])
                        req, fail = out.get(sec, (0, 0))
                        out[sec] = (req + int(row["requests"]), fail + int(row["failures"]))
            except (OSError, ValueError, KeyError):
                continue
        return out

    def failing_for_s(self, bound: float) -> int:
        """How many of the latest seconds in a row had a failure share above ``bound``."""
        seconds = self._seconds()
        run = 0
        for sec in sorted(seconds, reverse=True):
            req, fail = seconds[sec]
            if req and fail / req > bound:
                run += 1
            else:
                break
        return run

    def recent_rate(self) -> tuple[float, float]:
        """Requests and failures per second over the last three complete seconds."""
        seconds = self._seconds()
        latest = sorted(seconds)[-3:]
        if not latest:
            return 0.0, 0.0
        req = sum(seconds[s][0] for s in latest)
        fail = sum(seconds[s][1] for s in latest)
        return req / len(latest), fail / len(latest)


#: What one locust user does (experiments/load/locustfile.py), for --help, dry runs, README.
LOAD_REQUESTS = (
    "POST {portal}/login then GET {portal}/verify with the token (10:1 with a re-login); "
    "POST {smarttab}/orders with an idempotency key (1 in 10 a retry of an earlier key); "
    "POST {pgw}/payments/qr"
)


def describe_load(users: int, services: dict[str, str]) -> str:
    """One line saying what ``users`` locust users will send where: every user is one of a
    portal, a smarttab or a pgw user, with 0.02-0.1 s between requests (about 15 requests
    per second each)."""
    urls = {
        "portal": services.get("svc-portal", "<svc-portal>"),
        "smarttab": services.get("svc-smarttab", "<svc-smarttab>"),
        "pgw": services.get("pgw", "<pgw>"),
    }
    return (
        f"locust, {users} user(s), about {15 * users} requests/s in all: "
        + LOAD_REQUESTS.format(**urls)
    )


def start_drill_load(drill: DrillContext, services: dict[str, str]) -> dict[str, Any]:
    """Start locust with the drill's users and workers against ``services`` (service name →
    base URL); no load with 0 users or in a dry run."""
    ctx = drill
    if ctx.users > 0 and ctx.dry_run:
        ctx.plan(describe_load(ctx.users, services), on="load")
    if ctx.dry_run or ctx.users <= 0:
        return {"started": False, "users": ctx.users}
    hosts = {
        "portal": services["svc-portal"],
        "smarttab": services["svc-smarttab"],
        "pgw": services["pgw"],
    }
    bound = ctx.recovery_bound_s() + float(ctx.setting("drill.warmup_s")) + 300
    external = int(ctx.target.get("load.external_workers") or 0)
    plan = drill_rate_plan(ctx)
    users = sum(u for u, _ in plan.values()) if plan else ctx.users
    what = f"{plan_rps(plan):g} rps" if plan else f"{users} users"
    workers = f"{external} external workers" if external else f"{ctx.load_workers} workers"
    ctx.phase(f"starting load ({what}, {workers})")
    try:
        runner = LoadRunner(
            out_dir=ctx.run_dir,
            hosts=hosts,
            users=users,
            spawn_rate=float(users if plan else ctx.target.get("load.spawn_rate", users)),
            run_time_s=int(bound),
            workers=0 if external else ctx.load_workers,
            target_name=ctx.target.name,
            external_workers=external,
            master_bind=ctx.target.get("load.master_bind"),
            workers_wait_s=float(ctx.target.get("load.workers_wait_s") or 60),
            plan=plan,
        )
        ctx.load = LoadHandle(runner, ctx.run_dir)
        ctx.load.plan = plan
        runner.start()
    except HarnessError as exc:  # no load, no fault: a drill injects nothing it cannot load
        ctx.fault_refused = str(exc)
        raise ctx.failed(str(exc)) from None
    return {
        "started": True,
        "users": users,
        "workers": external or ctx.load_workers,
        "external_workers": external,
        "rps": plan_rps(plan) if plan else None,
        "pids": runner.pids,
        "run_time_s": int(bound),
    }


def drill_rate_plan(drill: DrillContext) -> dict[str, tuple[int, float]]:
    """The target's ``load.rps`` split by ``load.mix`` (service → users, rps); empty when
    the load is set in users."""
    rps = drill.target.get("load.rps")
    if rps in (None, "", 0):
        return {}
    mix = drill.target.get("load.mix") or {"portal": 1, "smarttab": 1, "pgw": 1}
    try:
        return rate_plan(float(rps), {str(k): float(v) for k, v in dict(mix).items()})
    except (TypeError, ValueError):
        from mpac_drill.errors import UsageError

        raise UsageError(
            f"load.rps must be a number and load.mix a map, got {rps!r}, {mix!r}"
        ) from None


def plan_rps(plan: dict[str, tuple[int, float]]) -> float:
    return round(sum(r for _, r in plan.values()), 3)


def stop_drill_load(drill: DrillContext) -> dict[str, Any]:
    """Stop locust (idempotent) and put its summary into the drill's measurements."""
    ctx = drill
    handle: LoadHandle | None = ctx.load
    if handle is None or handle.stopped:
        return {"stopped": False}
    handle.stopped = True
    handle.runner.stop()
    summary = summarize(ctx.run_dir)
    ctx.measurements["load"] = dict(summary)
    return {"stopped": True, **summary}


__all__ = [
    "LOAD_REQUESTS",
    "LoadHandle",
    "describe_load",
    "drill_rate_plan",
    "plan_rps",
    "start_drill_load",
    "stop_drill_load",
]

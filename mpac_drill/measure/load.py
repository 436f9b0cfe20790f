"""User load during a drill: locust as its own process(es) (``mpac_drill.load``), started
against the platform's service URLs, read live for the stop conditions, summarised after.

locust stops by itself after the drill's bound (``--run-time``); :func:`stop_drill_load`
stops it earlier and merges its per-second history into ``load_per_second.csv``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpac_drill.load import LOCUST_DIR, LoadRunner, summarize

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext


class LoadHandle:
    """A started :class:`LoadRunner` plus live figures read from its per-second files."""

    def __init__(self, runner: LoadRunner, out_dir: Path) -> None:
        self.runner = runner
        self.out_dir = out_dir
        self.stopped = False

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
    ctx.phase(f"starting load ({ctx.users} users, {ctx.load_workers} workers)")
    bound = ctx.recovery_bound_s() + float(ctx.setting("drill.warmup_s")) + 300
    runner = LoadRunner(
        out_dir=ctx.run_dir,
        hosts=hosts,
        users=ctx.users,
        spawn_rate=float(ctx.target.get("load.spawn_rate", ctx.users)),
        run_time_s=int(bound),
        workers=ctx.load_workers,
        target_name=ctx.target.name,
    )
    ctx.load = LoadHandle(runner, ctx.run_dir)
    runner.start()
    return {
        "started": True,
        "users": ctx.users,
        "workers": ctx.load_workers,
        "pids": runner.pids,
        "run_time_s": int(bound),
    }


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


__all__ = ["LOAD_REQUESTS", "LoadHandle", "describe_load", "start_drill_load", "stop_drill_load"]

"""User load during a drill: locust as its own process(es) (``mpac_drill.load``), started
against the platform's service URLs, read live for the stop conditions, summarised after.

locust stops by itself after the drill's bound (``--run-time``); :func:`stop_drill_load`
stops it earlier and merges its per-second history into ``load_per_second.csv``.
"""

from __future__ import annotations

import csv
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpac_drill.errors import HarnessError
from mpac_drill.load import LOCUST_DIR, PER_SECOND_FILE, LoadRunner, rate_plan, summarize

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext


class LoadHandle:
    """A started :class:`LoadRunner` plus live figures read from its per-second files."""

    def __init__(self, runner: LoadRunner, out_dir: Path) -> None:
        self.runner = runner
        self.out_dir = out_dir
        self.stopped = False
        self.plan: dict[str, tuple[int, float]] = {}
        self.started_at: float | None = None  # epoch: the users start (workers connected)

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
        ctx.load.started_at = time.time()
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
    """Stop locust (idempotent) and put its summary, its offered vs achieved rps and the
    generator's check into the drill's measurements."""
    ctx = drill
    handle: LoadHandle | None = ctx.load
    if handle is None or handle.stopped:
        return {"stopped": False}
    handle.stopped = True
    stopped_at = time.time()
    handle.runner.stop()
    summary: dict[str, Any] = dict(summarize(ctx.run_dir))
    injected = ctx.injected_utc.timestamp() if ctx.injected_utc is not None else None
    summary.update(
        check_generator(
            ctx.run_dir,
            offered_rps=plan_rps(handle.plan) if handle.plan else None,
            before_s=injected,
            window=(handle.started_at, stopped_at) if handle.started_at else None,
            cpu_pct=float(ctx.target.get("load.saturation_cpu_pct") or 90),
            cpu_s=int(ctx.target.get("load.saturation_cpu_s") or 5),
            shortfall=float(ctx.target.get("load.saturation_shortfall") or 0.10),
        )
    )
    ctx.measurements["load"] = summary
    if summary["saturated"]:
        ctx.note("load generator saturated: " + "; ".join(summary["saturation_evidence"]))
    return {"stopped": True, **summary}


RPS_FILE = "load_rps.csv"
RPS_COLUMNS = ("t_utc", "offered_rps", "achieved_rps")
#: Seconds of a rate run not compared with the offered rate: the users' start.
RAMP_S = 2


def check_generator(
    run_dir: Path,
    *,
    offered_rps: float | None,
    before_s: float | None = None,
    window: tuple[float, float] | None = None,
    cpu_pct: float = 90.0,
    cpu_s: int = 5,
    shortfall: float = 0.10,
) -> dict[str, Any]:
    """Offered vs achieved requests per second (``load_rps.csv``) and whether the load
    generator was saturated: any locust process above ``cpu_pct`` % CPU for ``cpu_s``
    seconds in a row, or (a rate run) the achieved rps short of the offered by more than
    ``shortfall`` over the complete seconds before ``before_s`` (the injection; the whole
    run without one). The first ``RAMP_S`` seconds and the last second are not compared.
    ``window`` (epoch start, end of the load): every second in it counts, one with no
    request as 0 (a generator that made none, its last worker lost, is 100 % short); without
    it, only the seconds with requests are known.

    Returns ``rps_offered``, ``rps_achieved`` (mean over those seconds), ``cpu_max_pct``
    (per process), ``saturated`` and ``saturation_evidence`` (one line each).
    """
    achieved = _achieved_per_second(Path(run_dir))
    known = range(math.ceil(window[0]), math.floor(window[1])) if window else None
    if known is not None:
        achieved = dict.fromkeys(known, 0) | achieved
    if offered_rps is not None:
        with (Path(run_dir) / RPS_FILE).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(RPS_COLUMNS)
            for second in sorted(achieved):
                writer.writerow((iso_second(second), f"{offered_rps:g}", achieved[second]))
    evidence: list[str] = []
    cpu = _cpu_per_process(Path(run_dir))
    for proc, samples in sorted(cpu.items()):
        run, worst = _longest_above(samples, cpu_pct)
        if run >= cpu_s:
            evidence.append(
                f"{proc} above {cpu_pct:g} % CPU for {run} s in a row (peak {worst:g} %)"
            )
    seconds = list(known if known is not None else sorted(achieved))[RAMP_S:-1]
    if before_s is not None:
        seconds = [s for s in seconds if s + 1 <= before_s]
    mean = round(sum(achieved[s] for s in seconds) / len(seconds), 1) if seconds else None
    if offered_rps and mean is not None and mean < offered_rps * (1 - shortfall):
        evidence.append(
            f"achieved {mean:g} rps of {offered_rps:g} offered over {len(seconds)} s "
            f"before the fault ({(1 - mean / offered_rps) * 100:.0f} % short, "
            f"more than {shortfall * 100:g} %)"
        )
    return {
        "rps_offered": offered_rps,
        "rps_achieved": mean,
        "cpu_max_pct": {k: max(v.values()) for k, v in sorted(cpu.items()) if v},
        "saturated": bool(evidence),
        "saturation_evidence": evidence,
    }


def iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _achieved_per_second(run_dir: Path) -> dict[int, int]:
    """Requests per second (every process) from the merged ``load_per_second.csv``."""
    out: dict[int, int] = {}
    try:
        with (run_dir / PER_SECOND_FILE).open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("name") == "Aggregated":
                    stamp = datetime.strptime(row["t_utc"], "%Y-%m-%dT%H:%M:%SZ")
                    out[int(stamp.replace(tzinfo=UTC).timestamp())] = int(row["requests"])
    except (OSError, ValueError, KeyError):
        pass
    return out


def _cpu_per_process(run_dir: Path) -> dict[str, dict[int, float]]:
    """Process label ("master 1234", "worker <id>") → second → CPU %, from ``cpu-*.csv``."""
    out: dict[str, dict[int, float]] = {}
    for path in sorted((run_dir / LOCUST_DIR).glob("cpu-*.csv")):
        label = path.stem.removeprefix("cpu-")
        try:
            with path.open(newline="") as fh:
                for row in csv.DictReader(fh):
                    role = row["role"].split(" ")[0]
                    key = f"{role} {label}"
                    out.setdefault(key, {})[int(row["second"])] = float(row["cpu_pct"])
        except (OSError, ValueError, KeyError):
            continue
    return out


def _longest_above(samples: dict[int, float], bound: float) -> tuple[int, float]:
    """Longest run of consecutive seconds above ``bound``, and the peak in it."""
    best, best_peak, run, peak, last = 0, 0.0, 0, 0.0, -2
    for second in sorted(samples):
        value = samples[second]
        if value <= bound:
            run, peak = 0, 0.0
        elif run and second == last + 1:
            run, peak = run + 1, max(peak, value)
        else:
            run, peak = 1, value
        if run > best:
            best, best_peak = run, peak
        last = second
    return best, best_peak


__all__ = [
    "LOAD_REQUESTS",
    "LoadHandle",
    "RPS_FILE",
    "check_generator",
    "describe_load",
    "drill_rate_plan",
    "plan_rps",
    "start_drill_load",
    "stop_drill_load",
]

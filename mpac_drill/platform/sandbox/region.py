"""The region drill (runbook §1.4) on the sandbox: a whole "region" lost, a DR copy built.

- The front door (``sandbox/route53.py``) gives users one address per service; its records
  point at the primary sandbox's ALBs.
- ``lose_region``: every process of the primary sandbox (daemon, PostgreSQL, Redis, tasks,
  ALBs) frozen at once (SIGSTOP), then SIGKILLed. Its bucket stays: it plays what was
  copied to the DR region.
- ``fail_over_to_dr``: the runbook's steps, timed back to back from the loss: detect (from
  outside the region), activate the DR stack (a second sandbox: ``<state_dir>-dr``, every
  port + ``region.dr_port_offset``), restore the latest snapshot with its WAL, update
  ``DATABASE_URL`` (the SSM parameter), start the services on it, switch the front door
  (the Route53 change), verify health through the front door.
- ``fail_back``: the DR stack stopped, a fresh primary sandbox, the front door closed.

Beside the front door, outside the region too, run Route53's health checks of the primary
region's endpoints, the CloudWatch alarm on their ``HealthCheckStatus`` and an SNS topic and
pager of their own (``sandbox/healthcheck.py``): the region loss kills the daemon's alarms
and pager, not these, so the drill's detection chain (alarm → page → ack) is measured.
They start with the front door and stop with it; their last state is kept in the run
folder as ``route53-health-checks.json``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from mpac_drill.config import Target
from mpac_drill.errors import UsageError
from mpac_drill.measure.observer import probe_http
from mpac_drill.measure.record import QrPath
from mpac_drill.platform.sandbox import recover
from mpac_drill.platform.steps import StepTimer
from mpac_drill.sandbox import control, snapshots
from mpac_drill.sandbox.daemon import BACKUP_DEFAULTS
from mpac_drill.sandbox.healthcheck import ExternalMonitoring
from mpac_drill.sandbox.postgres import multihost_dsn
from mpac_drill.sandbox.procs import marked_processes, pid_alive, postgres_home
from mpac_drill.sandbox.route53 import FrontDoor
from mpac_drill.timefmt import utc_now

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext

log = logging.getLogger("mpac_drill")
STEP_NAMES = (
    "detect region loss",
    "activate DR stack",
    "restore snapshot with WAL",
    "update DATABASE_URL (SSM)",
    "restart services",
    "switch Route53 record",
    "verify health",
)
#: Runbook §1.5 (mpac-pgw): PGW_BASE_URL of mpac-smartpos points at the DR PGW.
PGW_STEP_NAMES = (
    "detect region loss",
    "activate PGW DR stack",
    "restore PGW snapshot with WAL",
    "update PGW_BASE_URL (SSM)",
    "restart services",
    "switch Route53 record",
    "verify health",
)


def regions(target: Target) -> tuple[str, str]:
    return (str(target.get("region.primary", "primary")), str(target.get("region.dr", "dr")))


def dr_target(target: Target) -> Target:
    """The DR region's sandbox: the primary's settings, state folder ``<state_dir>-dr``,
    every port + ``region.dr_port_offset``, RDS restored from the primary's bucket."""
    off = int(target.require("region.dr_port_offset"))
    s = copy.deepcopy(target.settings)
    primary_dir = control.state_dir(target)
    s["name"] = f"{target.name}-dr"
    s["state_dir"] = str(primary_dir.with_name(primary_dir.name + "-dr"))
    for key in ("primary_port", "standby_port"):
        s["rds"][key] += off
    s["rds"]["restore_from_bucket"] = str(snapshots.bucket_dir(primary_dir))
    for key in ("primary_port", "replica_port"):
        s["redis"][key] += off
    s["redis"]["sentinel_ports"] = [p + off for p in s["redis"]["sentinel_ports"]]
    s["ecs"]["task_port_base"] += off
    for svc in s["ecs"]["services"].values():
        svc["port"] += off
    # mpac-smartpos's configuration, copied to the DR region, still names the primary's PGW
    # until runbook 1.5 step 2 writes PGW_BASE_URL (the DR daemon's ssm/ parameters win)
    pgw = target.settings["ecs"]["services"].get("pgw")
    if pgw is not None:
        s["app"].setdefault("pgw_base_url", f"http://127.0.0.1:{pgw['port']}")
    dr = Target(name=s["name"], path=target.path, settings=s, overrides=target.overrides)
    mine = {p for _, p in control.port_settings(target)}
    clash = mine & {p for _, p in control.port_settings(dr)}
    if clash:
        raise UsageError(
            f"region.dr_port_offset {off} puts DR ports on the primary's "
            f"({sorted(clash)[:3]}): choose a larger offset"
        )
    return dr


def _dsn(target: Target, password: str, db: str = "smartpos") -> str:
    ports = [int(target.require("rds.primary_port")), int(target.require("rds.standby_port"))]
    return multihost_dsn(ports, db, password)


def _write_parameter(path: Path, value: str) -> None:
    """An "SSM SecureString": a file only its owner reads, replaced atomically."""
    path.parent.mkdir(mode=0o700, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(value + "\n")
    tmp.replace(path)


def _alb_ports(target: Target) -> dict[str, int]:
    return {n: int(c["port"]) for n, c in target.require("ecs.services").items()}


# Public names of the three helpers above, for the game day (mpac_drill.gameday), which
# performs the same steps by hand: the same functions, no module imports another's _names.
rds_dsn = _dsn
write_parameter = _write_parameter
alb_ports = _alb_ports


# ---------------------------------------------------------------- front door


def open_front_door(ctx: DrillContext) -> dict[str, Any]:
    """Start the front door, its records on the primary region's ALBs (idempotent)."""
    if ctx.front_door is not None:
        return {"front_door": ctx.front_door.urls(), "region": ctx.front_door.region()}
    ctx.sandbox()  # the primary's view (and secrets), read while it is still there
    off = int(ctx.setting("region.front_door_port_offset"))
    primary, _ = regions(ctx.target)
    records = {n: (p + off, p) for n, p in _alb_ports(ctx.target).items()}
    taken = {p for t in (ctx.target, dr_target(ctx.target)) for _, p in control.port_settings(t)}
    clash = sorted(taken & {front for front, _ in records.values()})
    if clash:
        raise UsageError(
            f"region.front_door_port_offset {off} puts the front door on "
            f"sandbox ports ({clash[:3]}): choose another offset"
        )
    door = FrontDoor(records, primary)
    try:
        door.start()
    except OSError as exc:
        raise UsageError(
            f"route53 front door: {exc} (region.front_door_port_offset {off})"
        ) from None
    ctx.front_door = door
    checks = start_health_checks(ctx)
    return {
        "front_door": door.urls(),
        "region": primary,
        "health_checks": [c["health_check_id"] for c in checks["health_checks"]],
        "alarms": [a["name"] for a in checks["alarms"]],
        "not_played": checks["not_played"],
    }


def start_health_checks(ctx: DrillContext) -> dict[str, Any]:
    """Route53's health checks of the primary region's endpoints (its ALBs), their alarm,
    SNS and pager, outside the region (``sandbox/healthcheck.py``), held beside the front
    door (``ctx.front_door.health_checks``); their state."""
    door = ctx.front_door
    t = ctx.target
    monitor = ExternalMonitoring(
        alb_ports=_alb_ports(t),
        settings=dict(t.get("route53") or {}),
        alarms=dict(t.get("alarms") or {}),
        ack_delay_s=float(t.get("pager.ack_delay_s", 3.0)),
        on_event=lambda msg: log.info("outside the region: %s", msg),
    )
    try:
        monitor.start(primary_dir=ctx.sandbox().dir)
    except OSError as exc:
        door.stop()
        ctx.front_door = None
        raise UsageError(f"route53 health checks: {exc}") from None
    door.health_checks = monitor
    return monitor.state()


def close_front_door(ctx: DrillContext) -> bool:
    door, ctx.front_door = ctx.front_door, None
    if door is not None:
        monitor = getattr(door, "health_checks", None)
        if monitor is not None:
            _keep_state(ctx, monitor)
            monitor.stop()
        door.stop()
    return door is not None


def _keep_state(ctx: DrillContext, monitor: ExternalMonitoring) -> None:
    """The health checks' last state (checks, alarm history, incidents) in the run folder."""
    import json

    try:
        state = monitor.state()
        (ctx.run_dir / "route53-health-checks.json").write_text(json.dumps(state, indent=1))
    except (OSError, TimeoutError, ValueError, RuntimeError) as exc:
        log.warning("route53 health checks: state not kept: %s", exc)


# ---------------------------------------------------------------- the loss


def lose_region(ctx: DrillContext) -> dict[str, Any]:
    """SIGKILL every process of the primary sandbox at once; keep its bucket."""
    if ctx.dry_run:
        return {"dry_run": True, "region": regions(ctx.target)[0]}
    view = ctx.sandbox()
    primary, dr = regions(ctx.target)
    procs = marked_processes(view.dir)
    bucket = snapshots.bucket_dir(view.dir)
    running = json_backup(view.dir)
    ctx.record.ground_truth.update(
        wal_archive_timeout_s=running["wal_archive_timeout_s"],
        base_interval_s=running["base_interval_s"],
    )
    ctx.mark_injected(
        "region:lost",
        [f"{primary} (sandbox {view.dir.name})"],
        region=primary,
        dr_region=dr,
        processes=len(procs),
    )
    # At once: every process is frozen first (SIGSTOP), then killed. Nothing of the region
    # acts between the two, so the bucket at the freeze is what the DR side holds (a WAL
    # archive completing while a sequential kill went on arrived after "the loss").
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.suspend()
    for _ in range(5):  # a child spawned since the listing (archive_command's shell): frozen too
        known = {p.pid for p in procs}
        late = [p for p in marked_processes(view.dir) if p.pid not in known]
        if not late:
            break
        for p in late:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                p.suspend()
        procs += late
    frozen_utc = utc_now()
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.kill()
    _, alive = psutil.wait_procs(procs, timeout=5)
    # Effective when the primary's processes went; one still exiting (a child reaped late
    # by a parent killed at the same time) is named, not taken for a region still up.
    ctx.fault_took_effect(
        len(alive) < len(procs),
        processes_killed=len(procs) - len(alive),
        evidence="every process of the primary sandbox gone"
        if not alive
        else f"{len(alive)} of {len(procs)} process(es) not yet gone 5 s after SIGKILL: "
        + ", ".join(sorted({_name(p) for p in alive})),
    )
    snap = snapshots.list_snapshots(bucket)  # what the DR side holds from now on
    assert ctx.injected_utc is not None
    newest = snap["wal"]["newest_at"]
    age = (
        None
        if newest is None
        else round((frozen_utc - snapshots.parse_utc(newest)).total_seconds(), 4)
    )
    ctx.record.region = {
        "primary": primary,
        "dr": dr,
        "processes_killed": len(procs) - len(alive),
        "bucket": str(bucket),
        "base_backups": len(snap["base_backups"]),
        "newest_base_backup": snap["base_backups"][-1]["id"] if snap["base_backups"] else None,
        "wal_files": snap["wal"]["files"],
        "newest_wal_file": snap["wal"]["newest_file"],
        "newest_wal_at": newest,
        "newest_wal_age_at_loss_s": age,
    }
    log.info(
        "region: %s lost: %d processes killed; the bucket keeps WAL up to %s",
        primary,
        len(procs),
        newest,
    )
    return {
        "region": primary,
        "killed": len(procs) - len(alive),
        "alive": len(alive),
        "newest_wal_at": newest,
    }


def _name(proc: psutil.Process) -> str:
    try:
        return f"{proc.name()} ({proc.pid}, {proc.status()})"
    except psutil.Error:
        return f"pid {proc.pid}"


def json_backup(sdir: Path) -> dict[str, Any]:
    """The backup settings the running sandbox was started with."""
    import json

    running = json.loads((sdir / "target.json").read_text())
    return {**BACKUP_DEFAULTS, **(running.get("backup") or {})}


# ---------------------------------------------------------------- the DR procedure


def _wait_detected(ctx: DrillContext, deadline: float) -> tuple[float, str]:
    """The instant every service had failed a sample through the front door."""
    obs, t0 = ctx.observer, ctx.injected_mono
    assert t0 is not None
    if obs is None:
        return time.monotonic(), "no observer: not measured"
    while True:
        first: dict[str, float] = {}
        for s in obs.samples(rel_to=t0, since=t0):
            if not s["ok"]:
                first.setdefault(s["service"], s["t"])
        if set(first) >= set(obs.services):
            worst = max(first.values())
            return t0 + worst, (
                f"every service failed through the front door, the last "
                f"{worst:.2f} s after the loss (observer outside the region)"
            )
        if time.monotonic() > deadline:
            raise ctx.failed("the region loss was never seen from outside the region")
        time.sleep(0.02)


def _wait_event(ctx: DrillContext, sdir: Path, prefix: str, deadline: float) -> tuple[float, str]:
    """Monotonic instant (from the daemon's UTC stamp) of the DR daemon's first event
    starting with ``prefix``; fails on a failed or dead daemon or past ``deadline``."""
    assert ctx.injected_mono is not None and ctx.injected_utc is not None
    while True:
        state = control.read_state(sdir)
        if state is not None:
            for ev in state.get("events", []):
                if ev["event"].startswith(prefix):
                    at = snapshots.parse_utc(ev["at"])
                    since = (at - ctx.injected_utc).total_seconds()
                    return ctx.injected_mono + since, ev["event"]
            if state["phase"] == "failed":
                raise ctx.failed(f"DR stack: {state['error']}")
            if not pid_alive(int(state["daemon_pid"])):
                raise ctx.failed(f"DR stack daemon exited (see {sdir / 'daemon.log'})")
        if time.monotonic() > deadline:
            raise ctx.failed(
                f"DR stack: no {prefix!r} within the bound (see {sdir / 'daemon.log'})"
            )
        time.sleep(0.02)


def _events(sdir: Path, prefix: str) -> list[str]:
    state = control.read_state(sdir) or {}
    return [e["event"] for e in state.get("events", []) if e["event"].startswith(prefix)]


def fail_over_to_dr(
    ctx: DrillContext, timeout_s: float = 120, system: str = "smartpos"
) -> dict[str, Any]:
    """Run the runbook's §1.4 steps (``system`` pgw: §1.5's) against the DR region, each
    timed into ``steps``.

    Sets ``ctx.rpo_dsn`` (the canary reads back from the restored database) and
    ``ctx.handles.dr_dsn`` (db → DSN of the restored databases; in memory only)."""
    if system not in ("smartpos", "pgw"):
        raise UsageError(f"system must be smartpos or pgw, not {system!r}")
    names = PGW_STEP_NAMES if system == "pgw" else STEP_NAMES
    if ctx.dry_run:
        return {"dry_run": True, "dr_region": regions(ctx.target)[1], "steps": list(names)}
    if ctx.injected_mono is None or ctx.injected_utc is None:
        raise ctx.failed("fail_over_to_dr needs the region lost first (lose_region)")
    view = ctx.sandbox()
    dr = dr_target(ctx.target)
    dr_dir = control.state_dir(dr)
    primary_region, dr_region = regions(ctx.target)
    t0 = ctx.injected_mono
    steps = StepTimer(ctx.record.steps, t0, ctx.injected_utc, ctx.procedure_step)
    deadline = time.monotonic() + timeout_s
    ctx.phase("detecting the region loss from outside")
    detected, detail = _wait_detected(ctx, deadline)
    steps.add(names[0], t0, detected - t0, True, detail)
    ctx.phase(f"activating the DR stack in {dr_region}")
    log.info("region: activating the DR stack in %s (%s)", dr_region, dr_dir)
    control.stop_dir(dr_dir)  # leftovers of an earlier run
    shutil.rmtree(dr_dir / "ssm", ignore_errors=True)
    ctx.undo_add(recover.dr_stack_step(dr_dir))  # write-ahead: before the DR stack starts
    control.spawn(dr, secrets_=dict(view.secrets))
    active, detail = _wait_event(ctx, dr_dir, "dr: elasticache ready", deadline)
    steps.add(
        names[1],
        detected,
        active - detected,
        True,
        f"DR sandbox {dr_dir.name} (ports +{dr.settings['region']['dr_port_offset']}) "
        f"in {dr_region}: daemon, ElastiCache and Sentinels up",
    )
    ctx.phase("restoring the latest snapshot with its WAL")
    restored, _ = _wait_event(ctx, dr_dir, "dr: rds restored", deadline)
    steps.add(
        names[2],
        active,
        restored - active,
        True,
        "; ".join(e.removeprefix("rds: restore: ") for e in _events(dr_dir, "rds: restore: "))
        + "; standby built",
    )
    ctx.phase("updating PGW_BASE_URL" if system == "pgw" else "updating DATABASE_URL")
    ssm_at = time.monotonic()
    dsn = _dsn(dr, view.secrets["db_password"])
    ctx.handles.dr_dsn = {
        db: _dsn(dr, view.secrets["db_password"], db) for db in ("smartpos", "pgw")
    }
    ssm = dr_dir / "ssm"
    if system == "pgw":  # mpac-smartpos reaches the DR PGW through its ALB
        pgw_url = f"http://127.0.0.1:{_alb_ports(dr)['pgw']}"
        _write_parameter(ssm / "PGW_BASE_URL", pgw_url)
    _write_parameter(ssm / "DATABASE_URL", dsn)
    ctx.rpo_dsn = dsn
    written = time.monotonic()
    what = (
        f"PGW_BASE_URL = {pgw_url} (the DR PGW's ALB); DATABASE_URL"
        if system == "pgw"
        else "DATABASE_URL"
    )
    steps.add(
        names[3],
        restored,
        written - restored,
        True,
        f"SecureString-like parameters in {ssm.relative_to(dr_dir.parent)} (mode 0600): "
        f"{what} = the DR RDS on ports {dr.require('rds.primary_port')},"
        f"{dr.require('rds.standby_port')} (written {written - ssm_at:.3f} s)",
    )
    if system == "pgw":  # §1.5 never points the DR PGW at the restored database
        ctx.record.findings.append(
            {
                "id": "F13",
                "section": "1.5",
                "summary": "runbook 1.5 restores the PGW database into mpac-pgw-dr but no step "
                "points the DR PGW at it (1.4 has step 5 for mpac-smartpos)",
                "evidence": f"the drill wrote the DR stack's DATABASE_URL (the restored databases "
                f"on ports {dr.require('rds.primary_port')},"
                f"{dr.require('rds.standby_port')}) in step '{names[3]}': the DR "
                "PGW's tasks wait for that parameter and never start without it",
            }
        )
    ctx.phase("restarting the services on the DR database")
    serving, _ = _wait_event(ctx, dr_dir, "ecs: services healthy", deadline)
    n_tasks = sum(
        int(c.get("tasks", dr.require("ecs.tasks_per_service")))
        for c in dr.require("ecs.services").values()
    )
    steps.add(
        names[4],
        written,
        serving - written,
        True,
        f"{n_tasks} DR tasks started with the new parameters, healthy behind their ALBs",
    )
    ctx.phase("switching the Route53 record")
    door = ctx.front_door
    if door is None:
        raise ctx.failed("no front door: open_front_door must run before the fault")
    change = door.change(_alb_ports(dr), dr_region)
    switched = time.monotonic()
    steps.add(
        names[5],
        serving,
        switched - serving,
        True,
        f"records {primary_region} -> {dr_region}: "
        + ", ".join(f"{n} {change['before'][n]} -> {v}" for n, v in change["after"].items()),
    )
    ctx.phase("verifying health through the front door")
    urls = {n: f"{u}/health?deep=1" for n, u in door.urls().items()}
    pending = dict(urls)
    while pending:
        pending = {n: u for n, u in pending.items() if not probe_http(u, 1.0)[0]}
        if pending and time.monotonic() > deadline:
            steps.add(
                names[6],
                switched,
                time.monotonic() - switched,
                False,
                f"still failing: {', '.join(sorted(pending))}",
            )
            raise ctx.failed(
                f"DR services not healthy through the front door: {', '.join(sorted(pending))}"
            )
        if pending:
            time.sleep(0.02)
    qr = _qr_path(
        door,
        f"http://127.0.0.1:{_alb_ports(dr)['pgw']}",
        f"http://127.0.0.1:{_alb_ports(ctx.target)['pgw']}",
    )
    if system == "pgw" and not qr["to_dr_pgw"]:
        steps.add(names[6], switched, time.monotonic() - switched, False, qr["detail"])
        raise ctx.failed(f"mpac-smartpos QR payments after the failover: {qr['detail']}")
    verified = time.monotonic()
    steps.add(
        names[6],
        switched,
        verified - switched,
        True,
        f"{len(urls)} services answer /health?deep=1 through the front door; {qr['detail']}",
    )
    ctx.record.qr_path = qr
    if ctx.record.region is None:
        ctx.record.region = {}
    region = ctx.record.region
    region.update(
        dr_state_dir=str(dr_dir),
        dr_port_offset=dr.settings["region"]["dr_port_offset"],
        front_door=door.urls(),
        route53_change=change,
        procedure_s=round(verified - t0, 4),
        system=system,
    )
    return {
        "dr_region": dr_region,
        "procedure_s": round(verified - t0, 4),
        "steps": [s["name"] for s in ctx.record.steps],
    }


def _qr_path(door: FrontDoor, dr_pgw: str, lost_pgw: str) -> QrPath:
    """Where mpac-smartpos (svc-smarttab, through the front door) sends QR payments now,
    from its deep health: the PGW_BASE_URL its tasks run with and whether that PGW answers."""
    import json
    import urllib.request

    url = f"{door.urls()['svc-smarttab']}/health?deep=1"
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:  # loopback only
            down = json.loads(resp.read()).get("downstream") or {}
    except (OSError, ValueError) as exc:
        down = {"pgw": f"health unreadable: {type(exc).__name__}", "pgw_base_url": ""}
    base, state = str(down.get("pgw_base_url", "")), str(down.get("pgw", "?"))
    where = (
        "the DR PGW"
        if base == dr_pgw
        else "the lost region's PGW, kept by the DR copy of its configuration until runbook "
        "1.5 step 2 moves it"
        if base == lost_pgw
        else "an unknown PGW"
    )
    return {
        "pgw_base_url": base,
        "pgw": state,
        "to_dr_pgw": base == dr_pgw and state == "ok",
        "in_lost_region": base == lost_pgw,
        "detail": f"mpac-smartpos sends QR payments to {base or '(none)'} ({where}): {state}",
    }


# ---------------------------------------------------------------- failback


def fail_back(ctx: DrillContext, timeout_s: float = 120) -> dict[str, Any]:
    """Stop the DR stack, start a fresh primary sandbox, close the front door (idempotent).
    The DR daemon's log is kept in the run folder as ``dr-daemon.log``."""
    if ctx.handles.failed_back:
        return {"failed_back": None}
    ctx.phase("failing back: stopping the DR stack")
    dr_dir = control.state_dir(dr_target(ctx.target))
    started = time.monotonic()
    if (dr_dir / "daemon.log").is_file():
        shutil.copyfile(dr_dir / "daemon.log", ctx.run_dir / "dr-daemon.log")
    swept = control.stop_dir(dr_dir)
    # the parameter and the secrets (the DR database's password), and the DR data: its
    # log is in the run folder, its next run restores afresh
    for path in (dr_dir / "ssm", postgres_home(dr_dir / "rds"), snapshots.bucket_dir(dr_dir)):
        shutil.rmtree(path, ignore_errors=True)
    (dr_dir / "secrets.json").unlink(missing_ok=True)
    closed = close_front_door(ctx)
    ctx.phase("failing back: starting the primary sandbox")
    control.up(ctx.target, timeout_s=timeout_s)
    ctx._sandbox = None  # a fresh primary: new state and secrets
    ctx.handles.failed_back = True
    ctx.undo_update(recover.DR_STACK, state="done")
    return {
        "dr_processes_stopped": swept,
        "front_door_closed": closed,
        "primary_healthy": True,
        "failback_s": round(time.monotonic() - started, 3),
    }


__all__ = [
    "STEP_NAMES",
    "PGW_STEP_NAMES",
    "dr_target",
    "regions",
    "open_front_door",
    "close_front_door",
    "lose_region",
    "fail_over_to_dr",
    "fail_back",
    "rds_dsn",
    "write_parameter",
    "alb_ports",
]

"""The sandbox daemon: starts the miniature MPAC platform and keeps it running.

Run by ``mpac-drill sandbox up`` as a detached process (``python -m
mpac_drill.sandbox.daemon STATE_DIR``). It reads ``target.json`` and ``secrets.json`` from the
state folder, starts RDS, ElastiCache, the ECS services and their ALBs, and writes
``state.json`` (roles, pids, addresses, health, events) every quarter second. It reads
``tuning.json`` for recovery delays a drill may change while it runs. It takes base backups
into the state folder's bucket on the target's schedule (``snapshots.py``). SIGTERM stops it all.

Restore mode (``rds.restore_from_bucket``: another sandbox's bucket; the region drill's DR
stack): ElastiCache first, then RDS restored from that bucket instead of ``initdb``
(``restore.py``), then the ECS tasks once the ``DATABASE_URL`` parameter
(``<state dir>/ssm/DATABASE_URL``, the "SSM parameter") exists, with that DSN.

Every password comes from ``secrets.json`` (0600) and reaches the tasks through their
environment (readable by their own user only), never a command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mpac_drill import EXPERIMENTS_DIR
from mpac_drill.errors import SandboxError
from mpac_drill.sandbox import snapshots
from mpac_drill.sandbox.alb import AlbListener, AlbTarget
from mpac_drill.sandbox.ecs import EcsCluster
from mpac_drill.sandbox.monitoring import Monitoring
from mpac_drill.sandbox.postgres import PgCluster, multihost_dsn
from mpac_drill.sandbox.procs import MARKER_ENV, write_private
from mpac_drill.sandbox.redis_group import APP_USER, MASTER_NAME, RedisGroup
from mpac_drill.timefmt import iso

log = logging.getLogger("mpac_drill.sandbox")
TUNABLES = (
    "rds.failover_delay_s",
    "ecs.task_start_delay_s",
    "redis.restart_failed_node_s",
    "redis.down_after_ms",
    "alarms.period_s",
    "alarms.absent",
    "alarms.overrides",
    "pager.ack_delay_s",
    "app.warmup_s",
    "app.warmup_slow_ms",
)
#: What a daemon of this version writes in ``state.json`` (``format``): ``up`` restarts a
#: sandbox started by an older one (2: passwords on PostgreSQL's socket and on Redis).
STATE_FORMAT = 2
#: For target files written before the ``backup`` section existed.
BACKUP_DEFAULTS = {"base_interval_s": 60.0, "wal_archive_timeout_s": 1, "retain_base_backups": 3}


def utc_now() -> str:
    return iso(datetime.now(UTC))


def new_secrets() -> dict[str, str]:
    """Fresh passwords of a sandbox: PostgreSQL's ``mpac`` role, the services' Redis user
    and the Sentinels, the Redis nodes' administrator, and the services' JWT key."""
    return {
        "db_password": secrets.token_urlsafe(18),
        "redis_password": secrets.token_urlsafe(18),
        "redis_admin_password": secrets.token_urlsafe(18),
        "jwt_secret": secrets.token_urlsafe(32),
    }


def write_json_atomic(path: Path, data: Any, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` as JSON. A private ``mode`` (no bit for others, as
    0o600 for ``secrets.json``) holds from the file's creation: it is never readable by
    another user, not even for an instant."""
    text = json.dumps(data, indent=1, sort_keys=True)
    if not mode & 0o077:
        write_private(path, text)
        return
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.chmod(mode)
    os.replace(tmp, path)


def _dig(d: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        d = d[part]
    return d


#: Tunables a target file written before the detection chain may lack.
TUNING_DEFAULTS: dict[str, Any] = {
    "alarms.period_s": 0.5,
    "alarms.absent": [],
    "alarms.overrides": {},
    "pager.ack_delay_s": 3.0,
    "app.warmup_s": 0.0,
    "app.warmup_slow_ms": 0.0,
}


def tunable(settings: dict[str, Any], dotted: str) -> Any:
    """A tunable's value in ``settings`` (its default when the target predates it)."""
    try:
        return _dig(settings, dotted)
    except (KeyError, TypeError):
        if dotted in TUNING_DEFAULTS:
            return TUNING_DEFAULTS[dotted]
        raise


class Daemon:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.settings: dict[str, Any] = json.loads((state_dir / "target.json").read_text())
        self.secrets: dict[str, str] = json.loads((state_dir / "secrets.json").read_text())
        if not new_secrets().keys() <= self.secrets.keys():  # written by an older mpac-drill
            self.secrets = {**new_secrets(), **self.secrets}
            write_json_atomic(state_dir / "secrets.json", self.secrets, 0o600)
        self.events: deque[dict[str, str]] = deque(maxlen=200)
        self.phase = "starting"
        self.starting = ""
        self.error: str | None = None
        self.started_at = utc_now()
        self.tuning: dict[str, Any] = {k: tunable(self.settings, k) for k in TUNABLES}
        self._tuning_mtime = 0.0
        self.pg: PgCluster | None = None
        self.redis: RedisGroup | None = None
        self.ecs: EcsCluster | None = None
        self.albs: dict[str, AlbListener] = {}
        self.monitoring: Monitoring | None = None
        self.stop_event = asyncio.Event()
        self.backup = {**BACKUP_DEFAULTS, **(self.settings.get("backup") or {})}
        self.bucket = snapshots.bucket_dir(state_dir)
        self.backups: dict[str, Any] = {"taken": 0, "kept": 0, "newest": None, "error": None}
        self._first_backup = asyncio.Event()
        self._backup_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ state

    def event(self, msg: str) -> None:
        self.events.append({"at": utc_now(), "event": msg})
        log.info("%s", msg)

    def endpoints(self) -> dict[str, Any]:
        s = self.settings
        ports = [s["rds"]["primary_port"], s["rds"]["standby_port"]]
        return {
            "services": {
                name: f"http://127.0.0.1:{cfg['port']}"
                for name, cfg in s["ecs"]["services"].items()
            },
            "dsn": multihost_dsn(ports, "smartpos", None),
            "pgw_dsn": multihost_dsn(ports, "pgw", None),
            "sentinels": [f"127.0.0.1:{p}" for p in s["redis"]["sentinel_ports"]],
            "redis_master": MASTER_NAME,
            "redis_user": APP_USER,
        }

    def components(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.pg:
            out += self.pg.describe()
        if self.redis:
            out += self.redis.describe()
        if self.ecs:
            health: dict[str, bool] = {}
            for alb in self.albs.values():
                health.update(alb.health())
            out += self.ecs.describe(health)
        for name, alb in self.albs.items():
            out.append(
                {
                    "name": f"alb/{name}",
                    "kind": "alb",
                    "role": "listener",
                    "pid": os.getpid(),
                    "address": f"127.0.0.1:{alb.port}",
                    "healthy": any(alb.health().values()),
                    "detail": f"{sum(alb.health().values())}/{len(alb.targets)} healthy",
                }
            )
        if self._backup_task is not None:
            b = self.backups
            detail = (
                f"{b['kept']} base backups, newest {b['newest']}"
                if b["newest"]
                else "first base backup running"
            )
            out.append(
                {
                    "name": "backup",
                    "kind": "backup",
                    "role": "scheduler",
                    "pid": None,
                    "address": str(self.bucket),
                    "healthy": b["kept"] > 0,
                    "detail": detail + (f"; last attempt: {b['error']}" if b["error"] else ""),
                }
            )
        return out

    def write_state(self) -> None:
        comps = self.components()
        healthy = self.phase == "ready" and bool(comps) and all(c["healthy"] for c in comps)
        write_json_atomic(
            self.state_dir / "state.json",
            {
                "format": STATE_FORMAT,
                "daemon_pid": os.getpid(),
                "phase": self.phase,
                "starting": self.starting,
                "error": self.error,
                "started_at": self.started_at,
                "updated_at": utc_now(),
                "healthy": healthy,
                "components": comps,
                "endpoints": self.endpoints(),
                "tuning": self.tuning,
                "events": list(self.events),
                "redis_server": (
                    self.redis.server.as_dict() if self.redis and self.redis.server else None
                ),
                "detection": self.monitoring.state() if self.monitoring else None,
            },
        )

    # ------------------------------------------------------------ lifecycle

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MPAC_"))}
        env[MARKER_ENV] = str(self.state_dir.resolve())
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _task_env(self) -> dict[str, str]:
        s, pw = self.settings, self.secrets["db_password"]
        ports = [s["rds"]["primary_port"], s["rds"]["standby_port"]]
        return {
            **self._env(),
            "MPAC_DATABASE_URL": multihost_dsn(ports, "smartpos", pw),
            "MPAC_PGW_DATABASE_URL": multihost_dsn(ports, "pgw", pw),
            "MPAC_REDIS_SENTINELS": ",".join(self.endpoints()["sentinels"]),
            "MPAC_REDIS_MASTER": MASTER_NAME,
            "MPAC_REDIS_USERNAME": APP_USER,
            "MPAC_REDIS_PASSWORD": self.secrets["redis_password"],
            "MPAC_JWT_SECRET": self.secrets["jwt_secret"],
            "MPAC_JWT_LIFETIME_S": str(s["app"]["jwt_lifetime_s"]),
            "MPAC_RATE_LIMIT_PER_S": str(s["app"]["rate_limit_per_s"]),
            "MPAC_ORDERS_UNIQUE": "1" if s["app"]["orders_unique_key"] else "0",
            "MPAC_WARMUP_S": str(tunable(s, "app.warmup_s")),
            "MPAC_WARMUP_SLOW_MS": str(tunable(s, "app.warmup_slow_ms")),
            # svc-smarttab's PGW: this sandbox's pgw ALB unless the target names another
            # (the DR copy names the primary region's, until runbook 1.5 step 2 moves it)
            "MPAC_PGW_BASE_URL": (
                s["app"].get("pgw_base_url") or self.endpoints()["services"].get("pgw", "")
            ),
            "MPAC_OBS_BUCKET": str(self.state_dir / "bucket" / "obs"),
            "MPAC_OBS_DASHBOARDS": str(EXPERIMENTS_DIR / "obs" / "dashboards"),
            # mpac-obs's CloudWatch data source: the alarms this daemon evaluates
            "MPAC_OBS_CLOUDWATCH": str(self.state_dir / "state.json"),
        }

    async def _step(self, name: str, coro: Any) -> None:
        self.starting = name
        self.write_state()
        await coro

    def milestone(self, msg: str) -> None:
        """An event the harness waits for while the daemon starts (state.json at once)."""
        self.event(msg)
        self.write_state()

    async def _ssm_parameters(self, timeout_s: float = 300) -> dict[str, str]:
        """Restore mode: wait for the ``DATABASE_URL`` parameter; return every parameter of
        ``<state dir>/ssm/`` as the tasks' ``MPAC_<NAME>`` variables."""
        ssm = self.state_dir / "ssm"
        self.milestone(f"dr: waiting for the DATABASE_URL parameter ({ssm / 'DATABASE_URL'})")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not (ssm / "DATABASE_URL").is_file():
            if loop.time() > deadline:
                raise RuntimeError(f"ssm: no DATABASE_URL parameter after {timeout_s:g} s")
            await asyncio.sleep(0.02)
        params = {
            f"MPAC_{p.name}": p.read_text().strip()
            for p in ssm.iterdir()
            if p.is_file() and p.name.isupper()
        }
        self.milestone(
            f"dr: parameters {', '.join(sorted(params))} read; starting the ECS services with them"
        )
        return params

    async def start(self) -> None:
        s = self.settings
        restore_from = s["rds"].get("restore_from_bucket")
        snapshots.reset_bucket(self.bucket)
        self.pg = PgCluster(
            base_dir=self.state_dir / "rds",
            primary_port=s["rds"]["primary_port"],
            standby_port=s["rds"]["standby_port"],
            password=self.secrets["db_password"],
            env=self._env(),
            failover_delay_s=s["rds"]["failover_delay_s"],
            synchronous=s["rds"]["synchronous"],
            rebuild_standby=s["rds"]["rebuild_standby"],
            archive_command=snapshots.archive_command(self.bucket),
            archive_timeout_s=int(self.backup["wal_archive_timeout_s"]),
            on_event=self.event,
            restore_from=Path(restore_from) if restore_from else None,
        )
        self.redis = RedisGroup(
            base_dir=self.state_dir / "redis",
            primary_port=s["redis"]["primary_port"],
            replica_port=s["redis"]["replica_port"],
            sentinel_ports=s["redis"]["sentinel_ports"],
            env=self._env(),
            password=self.secrets["redis_password"],
            admin_password=self.secrets["redis_admin_password"],
            down_after_ms=s["redis"]["down_after_ms"],
            failover_timeout_ms=s["redis"]["failover_timeout_ms"],
            restart_failed_node_s=s["redis"]["restart_failed_node_s"],
            on_event=self.event,
        )
        if restore_from:  # the DR stack: one stage after the other, each a milestone
            await self._step("elasticache", self.redis.start())
            self.milestone("dr: elasticache ready")
            await self._step("rds", self.pg.start())
            self.milestone(f"dr: rds restored from {restore_from}")
        else:
            await asyncio.gather(
                self._step("rds", self.pg.start()), self._step("elasticache", self.redis.start())
            )
        from mpac_drill.sandbox.schema import apply_schema

        pw = self.secrets["db_password"]
        ports = [s["rds"]["primary_port"], s["rds"]["standby_port"]]
        self.starting = "schema"
        await asyncio.to_thread(
            apply_schema,
            multihost_dsn(ports, "smartpos", pw),
            multihost_dsn(ports, "pgw", pw),
            orders_unique=s["app"]["orders_unique_key"],
        )
        self._backup_task = asyncio.ensure_future(self._backup_loop())
        task_env = self._task_env()
        if restore_from:
            task_env.update(await self._ssm_parameters())
        self.ecs = EcsCluster.build(
            log_dir=self.state_dir / "ecs",
            service_names=list(s["ecs"]["services"]),
            tasks_per_service=s["ecs"]["tasks_per_service"],
            port_base=s["ecs"]["task_port_base"],
            env=task_env,
            task_start_delay_s=s["ecs"]["task_start_delay_s"],
            on_event=self.event,
            task_counts={
                n: int(c["tasks"]) for n, c in s["ecs"]["services"].items() if "tasks" in c
            },
        )
        await self._step("ecs", self.ecs.start())
        a = s["alb"]
        for name, svc in self.ecs.services.items():
            self.albs[name] = AlbListener(
                service=name,
                port=s["ecs"]["services"][name]["port"],
                targets=[AlbTarget(t.name, t.port) for t in svc.tasks],
                health_interval_s=a["health_interval_s"],
                healthy_threshold=a["healthy_threshold"],
                unhealthy_threshold=a["unhealthy_threshold"],
                health_timeout_s=a["health_timeout_s"],
            )
            await self.albs[name].start()
        await self._step("ecs", self._wait_tasks_healthy(60))
        self.milestone("ecs: services healthy behind their ALBs")
        await self._step("backup", self._wait_first_backup(60))
        self.monitoring = Monitoring(
            daemon=self, alarms=s.get("alarms"), pager=s.get("pager"), on_event=self.event
        )
        await self._step("monitoring", self.monitoring.start())
        self.starting = ""
        self.phase = "ready"
        self.event("sandbox ready")

    async def _wait_tasks_healthy(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            sick = [n for alb in self.albs.values() for n, ok in alb.health().items() if not ok]
            if not sick:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(
            f"ecs: task {sick[0]} never passed its health check (see {self.state_dir / 'ecs'})"
        )

    async def _backup_loop(self) -> None:
        """A base backup of the primary now and every ``backup.base_interval_s`` (RDS's
        automated backups); the oldest beyond ``backup.retain_base_backups`` are removed
        with the WAL only they needed. A failed attempt (no primary during a failover) is
        retried after a second."""
        assert self.pg is not None
        interval = float(self.backup["base_interval_s"])
        keep = max(2, int(self.backup["retain_base_backups"]))
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            primary = self.pg.primary()
            try:
                if primary is None:
                    raise SandboxError("no primary to back up")
                rec = await snapshots.take_base_backup(
                    self.bucket,
                    port=primary.port,
                    passfile=self.pg.passfile,
                    env=self._env(),
                    source=primary.name,
                )
                removed, wal_removed = snapshots.prune(self.bucket, keep)
                self.backups.update(
                    taken=self.backups["taken"] + 1,
                    newest=rec["finished_at"],
                    error=None,
                    kept=len(snapshots.list_base_backups(self.bucket)),
                )
                self.event(
                    f"backup: base backup {rec['id']} of {primary.name} "
                    f"({rec['size_bytes'] / 1e6:.1f} MB in {rec['duration_s']:.2f} s)"
                    + (
                        f"; removed {len(removed)} older with {wal_removed} WAL files"
                        if removed
                        else ""
                    )
                )
                self._first_backup.set()
                next_at += interval
            except (SandboxError, OSError, KeyError, ValueError) as exc:
                self.backups["error"] = str(exc)
                self.event(f"backup: {exc}; retrying in 1 s")
                next_at = loop.time() + min(interval, 1.0)
            next_at = max(next_at, loop.time())  # a slow backup does not cause a burst
            await asyncio.sleep(next_at - loop.time())

    async def _wait_first_backup(self, timeout_s: float) -> None:
        try:
            await asyncio.wait_for(self._first_backup.wait(), timeout_s)
        except TimeoutError:
            raise RuntimeError(
                f"backup: no base backup after {timeout_s:.0f} s: "
                f"{self.backups['error'] or 'still running'}"
            ) from None

    def _apply_tuning(self) -> None:
        path = self.state_dir / "tuning.json"
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime == self._tuning_mtime:
            return
        self._tuning_mtime = mtime
        wanted = json.loads(path.read_text())
        if self.pg:
            self.pg.failover_delay_s = float(
                wanted.get("rds.failover_delay_s", self.pg.failover_delay_s)
            )
        if self.ecs:
            self.ecs.task_start_delay_s = float(
                wanted.get("ecs.task_start_delay_s", self.ecs.task_start_delay_s)
            )
        if self.redis:
            self.redis.restart_failed_node_s = float(
                wanted.get("redis.restart_failed_node_s", self.redis.restart_failed_node_s)
            )
            if "redis.down_after_ms" in wanted:
                self.redis.down_after_ms = int(wanted["redis.down_after_ms"])
                asyncio.ensure_future(self._set_down_after(self.redis.down_after_ms))
        if self.ecs:  # a replacement task warms up as the drill now says
            for key, name in (
                ("app.warmup_s", "MPAC_WARMUP_S"),
                ("app.warmup_slow_ms", "MPAC_WARMUP_SLOW_MS"),
            ):
                if key in wanted:
                    self.ecs.env[name] = str(float(wanted[key]))
        if self.monitoring:
            self.monitoring.tune(wanted)
        self.tuning = {k: wanted.get(k, self.tuning[k]) for k in TUNABLES}
        self.event(f"tuning applied: {self.tuning}")

    async def _set_down_after(self, ms: int) -> None:
        assert self.redis is not None
        for s in self.redis.sentinels:
            with contextlib.suppress(Exception):
                async with self.redis.client(s) as r:
                    await r.execute_command(
                        "SENTINEL", "SET", MASTER_NAME, "down-after-milliseconds", ms
                    )

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        code = 0
        try:
            starter = asyncio.ensure_future(self.start())
            stopper = asyncio.ensure_future(self.stop_event.wait())
            done, _ = await asyncio.wait({starter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if starter in done:
                starter.result()
                while not self.stop_event.is_set():
                    self._apply_tuning()
                    if self.redis:
                        await self.redis.refresh_roles()
                    self.write_state()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop_event.wait(), 0.25)
            else:
                starter.cancel()
        except Exception as exc:  # noqa: BLE001 - reported in state.json, one line
            self.phase = "failed"
            self.error = str(exc) or exc.__class__.__name__
            self.event(f"start failed: {self.error}")
            code = 1
        finally:
            if self.phase != "failed":
                self.phase = "stopping"
            self.write_state()
            await self.shutdown()
            if self.phase == "stopping":
                self.phase = "stopped"
            self.write_state()
        return code

    async def shutdown(self) -> None:
        if self.monitoring is not None:
            with contextlib.suppress(Exception):
                await self.monitoring.stop()
        if self._backup_task is not None:
            self._backup_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._backup_task
        for alb in self.albs.values():
            await alb.stop()
        for part in (self.ecs, self.redis, self.pg):
            if part is not None:
                with contextlib.suppress(Exception):
                    await part.stop()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    state_dir = Path(argv[0])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    os.environ[MARKER_ENV] = str(state_dir.resolve())
    started = time.monotonic()
    code = asyncio.run(Daemon(state_dir).run())
    log.info("daemon exiting after %.1f s", time.monotonic() - started)
    return code


if __name__ == "__main__":
    sys.exit(main())

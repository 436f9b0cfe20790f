"""DR readiness on the sandbox (``mpac-drill check``): the same questions as on AWS, asked of
the real processes that play each system. A rehearsal on a model, not a statement on AWS.

- §1.1 tasks per service: each task's own ``/health`` answers (running = desired ≥ min);
- §1.2 the standby streams (``pg_stat_replication`` on the primary, ``pg_stat_wal_receiver``
  on the standby) and its replay lag;
- §1.3 every Sentinel answers and ``SENTINEL CKQUORUM`` holds; the replica's link is up;
- §2.1 the newest base backup's age against twice ``backup.base_interval_s``; WAL archiving
  works (``pg_stat_archiver`` on the primary);
- §1.4 the DR data age: completed WAL segments the bucket (what the DR sandbox restores
  from) lacks; their exposure against the RPO target.

The probes run concurrently with short time-outs, so a check takes well under 2 s even when
a component hangs. A dry run lists the probes and makes none.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from pathlib import Path
from typing import Any

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from mpac_drill.aws import DryRun, DryRunCall
from mpac_drill.config import Target
from mpac_drill.measure.observer import probe_http
from mpac_drill.readiness.rows import (
    CheckRow,
    Status,
    Thresholds,
    detection_alarms,
    duration,
    judge_max,
    row,
)
from mpac_drill.sandbox import control
from mpac_drill.sandbox.postgres import conninfo
from mpac_drill.sandbox.redis_group import MASTER_NAME
from mpac_drill.sandbox.snapshots import list_base_backups, parse_utc, wal_dir

_TIMEOUT_S = 0.8
#: every probe's answer is awaited at most this long (the check stays under 2 s)
_DEADLINE_S = 1.2
_OBS = "mpac-obs"
_WAL = re.compile(r"^[0-9A-F]{24}$")
_REPLICATION = (
    "SELECT application_name, state, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,"
    " COALESCE(EXTRACT(epoch FROM replay_lag), 0)::float FROM pg_stat_replication"
)
_ARCHIVER = (
    "SELECT last_archived_wal, last_archived_time, last_failed_wal, last_failed_time,"
    " pg_walfile_name(pg_current_wal_lsn()),"
    " (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')"
    " FROM pg_stat_archiver"
)
_RECEIVER = "SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver)"


def check(
    target: Target, thresholds: Thresholds, scenarios: set[str], *, dry_run: DryRun | None
) -> tuple[list[CheckRow], int]:
    """Every readiness check of ``scenarios`` on the running sandbox: (rows, probes made).

    :raises SandboxError: the sandbox is not running (nothing could be checked).
    """
    if dry_run is not None:
        for op, what in _PLAN:
            dry_run.calls.append(
                DryRunCall(service="sandbox", operation=op, region="local", params={"of": what})
            )
        return [], len(dry_run.calls)
    view = control.view(target)
    comps = view.state["components"]
    primary = _addr(view.by_role("rds", "primary"))
    standby = _addr(view.by_role("rds", "standby"))
    password = view.secrets["db_password"]
    sentinels = [
        c for c in comps if c["kind"] == "elasticache" and c["name"].startswith("sentinel")
    ]
    replicas = [c for c in comps if c["kind"] == "elasticache" and c["role"] == "replica"]
    tasks = [c for c in comps if c["kind"] == "ecs"]
    probes: dict[str, Callable[[], Any]] = {
        "replication": lambda: primary and _sql(primary[1], password, _REPLICATION),
        "archiver": lambda: primary and _sql(primary[1], password, _ARCHIVER),
        "receiver": lambda: standby and _sql(standby[1], password, _RECEIVER),
    }
    for s in sentinels:
        probes[s["name"]] = _sentinel(s["address"], view.secrets["redis_password"])
    for r in replicas:
        probes[r["name"]] = _replica(r["address"], view.secrets["redis_admin_password"])
    for t in tasks:
        probes[t["name"]] = _task(t["address"])
    got = _run_all(probes)
    rows = _tasks(target, thresholds, tasks, got)
    rows += _postgres(target, thresholds, primary, standby, got)
    rows += _redis(target, sentinels, replicas, got)
    bucket = view.component("backup")["address"]
    rows += _backups(target, thresholds, str(bucket), primary, got)
    rows += _alarms(view.state.get("detection") or {}, scenarios, target)
    wanted = [r for r in rows if r["scenario"] in scenarios]
    return wanted, len(probes) + 1  # + the bucket listing


_PLAN = [
    ("GET /health", "each ECS task"),
    ("SQL pg_stat_replication, pg_stat_archiver", "the PostgreSQL primary"),
    ("SQL pg_stat_wal_receiver", "the PostgreSQL standby"),
    ("SENTINEL CKQUORUM", "each Sentinel"),
    ("INFO replication", "each Redis replica"),
    ("list base/ and wal/", "the backup bucket"),
    ("read state.json detection", "the alarm evaluator"),
]


def _addr(found: list[dict[str, Any]]) -> tuple[str, int] | None:
    if not found or not found[0].get("pid"):
        return None
    return str(found[0]["name"]), int(str(found[0]["address"]).rsplit(":", 1)[1])


def _run_all(probes: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Every probe at once; one still running at the deadline answers ``TimeoutError`` (a
    hung component, e.g. a stopped PostgreSQL, whose connect waits libpq's 2 s minimum)."""
    pool = ThreadPoolExecutor(max_workers=min(16, len(probes)))
    futures = {name: pool.submit(_safely, fn) for name, fn in probes.items()}
    deadline = time.monotonic() + _DEADLINE_S
    got: dict[str, Any] = {}
    for name, future in futures.items():
        try:
            got[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FuturesTimeout:
            got[name] = TimeoutError(f"no answer within {_DEADLINE_S} s")
    pool.shutdown(wait=False, cancel_futures=True)
    return got


def _safely(fn: Callable[[], Any]) -> Any:
    """A probe's answer, or the exception it raised (a dead component is an answer too)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - reported in the row as the evidence
        return exc


def _sql(port: int, password: str, sql: str) -> list[tuple[Any, ...]]:
    info = conninfo(port, password, connect_timeout=2)
    with psycopg.connect(info, autocommit=True) as conn:
        conn.execute("SET statement_timeout = 800")
        return list(conn.execute(sql).fetchall())


def _sentinel(address: str, password: str) -> Callable[[], Any]:
    host, port = address.rsplit(":", 1)
    client = redis.Redis(
        host=host,
        port=int(port),
        password=password,
        socket_timeout=_TIMEOUT_S,
        socket_connect_timeout=_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),  # bounded by the timeouts (default retries: 4+ s)
    )
    return lambda: client.execute_command(  # type: ignore[no-untyped-call]
        "SENTINEL", "CKQUORUM", MASTER_NAME
    )


def _replica(address: str, password: str) -> Callable[[], Any]:
    host, port = address.rsplit(":", 1)
    client = redis.Redis(
        host=host,
        port=int(port),
        password=password,
        socket_timeout=_TIMEOUT_S,
        socket_connect_timeout=_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),  # bounded by the timeouts (default retries: 4+ s)
    )
    return lambda: client.info("replication")


def _task(address: str) -> Callable[[], Any]:
    return lambda: probe_http(f"http://{address}/health", _TIMEOUT_S)[0]


def _err(answer: Any) -> str:
    return " ".join(f"{type(answer).__name__}: {answer}".split())[:160]


# ---------------------------------------------------------------- §1.1, §1.6


def _tasks(
    target: Target, th: Thresholds, tasks: list[dict[str, Any]], got: dict[str, Any]
) -> list[CheckRow]:
    rows = []
    per = int(target.get("ecs.tasks_per_service", 2))
    for svc, conf in (target.get("ecs.services") or {}).items():
        desired = int((conf or {}).get("tasks", per))
        mine = [t for t in tasks if t["name"].startswith(f"{svc}/")]
        up = [t["name"] for t in mine if got.get(t["name"]) is True]
        down = [t["name"] for t in mine if got.get(t["name"]) is not True]
        least = 1 if svc == _OBS else th.min_tasks
        ok = len(up) == desired and desired >= least
        scenario, section = ("obs-failure", "1.6") if svc == _OBS else ("ecs-task-failure", "1.1")
        rows.append(
            row(
                f"ecs.{svc}.tasks",
                scenario,
                section,
                "desired ≥ min and running = desired",
                ", ".join(down) or svc,
                "pass" if ok else "fail",
                measured=f"{len(up)} of {desired} running",
                value=len(up),
                threshold=f"desired ≥ {least}, running = desired",
                evidence="GET /health of each task: "
                + (f"no answer from {', '.join(down)}" if down else "all 2xx"),
                fix="mpac-drill sandbox status (the supervisor restarts stopped tasks "
                "after ecs.task_start_delay_s)",
            )
        )
    return rows


# ---------------------------------------------------------------- §1.2


def _postgres(
    target: Target,
    th: Thresholds,
    primary: tuple[str, int] | None,
    standby: tuple[str, int] | None,
    got: dict[str, Any],
) -> list[CheckRow]:
    args = ("rds-failover", "1.2")
    fix = "mpac-drill sandbox status; the controller rebuilds a dead standby (rds.rebuild_standby)"
    if primary is None:
        return [
            row(
                "rds.standby",
                *args,
                "a primary and a streaming standby",
                "pg-a/pg-b",
                "fail",
                measured="no primary",
                evidence="sandbox state: no rds primary",
                fix=fix,
            )
        ]
    repl, recv = got.get("replication"), got.get("receiver")
    name = standby[0] if standby else "standby"
    if isinstance(repl, Exception):
        streams: list[Any] = []
        seen = f"{primary[0]} pg_stat_replication: {_err(repl)}"
    else:
        streams = [r for r in repl or [] if r[1] == "streaming"]
        seen = f"{primary[0]} pg_stat_replication.state={[r[1] for r in repl or []]}"
    if standby is None:
        recv_ok, heard = False, "no standby in the sandbox's state (down or rebuilding)"
    elif isinstance(recv, Exception):
        recv_ok, heard = False, f"{name} not answering: {_err(recv)}"
    else:
        answer: list[Any] = list(recv or [])
        recv_ok = bool(answer) and bool(answer[0][0]) and answer[0][1] == "streaming"
        heard = f"{name} pg_stat_wal_receiver.status={answer[0][1] if answer else None}"
    ok = bool(streams) and recv_ok
    rows = [
        row(
            "rds.standby",
            *args,
            "the standby streams from the primary",
            name,
            "pass" if ok else "fail",
            measured="streaming" if ok else "not streaming",
            threshold="streaming",
            evidence=f"{seen}; {heard}",
            fix=fix,
        )
    ]
    if streams:
        lag_bytes, lag_s = int(streams[0][2] or 0), float(streams[0][3] or 0)
        status = judge_max(lag_s, th.replay_lag_s, th.warn_share) if recv_ok else "fail"
        rows.append(
            row(
                "rds.replay_lag",
                *args,
                "standby replay lag",
                name,
                status,
                measured=f"{lag_s:.2f} s, {lag_bytes} B behind",
                value=lag_s,
                threshold=f"≤ {th.replay_lag_s:g} s",
                evidence=f"{primary[0]} pg_stat_replication.replay_lag, replay_lsn",
                fix=fix,
            )
        )
    return rows


# ---------------------------------------------------------------- §1.3


def _redis(
    target: Target,
    sentinels: list[dict[str, Any]],
    replicas: list[dict[str, Any]],
    got: dict[str, Any],
) -> list[CheckRow]:
    configured = len(target.get("redis.sentinel_ports") or []) or len(sentinels)
    dead = [s["name"] for s in sentinels if isinstance(got.get(s["name"]), Exception)]
    alive = len(sentinels) - len(dead)
    args = ("redis-failover", "1.3")
    rows = [
        row(
            "elasticache.sentinels",
            *args,
            "every Sentinel answers, CKQUORUM holds",
            ", ".join(dead) or "sentinels",
            "pass" if alive == configured else "fail",
            measured=f"{alive} of {configured} answer",
            value=alive,
            threshold=f"{configured} of {configured} (one more loss and no failover)",
            evidence="SENTINEL CKQUORUM mpac on each: "
            + "; ".join(
                f"{s['name']} {_err(got[s['name']]) if s['name'] in dead else 'OK'}"
                for s in sentinels
            ),
            fix="mpac-drill sandbox status (a dead Sentinel is restarted after "
            "redis.restart_failed_node_s)",
        )
    ]
    links = {r["name"]: got.get(r["name"]) for r in replicas}
    up = [
        n
        for n, info in links.items()
        if isinstance(info, dict) and info.get("master_link_status") == "up"
    ]
    rows.append(
        row(
            "elasticache.replica_link",
            *args,
            "a replica with its link up",
            ", ".join(n for n in links if n not in up) or ", ".join(up) or "replica",
            "pass" if up else "fail",
            measured=f"{len(up)} replica(s) linked",
            value=len(up),
            threshold="≥ 1",
            evidence="INFO replication master_link_status: "
            + "; ".join(
                f"{n} {i.get('master_link_status') if isinstance(i, dict) else _err(i)}"
                for n, i in links.items()
            )
            if links
            else "no replica in the state",
            fix="mpac-drill sandbox status",
        )
    )
    return rows


# ---------------------------------------------------------------- detection (§1.x, §3)


def _alarms(detection: dict[str, Any], scenarios: set[str], target: Target) -> list[CheckRow]:
    """Each alarm the catalog's detection names for ``scenarios`` is evaluated by the
    sandbox and in OK: an alarm already in ALARM would not tell anyone of a new fault. One
    the target removed (``alarms.absent``) fails; one whose metric the sandbox does not
    play (Route53's health check) is not checked, never a pass."""
    evaluated = {a["name"]: a for a in detection.get("alarms", [])}
    removed = {str(a) for a in target.get("alarms.absent") or []}
    rows = []
    for name, (scenario, section) in sorted(detection_alarms(scenarios).items()):
        alarm = evaluated.get(name)
        state = alarm.get("state") if alarm else None
        status: Status = (
            ("fail" if name in removed else "not checked")
            if alarm is None
            else "pass"
            if state == "OK"
            else "warn"
        )
        rows.append(
            row(
                f"alarm.{name}",
                scenario,
                section,
                "detection alarm evaluated and in OK",
                name,
                status,
                measured=(
                    ("removed by alarms.absent" if name in removed else "metric not played")
                    if alarm is None
                    else str(state)
                ),
                threshold="evaluated, OK",
                evidence="state.json detection.alarms (the sandbox's alarm evaluator)",
                fix="mpac-drill sandbox down && mpac-drill sandbox up (the evaluator reads "
                "the catalog at start)"
                if alarm is None
                else f"{name} is {state} before any fault: see mpac-drill sandbox status",
            )
        )
    return rows


# ---------------------------------------------------------------- §2.1, §1.4


def _backups(
    target: Target,
    th: Thresholds,
    bucket: str,
    primary: tuple[str, int] | None,
    got: dict[str, Any],
) -> list[CheckRow]:
    rows = []
    interval = float(target.get("backup.base_interval_s", 60))
    backups = list_base_backups(Path(bucket))
    age = time.time() - parse_utc(backups[-1]["finished_at"]).timestamp() if backups else None
    rows.append(
        row(
            "backup.base_age",
            "rds-pitr",
            "2.1",
            "newest base backup's age",
            bucket,
            "fail" if age is None else judge_max(age, 2 * interval, 1.0),
            measured="none" if age is None else duration(age),
            value=age,
            threshold=f"≤ {duration(2 * interval)} (2 × backup.base_interval_s)",
            evidence=f"{bucket}/base/*/backup.json finished_at",
            fix="see the backup lines of the sandbox's daemon.log",
        )
    )
    arch = got.get("archiver")
    node = primary[0] if primary else "primary"
    if primary is None or isinstance(arch, Exception) or not arch:
        why = _err(arch) if isinstance(arch, Exception) else "no primary"
        return [
            *rows,
            row(
                "backup.wal_archiving",
                "rds-pitr",
                "2.1",
                "WAL archiving works",
                node,
                "fail",
                measured="unknown",
                evidence=why,
                error=False,
                fix="mpac-drill sandbox status",
            ),
        ]
    last_wal, last_ok, failed_wal, failed_at, current, seg_size = arch[0]
    failing = failed_at is not None and (last_ok is None or failed_at > last_ok)
    rows.append(
        row(
            "backup.wal_archiving",
            "rds-pitr",
            "2.1",
            "WAL archiving works",
            node,
            "fail" if failing else "pass",
            measured=f"failing since {failed_at:%H:%M:%S} on {failed_wal}"
            if failing
            else f"last archived {last_wal}",
            threshold="the last attempt succeeded",
            evidence=f"{node} pg_stat_archiver last_failed_time/last_archived_time",
            fix="check archive_command on the primary (SHOW archive_command) and the "
            "bucket's wal/ folder",
        )
    )
    rows.append(_dr_age(th, bucket, node, str(current), int(seg_size)))
    return rows


def _dr_age(th: Thresholds, bucket: str, node: str, current: str, seg_size: int) -> CheckRow:
    """Completed WAL segments the bucket lacks; their exposure is bounded by the time since
    the newest segment reached the bucket (the DR sandbox restores from the bucket)."""
    per_log = 0x100000000 // seg_size

    def index(name: str) -> int:
        return int(name[8:16], 16) * per_log + int(name[16:24], 16)

    newest, newest_at = None, 0.0
    try:
        with os.scandir(wal_dir(Path(bucket))) as it:
            for entry in it:
                stem = entry.name.removesuffix(".gz")
                wal = entry.name.endswith(".gz") and _WAL.match(stem)
                if wal and (newest is None or index(stem) > index(newest)):
                    newest, newest_at = stem, entry.stat().st_mtime
    except FileNotFoundError:
        pass
    missing = index(current) - index(newest) - 1 if newest else index(current)
    exposure = max(0.0, time.time() - newest_at) if missing > 0 else 0.0
    limit = th.rpo_of("region-failover")
    return row(
        "dr.smartpos.data_age",
        "region-failover",
        "1.4",
        "DR data age: the RPO a region loss costs now",
        bucket,
        judge_max(exposure, limit, th.warn_share),
        measured=f"{duration(exposure)}"
        + (
            f" ({missing} completed WAL segment(s) not in the bucket)"
            if missing > 0
            else " (every completed WAL segment is in the bucket)"
        ),
        value=exposure,
        threshold=f"≤ {duration(limit)}",
        evidence=f"{node} pg_walfile_name(pg_current_wal_lsn())={current}; "
        f"newest in {bucket}/wal: {newest}",
        fix="restore WAL archiving (archive_command) so the bucket catches up",
    )


__all__ = ["check"]

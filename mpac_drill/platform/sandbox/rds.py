"""RDS on the sandbox (runbook §1.2, §2.3): the PostgreSQL primary crashed, a point in time
restored from the sandbox's base backups and archived WAL into a new instance.

Each function reads the sandbox's current state (roles change after every failover), marks
the injection instant on the drill context immediately before the destructive call, and
returns a JSON-able record. The sandbox daemon does the recovery, as AWS would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import signal
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import psycopg

from mpac_drill.errors import UsageError
from mpac_drill.platform.sandbox.effect import processes_gone
from mpac_drill.platform.steps import StepTimer
from mpac_drill.ports import free_port
from mpac_drill.sandbox import control, snapshots
from mpac_drill.sandbox.postgres import conninfo
from mpac_drill.sandbox.procs import kill_tree
from mpac_drill.timefmt import iso, utc_now

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext

log = logging.getLogger("mpac_drill")


def _fresh(ctx: DrillContext) -> control.SandboxView:
    return control.view(ctx.target)


def _sql(port: int, password: str, *statements: str) -> None:
    with psycopg.connect(conninfo(port, password), autocommit=True) as conn:
        for s in statements:
            conn.execute(s)


def failover_rds(ctx: DrillContext, db: str = "smartpos") -> dict[str, Any]:
    """Crash the PostgreSQL primary (postmaster and every child); the daemon promotes.

    With ``rds.replication_lag_s`` = L > 0, the standby first stops receiving WAL (and the
    primary stops waiting for it), L seconds pass, then the primary crashes: the writes of
    those L seconds are acknowledged but lost: a known RPO to check the canary against.
    """
    view = _fresh(ctx)
    primary = view.by_role("rds", "primary")
    standby = view.by_role("rds", "standby")
    if not primary or not primary[0]["pid"]:
        raise ctx.failed("the sandbox has no running RDS primary")
    p = primary[0]
    lag = float(ctx.setting("rds.replication_lag_s"))
    pw = view.secrets["db_password"]
    ctx.record.ground_truth.update(
        failover_delay_s=ctx.setting("rds.failover_delay_s"), replication_lag_s=lag
    )
    detached_at = None
    if lag > 0 and standby:
        s_port = int(standby[0]["address"].rsplit(":", 1)[1])
        p_port = int(p["address"].rsplit(":", 1)[1])
        _sql(
            p_port, pw, "ALTER SYSTEM SET synchronous_standby_names = ''", "SELECT pg_reload_conf()"
        )
        _sql(s_port, pw, "ALTER SYSTEM SET primary_conninfo = ''", "SELECT pg_reload_conf()")
        detached_at = time.monotonic()
        ctx.phase(f"standby detached; primary crashes in {lag:g} s")
        while time.monotonic() - detached_at < lag:  # the configured loss window
            time.sleep(0.005)
    ctx.mark_injected(
        "rds:RebootDBInstance(ForceFailover)",
        [p["name"]],
        db=db,
        primary_before=p["name"],
        standby=standby[0]["name"] if standby else None,
    )
    if detached_at is not None and ctx.injected_mono is not None:
        ctx.fault["standby_detached_s_before"] = round(ctx.injected_mono - detached_at, 4)
    kill_tree(int(p["pid"]), signal.SIGKILL)
    alive = processes_gone([int(p["pid"])])
    ctx.fault_took_effect(
        not alive,
        primary_before=p["name"],
        evidence="PostgreSQL primary (postmaster) gone after SIGKILL"
        if not alive
        else "still alive",
    )
    return {
        "db": db,
        "primary_before": p["name"],
        "api_call": "sandbox: kill primary",
        "replication_lag_s": lag,
    }


def wait_healthy(ctx: DrillContext, timeout_s: float = 60) -> dict[str, Any]:
    """Rollback helper: wait until every sandbox component is healthy again."""
    started = time.monotonic()
    control.wait_healthy(ctx.target, timeout_s=timeout_s)
    return {"healthy": True, "waited_s": round(time.monotonic() - started, 3)}


def primary_after(ctx: DrillContext, kind: str) -> str | None:
    view = _fresh(ctx)
    p = view.by_role(kind, "primary")
    return p[0]["name"] if p else None


# ---------------------------------------------------------------- point-in-time restore (§2.3)


class PitrCheck(TypedDict):
    """The restored canary rows against the ledger, around the restore time T."""

    acked_before_target: int  # acknowledged at or before T: must be in the restore
    lost_writes: int  # ... and are not
    lost_seqs: list[int]
    written_after_target: int  # sent after T: committed after T, must not be in the restore
    rows_after_target: int  # ... and are
    after_seqs: list[int]
    in_doubt_at_target: int  # sent by T, not acknowledged by T (in flight, or failed):
    #                           present or not, both are correct
    in_doubt_present: int
    rpo_s: float | None  # T minus the acknowledgement of the last write the restore holds
    #                      with every acknowledged write before it (None: no write before T)


def check_restored_ledger(ledger: Sequence[Any], present: set[int], t_mono: float) -> PitrCheck:
    """Judge a restore to T from the canary's ledger (``Write``: seq, sent_mono, ack_mono).

    A commit's timestamp lies between the write's send and its acknowledgement, so a write
    acknowledged by T committed before T (must be present), a write sent after T committed
    after it (must be absent), and a write sent by T but not acknowledged by it (in flight
    or failed) may be either.
    """
    before = sorted(
        (w for w in ledger if w.ack_mono is not None and w.ack_mono <= t_mono),
        key=lambda w: w.ack_mono,
    )
    after = [w for w in ledger if w.sent_mono > t_mono]
    doubt = [
        w for w in ledger if w.sent_mono <= t_mono and (w.ack_mono is None or w.ack_mono > t_mono)
    ]
    lost = [w.seq for w in before if w.seq not in present]
    late = [w.seq for w in after if w.seq in present]
    good = None
    for w in before:  # the restore is complete up to the last write before the first loss
        if w.seq not in present:
            break
        good = w
    rpo: float | None = None
    if good is not None:
        rpo = round(t_mono - good.ack_mono, 4)
    elif before:
        rpo = round(t_mono - before[0].sent_mono, 4)
    return PitrCheck(
        acked_before_target=len(before),
        lost_writes=len(lost),
        lost_seqs=lost,
        written_after_target=len(after),
        rows_after_target=len(late),
        after_seqs=late,
        in_doubt_at_target=len(doubt),
        in_doubt_present=sum(1 for w in doubt if w.seq in present),
        rpo_s=rpo,
    )


def _running_backup_settings(view: control.SandboxView) -> dict[str, Any]:
    """The backup settings the running sandbox was started with (its ground truth)."""
    from mpac_drill.sandbox.daemon import BACKUP_DEFAULTS

    running = json.loads((view.dir / "target.json").read_text())
    return {**BACKUP_DEFAULTS, **(running.get("backup") or {})}


def _wait_canary_history(ctx: DrillContext, need_s: float) -> None:
    """Let the canary write for ``need_s`` before the restore time is picked, so there are
    acknowledged writes on both sides of T (bounded)."""
    canary = ctx.canary
    if canary is None:
        return
    give_up = time.monotonic() + need_s + 10
    while time.monotonic() < give_up:
        if canary.ledger and time.monotonic() - canary.ledger[0].sent_mono >= need_s:
            return
        time.sleep(0.02)


def _sql_one(port: int, password: str, sql: str, dbname: str = "postgres") -> Any:
    with psycopg.connect(conninfo(port, password, dbname), autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
        return row[0] if row else None


def _current_wal_file(ctx: DrillContext, dsn: str, deadline: float) -> str:
    """The WAL segment the primary (whichever node it is now) writes into."""
    while True:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                row = conn.execute("SELECT pg_walfile_name(pg_current_wal_insert_lsn())").fetchone()
                return str(row[0]) if row else ""
        except psycopg.Error as exc:
            if time.monotonic() > deadline:
                raise ctx.failed(f"no primary answered to read its WAL position: {exc}") from None
            time.sleep(0.05)


def _wait_promoted(
    ctx: DrillContext, proc: Any, port: int, password: str, deadline: float, log_path: Path
) -> float:
    """Poll until the restored instance answers read-write; the monotonic instant it did."""
    while True:
        if proc.poll() is not None:
            errors = snapshots.read_recovery_log(log_path)["errors"]
            raise ctx.failed(
                "the restored instance stopped during recovery: "
                + (errors[-1] if errors else f"see {log_path}")
            )
        with contextlib.suppress(psycopg.Error):
            if _sql_one(port, password, "SELECT pg_is_in_recovery()") is False:
                return time.monotonic()
        if time.monotonic() > deadline:
            raise ctx.failed(
                f"the restored instance was not promoted within the bound (see {log_path})"
            )
        time.sleep(0.02)


def _seconds(a: str | None, b: datetime) -> float | None:
    return None if a is None else round((b - snapshots.parse_utc(a)).total_seconds(), 4)


def restore_point_in_time(
    ctx: DrillContext, db: str = "smartpos", restore_age_s: float = 5.0, timeout_s: float = 120.0
) -> dict[str, Any]:
    """Restore the sandbox's RDS to T = now − ``restore_age_s`` into a new PostgreSQL
    instance (the newest base backup finished before T plus the archived WAL, recovery
    target T, then promote), and check it against the canary's ledger.

    Sets ``rto_s`` (injection → verified), ``rpo_s``, ``acked_writes`` and ``lost_writes``,
    and the record's ``steps``, ``pitr`` and ``impact``. ``delete_restored_instance`` undoes it.
    """
    if not restore_age_s > 0:
        raise UsageError(
            f"restore_age_s must be a positive number of seconds, not {restore_age_s!r}"
        )
    view = _fresh(ctx)
    pw = view.secrets["db_password"]
    bucket = snapshots.bucket_dir(view.dir)
    backup = _running_backup_settings(view)
    ctx.record.ground_truth.update(
        wal_archive_timeout_s=backup["wal_archive_timeout_s"],
        base_interval_s=backup["base_interval_s"],
    )
    ctx.phase("letting the canary write before the restore time")
    _wait_canary_history(ctx, restore_age_s + 2.0)
    identifier = f"sandbox-rds-pitr-{utc_now().strftime('%Y%m%dT%H%M%S%fZ')}"
    home = snapshots.restore_home(view.dir)
    handle: dict[str, Any] = {
        "identifier": identifier,
        "dest": str(home / identifier),
        "log": str(home / f"{identifier}.log"),
        "pid": None,
    }
    ctx.handles.pitr_instance = handle
    dest, log_path = Path(handle["dest"]), Path(handle["log"])
    ctx.mark_injected(
        "rds:RestoreDBInstanceToPointInTime",
        ["sandbox-rds"],
        db=db,
        restore_age_s=restore_age_s,
        target_identifier=identifier,
    )
    assert ctx.injected_mono is not None and ctx.injected_utc is not None
    t0 = ctx.injected_mono
    t_mono, t_utc = t0 - restore_age_s, ctx.injected_utc - timedelta(seconds=restore_age_s)
    ctx.fault["restore_time"] = iso(t_utc)
    deadline = t0 + timeout_s
    log.info("rds: restoring the sandbox RDS to %s into new instance %s", iso(t_utc), identifier)
    steps = StepTimer(ctx.record.steps, t0, ctx.injected_utc)
    with steps.step("choose base backup") as st:
        base = snapshots.newest_before(snapshots.list_base_backups(bucket), t_utc)
        if base is None:
            raise ctx.failed(
                f"no base backup finished before the restore time {iso(t_utc)} in {bucket}"
            )
        st["detail"] = (
            f"{base['id']} from {base['source']}, consistent "
            f"{_seconds(base['finished_at'], t_utc):.1f} s before T, "
            f"WAL from {base['start_lsn']} (timeline {base['timeline']})"
        )
    with steps.step("wait for WAL archive past T") as st:
        wal_file = _current_wal_file(ctx, view.dsn(db), deadline)
        while not snapshots.is_archived(bucket, wal_file):
            if time.monotonic() > deadline:
                raise ctx.failed(f"WAL segment {wal_file} was not archived within the bound")
            time.sleep(0.01)
        st["detail"] = f"{wal_file} (current when the restore began) archived"
    with steps.step("copy base backup") as st:
        size = snapshots.copy_base_backup(bucket, base["id"], dest)
        st["detail"] = f"{size / 1e6:.1f} MB into {identifier}"
    with steps.step("configure recovery") as st:
        port = free_port()
        snapshots.configure_recovery(dest, bucket=bucket, target_time=t_utc, port=port)
        st["detail"] = (
            f"recovery_target_time {iso(t_utc)}, timeline latest, then promote; port {port}"
        )
    launch_mono, launch_utc = time.monotonic(), utc_now()
    proc = snapshots.start_instance(dest, port=port, state_dir=view.dir, log_path=log_path)
    handle.update(pid=proc.pid, port=port, proc=proc)
    try:
        promoted = _wait_promoted(ctx, proc, port, pw, deadline, log_path)
    except BaseException as exc:
        steps.add("replay WAL to T", launch_mono, time.monotonic() - launch_mono, False, str(exc))
        raise
    rlog = snapshots.read_recovery_log(log_path)
    stopped = promoted
    if rlog["stopped_at"]:
        since = (snapshots.parse_utc(rlog["stopped_at"]) - launch_utc).total_seconds()
        stopped = min(max(launch_mono + since, launch_mono), promoted)
    steps.add(
        "replay WAL to T",
        launch_mono,
        stopped - launch_mono,
        True,
        f"stopped before the commit at {rlog['stopped_before_commit_at']}; last "
        f"replayed commit {rlog['last_commit_at']}",
    )
    steps.add(
        "promote",
        stopped,
        promoted - stopped,
        True,
        f"timeline {rlog['timeline']}, read-write on 127.0.0.1:{port}",
    )
    restore_s = promoted - t0
    with steps.step("verify") as st:
        with psycopg.connect(conninfo(port, pw, db), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT seq FROM canary WHERE run_id = %s", (ctx.run_id,)
            ).fetchall()
        ledger = list(ctx.canary.ledger) if ctx.canary is not None else []
        check = check_restored_ledger(ledger, {r[0] for r in rows}, t_mono)
        st["detail"] = (
            f"{len(rows)} canary rows restored: {check['lost_writes']} of "
            f"{check['acked_before_target']} acknowledged before T missing, "
            f"{check['rows_after_target']} of {check['written_after_target']} "
            f"written after T present"
        )
    rto = time.monotonic() - t0
    ctx.measurements.update(
        rto_s=round(rto, 4),
        rpo_s=check["rpo_s"],
        acked_writes=check["acked_before_target"],
        lost_writes=check["lost_writes"],
    )
    ctx.record.impact = {
        "lost_writes": check["lost_writes"],
        "rows_after_target": check["rows_after_target"],
    }
    ctx.record.pitr = {
        "identifier": identifier,
        "restore_time": iso(t_utc),
        "restore_age_s": restore_age_s,
        "base_backup": base["id"],
        "base_backup_before_target_s": _seconds(base["finished_at"], t_utc),
        "restore_s": round(restore_s, 4),
        "timeline": rlog["timeline"],
        "stopped_before_commit_at": rlog["stopped_before_commit_at"],
        "last_replayed_commit_at": rlog["last_commit_at"],
        "last_replayed_commit_before_target_s": _seconds(rlog["last_commit_at"], t_utc),
        **{k: v for k, v in check.items() if not k.endswith("_seqs")},
        "lost_seqs_sample": check["lost_seqs"][:20],
        "after_seqs_sample": check["after_seqs"][:20],
    }
    if ctx.canary is None:
        ctx.note("no canary ran: the restored data was not checked")
    ctx.fault_took_effect(True, restored=identifier, evidence="restored instance promoted")
    return {
        "identifier": identifier,
        "restore_time": iso(t_utc),
        "base_backup": base["id"],
        "restore_s": round(restore_s, 4),
        "rto_s": round(rto, 4),
        **check,
    }


def delete_restored_instance(ctx: DrillContext) -> dict[str, Any]:
    """Stop the instance ``restore_point_in_time`` started and remove its folder (idempotent);
    its PostgreSQL log is kept in the run folder as ``pitr-restore.log``."""
    handle = ctx.handles.pitr_instance
    if not handle or handle.get("deleted"):
        return {"deleted": None}
    log_path = Path(handle["log"])
    with contextlib.suppress(OSError):
        shutil.copyfile(log_path, ctx.run_dir / "pitr-restore.log")
    log.info("rds: deleting restored instance %s (pid %s)", handle["identifier"], handle["pid"])
    was_running = snapshots.stop_instance(handle["pid"], Path(handle["dest"]))
    if handle.get("proc") is not None:  # our child: reap it
        with contextlib.suppress(Exception):
            handle["proc"].wait(5)
    log_path.unlink(missing_ok=True)
    handle["deleted"] = True
    ctx.undo_update("pitr-instance", state="done")
    return {"deleted": handle["identifier"], "was_running": was_running}

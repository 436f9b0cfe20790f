"""Snapshots of the sandbox's "RDS": base backups and a WAL archive in a local "bucket".

Plays RDS automated backups (runbook §2.1: a daily snapshot plus transaction logs every
5 minutes, restorable to any point in time), scaled down so a drill takes seconds:

- both PostgreSQL nodes archive every WAL segment into ``wal/`` (``archive_command``; with
  ``archive_timeout`` = ``backup.wal_archive_timeout_s`` the archive is never older than
  that while the database is written to);
- the daemon takes a base backup (``pg_basebackup``, plain format, WAL included so it is
  consistent on its own) at start and every ``backup.base_interval_s``, keeping the newest
  ``backup.retain_base_backups`` and the WAL they need.

Layout of the database's part of the bucket (``<state_dir>/bucket/``, or a /tmp folder
PostgreSQL's user can reach)::

    wal/<segment or NNNNNNNN.history>.gz    gzip'd by archive_command, atomically renamed
    base/<UTC stamp>/data/                  the base backup (a PGDATA)
    base/<UTC stamp>/backup.json            when, size, WAL start/end LSN, timeline, source

The restore side (copy a base backup, configure recovery to a time, start, stop) is used by
the rds-pitr drill in ``mpac_drill.platform.sandbox.rds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

from mpac_drill.errors import SandboxError
from mpac_drill.sandbox.postgres import USER, write_hba
from mpac_drill.sandbox.procs import (
    MARKER_ENV,
    PIDS_FILE,
    as_postgres_user,
    chown_for_postgres,
    kill_tree,
    pg_bin,
    pid_alive,
    postgres_home,
    private_dir,
    running_as_root,
    wait_gone,
    write_private,
)
from mpac_drill.timefmt import iso

STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_WAL_NAME = re.compile(r"^[0-9A-F]{24}")
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC \[\d+\] (\w+):\s+(.*)$")


class BaseBackup(TypedDict):
    id: str  # the UTC stamp: the folder name under base/
    started_at: str
    finished_at: str  # the backup is consistent from here on (restore times after this)
    duration_s: float
    size_bytes: int
    start_lsn: str
    end_lsn: str
    timeline: int
    start_wal_file: str
    source: str  # the node it was taken from


class WalArchive(TypedDict):
    files: int
    size_bytes: int
    newest_file: str | None
    newest_at: str | None  # when the newest file was archived
    newest_age_s: float | None


class Snapshots(TypedDict):
    bucket: str
    base_backups: list[BaseBackup]
    wal: WalArchive


def utc_iso(dt: datetime) -> str:
    return iso(dt)


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------- the bucket


def bucket_dir(state_dir: Path) -> Path:
    """``<state_dir>/bucket``, or a /tmp folder when PostgreSQL's user cannot reach it."""
    return postgres_home(state_dir / "bucket")


def wal_dir(bucket: Path) -> Path:
    return bucket / "wal"


def reset_bucket(bucket: Path) -> None:
    """Empty the database's part of the bucket (``wal/``, ``base/``; other folders, such as
    mpac-obs's history, stay): a new sandbox is a new database, older backups cannot
    restore it (and its WAL file names would collide with theirs)."""
    bucket.mkdir(parents=True, exist_ok=True)
    for d in (wal_dir(bucket), bucket / "base"):  # the whole database: its owner's only
        shutil.rmtree(d, ignore_errors=True)
        private_dir(d, for_postgres=True)


def archive_command(bucket: Path) -> str:
    """Shell command for ``archive_command``: gzip the segment into ``wal/`` atomically,
    success without rewriting when it is already there (both nodes archive)."""
    dest = shlex.quote(str(wal_dir(bucket))) + "/%f.gz"
    return f'test -f {dest} || {{ gzip -1 < "%p" > {dest}.$$ && mv {dest}.$$ {dest}; }}'


def restore_command(bucket: Path) -> str:
    """Shell command for ``restore_command``: non-zero when the archive lacks the file."""
    src = shlex.quote(str(wal_dir(bucket))) + "/%f.gz"
    return f'test -f {src} && gzip -dc {src} > "%p"'


# ---------------------------------------------------------------- base backups


async def take_base_backup(
    bucket: Path, *, port: int, passfile: Path, env: dict[str, str], source: str
) -> BaseBackup:
    """One ``pg_basebackup`` of the node on ``port`` into ``base/<UTC stamp>/``.

    Written under a hidden name and renamed when complete, so a listing never shows half
    a backup. Raises :class:`SandboxError` with pg_basebackup's last line when it fails.
    """
    started, t0 = datetime.now(UTC), time.monotonic()
    stamp = started.strftime(STAMP_FORMAT)
    work = bucket / "base" / f".{stamp}.partial"
    work.mkdir(parents=True)
    chown_for_postgres(work)
    argv = as_postgres_user(
        [
            pg_bin("pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            USER,
            "-D",
            str(work / "data"),
            "-F",
            "plain",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
            "-l",
            f"mpac-drill {stamp}",
            "-d",
            f"passfile={passfile}",
        ]
    )
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:  # cancelled: the daemon is stopping
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if proc.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
    if proc.returncode != 0:
        tail = out.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise SandboxError(f"backup: pg_basebackup from {source} failed: {tail[0]}")
    finished = datetime.now(UTC)
    data = work / "data"
    wal_range = json.loads((data / "backup_manifest").read_text())["WAL-Ranges"][-1]
    label = (data / "backup_label").read_text()
    start_file = re.search(r"START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)", label)
    record = BaseBackup(
        id=stamp,
        started_at=utc_iso(started),
        finished_at=utc_iso(finished),
        duration_s=round(time.monotonic() - t0, 4),
        size_bytes=_size(data),
        start_lsn=str(wal_range["Start-LSN"]),
        end_lsn=str(wal_range["End-LSN"]),
        timeline=int(wal_range["Timeline"]),
        start_wal_file=start_file.group(1) if start_file else "",
        source=source,
    )
    (work / "backup.json").write_text(json.dumps(record, indent=1))
    os.replace(work, bucket / "base" / stamp)
    return record


def prune(bucket: Path, keep: int) -> tuple[list[str], int]:
    """Keep the newest ``keep`` base backups and the archived WAL from the oldest kept one's
    start on; return (removed backup ids, removed WAL files). Timeline history files stay."""
    backups = list_base_backups(bucket)
    removed = [b["id"] for b in backups[:-keep]] if keep > 0 else []
    for bid in removed:
        shutil.rmtree(bucket / "base" / bid, ignore_errors=True)
    kept = backups[-keep:] if keep > 0 else backups
    if not kept or not kept[0]["start_wal_file"]:
        return removed, 0
    oldest = kept[0]["start_wal_file"][8:]  # segment number; timelines compare alike
    gone = 0
    with os.scandir(wal_dir(bucket)) as it:
        for entry in it:
            if _WAL_NAME.match(entry.name) and entry.name[8:24] < oldest:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    gone += 1
    return removed, gone


def list_base_backups(bucket: Path) -> list[BaseBackup]:
    """Complete base backups, oldest first."""
    out: list[BaseBackup] = []
    base = bucket / "base"
    if not base.is_dir():
        return out
    for d in sorted(base.iterdir()):
        if d.name.startswith("."):
            continue
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            out.append(json.loads((d / "backup.json").read_text()))
    return out


def list_snapshots(bucket: Path) -> Snapshots:
    """What the bucket holds: base backups (oldest first) and the WAL archive's state."""
    files, size, newest, newest_mtime = 0, 0, None, 0.0
    with contextlib.suppress(FileNotFoundError), os.scandir(wal_dir(bucket)) as it:
        for entry in it:
            if not entry.name.endswith(".gz"):
                continue  # a file still being written
            with contextlib.suppress(FileNotFoundError):
                st = entry.stat()
                files += 1
                size += st.st_size
                if st.st_mtime > newest_mtime:
                    newest, newest_mtime = entry.name, st.st_mtime
    newest_at = datetime.fromtimestamp(newest_mtime, UTC) if newest else None
    return Snapshots(
        bucket=str(bucket),
        base_backups=list_base_backups(bucket),
        wal=WalArchive(
            files=files,
            size_bytes=size,
            newest_file=newest.removesuffix(".gz") if newest else None,
            newest_at=utc_iso(newest_at) if newest_at else None,
            newest_age_s=round(time.time() - newest_mtime, 3) if newest else None,
        ),
    )


def newest_before(backups: list[BaseBackup], when: datetime) -> BaseBackup | None:
    """The newest base backup consistent before ``when`` (finished before it)."""
    usable = [b for b in backups if parse_utc(b["finished_at"]) < when]
    return usable[-1] if usable else None


def is_archived(bucket: Path, wal_file: str) -> bool:
    return (wal_dir(bucket) / f"{wal_file}.gz").is_file()


def _size(path: Path) -> int:
    total = 0
    for root, _, names in os.walk(path):
        for n in names:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(root, n)).st_size
    return total


# ---------------------------------------------------------------- restoring to a time


def restore_home(state_dir: Path) -> Path:
    """Where restored instances live: ``<state_dir>/pitr`` (or a folder PostgreSQL reaches)."""
    return private_dir(postgres_home(state_dir / "pitr"), for_postgres=True)


def copy_base_backup(bucket: Path, backup_id: str, dest: Path) -> int:
    """Copy the base backup's data folder to ``dest`` (owned by PostgreSQL's user)."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(bucket / "base" / backup_id / "data", dest, symlinks=True)
    dest.chmod(0o700)
    if running_as_root():
        for root, dirs, names in os.walk(dest):
            for n in (*dirs, *names):
                chown_for_postgres(Path(root) / n)
        chown_for_postgres(dest)
    return _size(dest)


def configure_recovery(dest: Path, *, bucket: Path, target_time: datetime, port: int) -> None:
    """Make ``dest`` recover to ``target_time`` from the archive, then promote itself.

    The copy keeps the primary's settings: it must not archive into the live bucket (its
    new timeline would shadow the sandbox's), nor wait for a synchronous standby. It
    listens on loopback TCP only (no socket) and takes the sandbox's password only.
    """
    auto = dest / "postgresql.auto.conf"
    drop = (
        "synchronous_standby_names",
        "primary_conninfo",
        "archive_",
        "restore_command",
        "recovery_target",
    )
    lines = [ln for ln in auto.read_text().splitlines() if not ln.startswith(drop)]
    when = target_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    lines += [
        f"port = {port}",
        "listen_addresses = '127.0.0.1'",
        "unix_socket_directories = ''",
        "archive_mode = off",
        "synchronous_standby_names = ''",
        "restore_command = '{}'".format(restore_command(bucket).replace("'", "''")),
        f"recovery_target_time = '{when}'",
        "recovery_target_action = 'promote'",
        "recovery_target_timeline = 'latest'",
        "log_timezone = 'UTC'",
        "timezone = 'UTC'",
    ]
    write_private(auto, "\n".join(lines) + "\n", for_postgres=True)
    write_hba(dest)  # password only, whatever the copied backup says
    (dest / "standby.signal").unlink(missing_ok=True)
    (dest / "recovery.signal").touch()
    chown_for_postgres(dest / "recovery.signal")


def start_instance(
    dest: Path, *, port: int, state_dir: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    """Start PostgreSQL on ``dest``, marked and in the pid ledger so ``sandbox down`` stops
    it; it dies with the process that started it (parent-death signal SIGINT, a fast
    shutdown, armed by ``setpriv`` after it drops to PostgreSQL's user: a credential change
    clears one armed before), so a harness killed mid-restore leaves no instance running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MPAC_"))}
    env[MARKER_ENV] = str(state_dir.resolve())
    argv = as_postgres_user([pg_bin("postgres"), "-D", str(dest), "-p", str(port)])
    if argv[0] != "setpriv":
        argv = ["setpriv", "--", *argv]
    argv.insert(1, "--pdeathsig=SIGINT")
    with log_path.open("ab") as logf:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    with contextlib.suppress(OSError):
        import psutil

        created = psutil.Process(proc.pid).create_time()
        with (state_dir / PIDS_FILE).open("a") as fh:
            fh.write(f"{proc.pid} {created}\n")
    return proc


def stop_instance(pid: int | None, dest: Path | None, timeout_s: float = 10) -> bool:
    """Fast shutdown (SIGINT), SIGKILL after ``timeout_s``; then remove ``dest``.
    True when a process was still running."""
    running = pid is not None and pid_alive(pid)
    if pid is not None and running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        if wait_gone([pid], timeout_s):
            kill_tree(pid, signal.SIGKILL)
            wait_gone([pid], 5)
    if dest is not None:
        shutil.rmtree(dest, ignore_errors=True)
    return running


class RecoveryLog(TypedDict):
    consistent_at: str | None  # log time: consistent recovery state reached
    stopped_at: str | None  # log time: recovery stopped at the target
    stopped_before_commit_at: str | None  # commit time of the first transaction not replayed
    last_commit_at: str | None  # commit time of the last transaction replayed
    timeline: int | None  # the new timeline chosen at promotion
    promoted_at: str | None  # log time: ready to accept connections (read-write)
    errors: list[str]


def read_recovery_log(log_path: Path) -> RecoveryLog:
    """What PostgreSQL says about its recovery (``log_timezone = 'UTC'``)."""
    out = RecoveryLog(
        consistent_at=None,
        stopped_at=None,
        stopped_before_commit_at=None,
        last_commit_at=None,
        timeline=None,
        promoted_at=None,
        errors=[],
    )
    with contextlib.suppress(FileNotFoundError):
        for line in log_path.read_text(errors="replace").splitlines():
            m = _LOG_LINE.match(line)
            if not m:
                continue
            at = utc_iso(datetime.fromisoformat(m.group(1) + "+00:00"))
            level, msg = m.group(2), m.group(3)
            if level in ("FATAL", "PANIC", "ERROR"):
                out["errors"].append(f"{level}: {msg}")
            elif msg.startswith("consistent recovery state reached"):
                out["consistent_at"] = at
            elif msg.startswith("recovery stopping before"):
                out["stopped_at"] = at
                out["stopped_before_commit_at"] = _pg_time(msg.rsplit(", time ", 1)[-1])
            elif msg.startswith("last completed transaction was at log time"):
                out["last_commit_at"] = _pg_time(msg.split(" log time ", 1)[-1])
            elif msg.startswith("selected new timeline ID"):
                out["timeline"] = int(msg.rsplit(" ", 1)[-1].split(",")[0])
            elif msg.startswith("database system is ready to accept connections"):
                out["promoted_at"] = at
    return out


def _pg_time(text: str) -> str | None:
    """``2026-11-27 15:03:41.15+00`` (timezone UTC) → ISO-8601 UTC."""
    with contextlib.suppress(ValueError):
        return utc_iso(datetime.fromisoformat(text.strip().rstrip(".") + ":00"))
    return None


__all__ = [
    "BaseBackup",
    "WalArchive",
    "Snapshots",
    "RecoveryLog",
    "bucket_dir",
    "wal_dir",
    "reset_bucket",
    "archive_command",
    "restore_command",
    "take_base_backup",
    "prune",
    "list_base_backups",
    "list_snapshots",
    "newest_before",
    "is_archived",
    "restore_home",
    "copy_base_backup",
    "configure_recovery",
    "start_instance",
    "stop_instance",
    "read_recovery_log",
    "STAMP_FORMAT",
]

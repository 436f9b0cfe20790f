"""Restore mode of the sandbox's "RDS": a new primary from another sandbox's bucket.

Plays ``restore-db-instance-from-db-snapshot`` in the DR region (runbook §1.4) with the
snapshots that region holds: the newest base backup of the bucket plus every WAL segment
archived there, replayed to the end of the archive (no target time), then promoted. The
writes the lost primary had not archived yet are lost: the cross-region copy interval
bounds the loss (runbook finding F3). The DR daemon asks for it with
``rds.restore_from_bucket`` in its ``target.json``; ``PgCluster.start`` calls
:func:`restore_primary` instead of ``initdb``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from mpac_drill.errors import SandboxError
from mpac_drill.sandbox import snapshots
from mpac_drill.sandbox.postgres import write_hba
from mpac_drill.sandbox.procs import chown_for_postgres, write_private

if TYPE_CHECKING:
    from mpac_drill.sandbox.postgres import PgCluster, PgNode

#: Settings of the copied base backup that must not reach the restored instance: it waits
#: for no synchronous standby, follows no primary, and archives into its own bucket.
_DROP = (
    "synchronous_standby_names",
    "primary_conninfo",
    "archive_",
    "restore_command",
    "recovery_target",
)


def configure_restore(
    data_dir: Path, *, bucket: Path, archive_command: str | None, archive_timeout_s: int
) -> None:
    """Make ``data_dir`` (a base backup copy) replay the bucket's whole WAL archive and
    promote at its end, archiving its own new timeline with ``archive_command``."""
    auto = data_dir / "postgresql.auto.conf"
    lines = [ln for ln in auto.read_text().splitlines() if not ln.startswith(_DROP)]
    lines += [
        "synchronous_standby_names = ''",
        "log_timezone = 'UTC'",
        "restore_command = '{}'".format(snapshots.restore_command(bucket).replace("'", "''")),
        "recovery_target_timeline = 'latest'",
    ]
    if archive_command is not None:
        lines += [
            "archive_mode = always",
            "archive_command = '{}'".format(archive_command.replace("'", "''")),
            f"archive_timeout = {max(1, int(archive_timeout_s))}",
        ]
    else:
        lines.append("archive_mode = off")
    write_private(auto, "\n".join(lines) + "\n", for_postgres=True)
    write_hba(data_dir)  # password only, whatever the copied backup says
    (data_dir / "standby.signal").unlink(missing_ok=True)
    (data_dir / "recovery.signal").touch()
    chown_for_postgres(data_dir / "recovery.signal")


async def restore_primary(
    pg: PgCluster, node: PgNode, bucket: Path, timeout_s: float = 60
) -> dict[str, Any]:
    """Restore ``node`` from ``bucket`` and start it as the cluster's primary.

    Events: ``rds: restore: ...`` per stage, timed by the daemon's clock. Raises
    :class:`SandboxError` when the bucket has no base backup or recovery fails.
    """
    backups = snapshots.list_base_backups(bucket)
    if not backups:
        raise SandboxError(f"rds: no base backup in {bucket} to restore from")
    base = backups[-1]
    wal = snapshots.list_snapshots(bucket)["wal"]
    t0 = time.monotonic()
    size = await asyncio.to_thread(snapshots.copy_base_backup, bucket, base["id"], node.data_dir)
    configure_restore(
        node.data_dir,
        bucket=bucket,
        archive_command=pg.archive_command,
        archive_timeout_s=pg.archive_timeout_s,
    )
    pg.on_event(
        f"rds: restore: base backup {base['id']} copied ({size / 1e6:.1f} MB in "
        f"{time.monotonic() - t0:.2f} s); replaying {wal['files']} archived WAL "
        f"files up to {wal['newest_file']}"
    )
    t1 = time.monotonic()
    await pg._launch(node, "primary")  # answers once consistent (hot standby), then replays
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            rows = await pg._sql(node.port, "SELECT pg_is_in_recovery()")
            if rows and rows[0][0] is False:
                break
        except psycopg.Error:
            pass
        if node.pid is None:
            raise SandboxError(
                f"rds: the restored instance stopped during recovery (see {node.log_path})"
            )
        if loop.time() > deadline:
            raise SandboxError(
                f"rds: the restored instance was not promoted within "
                f"{timeout_s:g} s (see {node.log_path})"
            )
        await asyncio.sleep(0.02)
    # The restored primary stops reading the old bucket; a standby copies these settings.
    for stmt in (
        "ALTER SYSTEM RESET restore_command",
        "ALTER SYSTEM RESET recovery_target_timeline",
        "SELECT pg_reload_conf()",
    ):
        await pg._sql(node.port, stmt)
    rlog = snapshots.read_recovery_log(node.log_path)
    out = {
        "base_backup": base["id"],
        "base_finished_at": base["finished_at"],
        "wal_files": wal["files"],
        "newest_wal_file": wal["newest_file"],
        "newest_wal_at": wal["newest_at"],
        "replay_s": round(time.monotonic() - t1, 4),
        "last_commit_at": rlog["last_commit_at"],
        "timeline": rlog["timeline"],
    }
    pg.on_event(
        f"rds: restore: promoted on timeline {rlog['timeline']} after "
        f"{out['replay_s']:.2f} s of WAL replay; last replayed commit "
        f"{rlog['last_commit_at']}"
    )
    return out


__all__ = ["configure_restore", "restore_primary"]

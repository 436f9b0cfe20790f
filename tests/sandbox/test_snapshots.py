"""The bucket of the sandbox's RDS backups: listing, pruning, the archive/restore commands,
and what PostgreSQL's recovery log says (no PostgreSQL needed here)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mpac_drill.sandbox import snapshots
from tests.conftest import run_cli


def _backup(
    bucket: Path, stamp: str, *, finished: datetime, start_file: str, size: int = 100
) -> None:
    d = bucket / "base" / stamp
    (d / "data").mkdir(parents=True)
    (d / "data" / "PG_VERSION").write_bytes(b"x" * size)
    record = {
        "id": stamp,
        "started_at": snapshots.utc_iso(finished - timedelta(seconds=1)),
        "finished_at": snapshots.utc_iso(finished),
        "duration_s": 1.0,
        "size_bytes": size,
        "start_lsn": "0/2000028",
        "end_lsn": "0/2000120",
        "timeline": int(start_file[:8], 16),
        "start_wal_file": start_file,
        "source": "pg-a",
    }
    (d / "backup.json").write_text(json.dumps(record))


def _wal(bucket: Path, name: str, mtime: float, size: int = 10) -> None:
    path = bucket / "wal" / name
    path.write_bytes(b"w" * size)
    os.utime(path, (mtime, mtime))


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    b = tmp_path / "bucket"
    snapshots.reset_bucket(b)
    return b


def test_list_snapshots_lists_complete_backups_oldest_first_and_newest_wal(bucket):
    t = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    _backup(
        bucket,
        "20261127T120100000000Z",
        finished=t + timedelta(minutes=1),
        start_file="000000010000000000000005",
        size=300,
    )
    _backup(bucket, "20261127T120000000000Z", finished=t, start_file="000000010000000000000002")
    (bucket / "base" / ".20261127T120200000000Z.partial" / "data").mkdir(parents=True)
    now = time.time()
    _wal(bucket, "000000010000000000000004.gz", now - 30)
    _wal(bucket, "000000010000000000000005.gz", now - 2, size=20)
    _wal(bucket, "000000010000000000000006.gz.4242", now)  # still being written
    snap = snapshots.list_snapshots(bucket)
    assert [b["id"] for b in snap["base_backups"]] == [
        "20261127T120000000000Z",
        "20261127T120100000000Z",
    ]
    assert snap["base_backups"][1]["size_bytes"] == 300
    assert snap["wal"]["files"] == 2 and snap["wal"]["size_bytes"] == 30
    assert snap["wal"]["newest_file"] == "000000010000000000000005"
    assert 1.5 <= snap["wal"]["newest_age_s"] <= 5
    assert snapshots.parse_utc(snap["wal"]["newest_at"]).timestamp() == pytest.approx(now - 2)


def test_list_snapshots_of_an_empty_or_missing_bucket_is_empty(bucket, tmp_path):
    for b in (bucket, tmp_path / "nothing-here"):
        snap = snapshots.list_snapshots(b)
        assert snap["base_backups"] == [] and snap["wal"]["files"] == 0
        assert snap["wal"]["newest_at"] is None


def test_newest_before_picks_the_newest_backup_consistent_before_the_time(bucket):
    t = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    for i in range(3):
        _backup(
            bucket,
            f"20261127T12{i:02d}00000000Z",
            finished=t + timedelta(minutes=i),
            start_file="000000010000000000000002",
        )
    backups = snapshots.list_base_backups(bucket)
    assert snapshots.newest_before(backups, t + timedelta(minutes=1, seconds=30))["id"] == (
        "20261127T120100000000Z"
    )
    assert snapshots.newest_before(backups, t + timedelta(minutes=1))["id"] == (
        "20261127T120000000000Z"
    )  # finished at exactly T: not consistent before T
    assert snapshots.newest_before(backups, t) is None


def test_prune_keeps_newest_backups_and_the_wal_they_need(bucket):
    t = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    for i, seg in enumerate(("02", "05", "08")):
        _backup(
            bucket,
            f"20261127T12{i:02d}00000000Z",
            finished=t + timedelta(minutes=i),
            start_file=f"0000000100000000000000{seg}",
        )
    now = time.time()
    names = [
        f"{tli:08X}{0:08X}{seg:08X}.gz"
        for tli, seg in ((1, 2), (1, 3), (1, 4), (1, 5), (2, 6), (2, 9))
    ]
    names += ["00000002.history.gz", "000000010000000000000004.partial.gz"]
    for n in names:
        _wal(bucket, n, now)
    removed, wal_removed = snapshots.prune(bucket, keep=2)
    assert removed == ["20261127T120000000000Z"]
    assert [b["id"] for b in snapshots.list_base_backups(bucket)] == [
        "20261127T120100000000Z",
        "20261127T120200000000Z",
    ]
    left = {p.name for p in (bucket / "wal").iterdir()}
    assert wal_removed == 4  # segments 2, 3, 4 and the partial 4, whatever their timeline
    assert left == {
        "000000010000000000000005.gz",
        "000000020000000000000006.gz",
        "000000020000000000000009.gz",
        "00000002.history.gz",
    }


def _sh(command: str, p: Path, f: str) -> int:
    cmd = command.replace("%p", str(p)).replace("%f", f)
    return subprocess.run(["/bin/sh", "-c", cmd], capture_output=True).returncode


def test_archive_and_restore_commands_round_trip_and_never_overwrite(bucket, tmp_path):
    segment = tmp_path / "000000010000000000000007"
    segment.write_bytes(os.urandom(1000) + b"\0" * 100_000)
    archive, restore = snapshots.archive_command(bucket), snapshots.restore_command(bucket)
    assert _sh(archive, segment, segment.name) == 0
    stored = bucket / "wal" / f"{segment.name}.gz"
    assert stored.is_file() and stored.stat().st_size < 5_000  # the zero tail compresses
    assert sorted(p.name for p in (bucket / "wal").iterdir()) == [stored.name]  # no temp left
    before = stored.stat().st_mtime_ns
    assert _sh(archive, segment, segment.name) == 0  # the other node archives it again
    assert stored.stat().st_mtime_ns == before
    out = tmp_path / "RECOVERYXLOG"
    assert _sh(restore, out, segment.name) == 0
    assert out.read_bytes() == segment.read_bytes()
    assert _sh(restore, tmp_path / "missing", "000000010000000000000099") != 0
    assert not (tmp_path / "missing").exists()


def test_read_recovery_log_finds_stop_point_timeline_and_promotion(tmp_path):
    log = tmp_path / "restore.log"
    log.write_text(
        "2026-11-27 15:11:41.717 UTC [1] LOG:  consistent recovery state reached at 0/5000\n"
        "2026-11-27 15:11:41.827 UTC [2] LOG:  recovery stopping before commit of transaction"
        " 3591, time 2026-11-27 15:11:35.604914+00\n"
        "2026-11-27 15:11:41.827 UTC [2] LOG:  last completed transaction was at log time "
        "2026-11-27 15:11:35.57+00\n"
        "2026-11-27 15:11:41.830 UTC [2] LOG:  selected new timeline ID: 2\n"
        "2026-11-27 15:11:41.834 UTC [1] LOG:  database system is ready to accept connections\n"
        "2026-11-27 15:11:42.000 UTC [3] FATAL:  something else\n"
        "not a log line\n"
    )
    r = snapshots.read_recovery_log(log)
    assert r["consistent_at"] == "2026-11-27T15:11:41.717000Z"
    assert r["stopped_at"] == "2026-11-27T15:11:41.827000Z"
    assert r["stopped_before_commit_at"] == "2026-11-27T15:11:35.604914Z"
    assert r["last_commit_at"] == "2026-11-27T15:11:35.570000Z"
    assert r["timeline"] == 2 and r["promoted_at"] == "2026-11-27T15:11:41.834000Z"
    assert r["errors"] == ["FATAL: something else"]


def test_cli_snapshots_json_lists_the_bucket_of_the_target(tmp_path):
    # a state folder PostgreSQL's user could reach, so the bucket is not moved to /tmp
    state = Path(tempfile.mkdtemp(prefix="mpac-snap-test-"))
    try:
        state.chmod(0o755)
        bucket = snapshots.bucket_dir(state)
        snapshots.reset_bucket(bucket)
        _backup(
            bucket,
            "20261127T120000000000Z",
            finished=datetime.now(UTC),
            start_file="000000010000000000000002",
        )
        _wal(bucket, "000000010000000000000002.gz", time.time())
        target = tmp_path / "t.yaml"
        target.write_text(f"name: snap\nkind: sandbox\nenvironment: sandbox\nstate_dir: {state}\n")
        r = run_cli("sandbox", "snapshots", "--target", str(target), "--json", timeout=60)
        assert r.code == 0, r.err
        data = json.loads(r.out)
        assert data["bucket"] == str(bucket)
        assert [b["id"] for b in data["base_backups"]] == ["20261127T120000000000Z"]
        assert data["wal"]["newest_file"] == "000000010000000000000002"
        r = run_cli("sandbox", "snapshots", "--target", str(target), timeout=60)
        assert r.code == 0 and "0/2000028" in r.out and "WAL archive: 1 files" in r.out, r.out
        r = run_cli("sandbox", "snapshots", "--help", timeout=60)
        assert r.code == 0 and "Example:" in r.out
        assert "mpac-drill sandbox snapshots --json" in r.out
    finally:
        subprocess.run(["rm", "-rf", str(state)], check=False)


def test_reset_bucket_empties_backups_and_archive_but_keeps_other_folders(bucket):
    _backup(
        bucket,
        "20261127T120000000000Z",
        finished=datetime.now(UTC),
        start_file="000000010000000000000002",
    )
    _wal(bucket, "000000010000000000000002.gz", time.time())
    (bucket / "obs").mkdir()
    (bucket / "obs" / "history.jsonl").write_text("{}\n")  # mpac-obs keeps its history here
    snapshots.reset_bucket(bucket)
    assert list((bucket / "base").iterdir()) == [] and list((bucket / "wal").iterdir()) == []
    assert (bucket / "obs" / "history.jsonl").read_text() == "{}\n"

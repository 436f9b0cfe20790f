"""The RPO canary: numbered writes through the services' database endpoint, and a ledger.

Every ``interval_s`` the canary inserts row ``seq`` into ``canary`` through the same
multi-host DSN the services use and records whether the database acknowledged the commit.
After recovery it reads the rows back from whichever node is primary then. Exact counts:

- ``acked_writes``: commits the database acknowledged;
- ``lost_writes``: acknowledged rows missing after recovery;
- ``rpo_s``: the span of data lost, from the last acknowledged write that survived before
  the first lost one to the last lost write, by acknowledgement time (0 when none lost).
"""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from mpac_drill.timefmt import iso

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext

CANARY_COLUMNS = ("seq", "sent_at", "t_rel_s", "ack_rel_s", "acked", "present")
#: libpq client settings the canary adds when its DSN does not set them: a connection to a
#: primary that vanished (a failover that black-holes the old address) fails within seconds
#: instead of hanging on TCP's defaults. Client-side only, so any server or proxy takes them.
CLIENT_DEFAULTS = {
    "connect_timeout": 3,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
}


def bounded_dsn(dsn: str) -> str:
    """``dsn`` with :data:`CLIENT_DEFAULTS` for the keys it does not set itself."""
    have = conninfo_to_dict(dsn)
    return make_conninfo(dsn, **{k: v for k, v in CLIENT_DEFAULTS.items() if k not in have})


@dataclass
class Write:
    seq: int
    sent_mono: float
    sent_utc: datetime
    ack_mono: float | None = None
    present: bool | None = None

    @property
    def acked(self) -> bool:
        return self.ack_mono is not None


class Rpo(TypedDict):
    acked_writes: int
    lost_writes: int
    rpo_s: float
    lost_seqs: list[int]


def compute_rpo(ledger: Sequence[Write]) -> Rpo:
    """Lost writes and the RPO from a ledger whose ``present`` flags are filled in."""
    acked = sorted((w for w in ledger if w.acked), key=lambda w: w.ack_mono or 0.0)
    lost = [w for w in acked if not w.present]
    if not lost:
        return Rpo(acked_writes=len(acked), lost_writes=0, rpo_s=0.0, lost_seqs=[])
    first = lost[0].ack_mono or 0.0
    last = lost[-1].ack_mono or 0.0
    survivors_before = [w.ack_mono or 0.0 for w in acked if w.present and (w.ack_mono or 0) < first]
    start = max(survivors_before) if survivors_before else lost[0].sent_mono
    return Rpo(
        acked_writes=len(acked),
        lost_writes=len(lost),
        rpo_s=round(last - start, 4),
        lost_seqs=[w.seq for w in lost],
    )


class Canary:
    """Writes ``(run_id, seq)`` rows every ``interval_s`` through ``dsn`` until stopped."""

    def __init__(
        self, *, dsn: str, run_id: str, interval_s: float = 0.05, max_duration_s: float = 3600
    ) -> None:
        self._dsn = bounded_dsn(dsn)  # holds the password: never logged, never written
        self.run_id = run_id
        self.interval_s = interval_s
        self.max_duration_s = max_duration_s
        self.ledger: list[Write] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="canary")
        self._thread.start()

    def _loop(self) -> None:
        from mpac_drill.measure.observer import paced

        conn: psycopg.Connection | None = None
        for seq in paced(self._stop, self.interval_s, self.max_duration_s):
            w = Write(seq=seq, sent_mono=time.monotonic(), sent_utc=datetime.now(UTC))
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self._dsn, autocommit=True)
                conn.execute("INSERT INTO canary (run_id, seq) VALUES (%s, %s)", (self.run_id, seq))
                w.ack_mono = time.monotonic()
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
            with self._lock:
                self.ledger.append(w)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def acked_count(self) -> int:
        with self._lock:
            return sum(1 for w in self.ledger if w.acked)

    def wait_acked(self, timeout_s: float) -> bool:
        """Wait until the database has acknowledged one write: ``False`` after ``timeout_s``
        (or once the canary has stopped) without one."""
        deadline = time.monotonic() + timeout_s
        while self.acked_count() == 0:
            stopped = self._thread is None or not self._thread.is_alive()
            if stopped or time.monotonic() >= deadline:
                return self.acked_count() > 0
            time.sleep(0.02)
        return True

    def read_back(self, timeout_s: float = 30, dsn: str | None = None) -> Rpo:
        """Mark which writes survived (reading from the current primary, or from ``dsn``:
        the region drill's restored DR database) and compute RPO."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                target = bounded_dsn(dsn) if dsn else self._dsn
                with psycopg.connect(target, autocommit=True) as conn:
                    rows = conn.execute(
                        "SELECT seq FROM canary WHERE run_id = %s", (self.run_id,)
                    ).fetchall()
                break
            except psycopg.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        present = {r[0] for r in rows}
        for w in self.ledger:
            w.present = w.seq in present
        return compute_rpo(self.ledger)

    def purge(self) -> int:
        """Delete this run's rows from the canary table (the ledger in ``canary.csv`` is the
        record); returns how many went. One bounded attempt (the DSN's connect_timeout).

        :raises RuntimeError: one line that names no DSN and no password.
        """
        try:
            with psycopg.connect(self._dsn, autocommit=True) as conn:
                cur = conn.execute("DELETE FROM canary WHERE run_id = %s", (self.run_id,))
                return max(cur.rowcount, 0)
        except psycopg.Error as exc:
            raise RuntimeError(describe_error(exc, self._dsn)) from None

    def write_csv(self, path: Path, rel_to: float | None) -> None:
        def rel(m: float | None) -> str:
            return "" if m is None or rel_to is None else f"{m - rel_to:.6f}"

        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(CANARY_COLUMNS)
            for x in self.ledger:
                present = "" if not x.acked or x.present is None else int(x.present)
                w.writerow(
                    [
                        x.seq,
                        iso(x.sent_utc),
                        rel(x.sent_mono),
                        rel(x.ack_mono),
                        int(x.acked),
                        present,
                    ]
                )


def measure_lost_writes(drill: DrillContext) -> dict[str, Any]:
    """Stop the canary, read its rows back (from the current primary; the region drill:
    from the restored DR database, ``drill.rpo_dsn``) and set ``acked_writes``,
    ``lost_writes`` and ``rpo_s``. Nothing to measure in a dry run or without a canary."""
    ctx = drill
    if ctx.dry_run:
        return {"dry_run": True}
    if ctx.canary is None:  # not run on this target (noted when it was not started)
        return {"measured": False, "reason": "no canary on this target"}
    ctx.phase("reading back canary")
    ctx.canary.stop()
    rpo = ctx.canary.read_back(dsn=ctx.rpo_dsn)
    ctx.measurements.update(
        acked_writes=rpo["acked_writes"], lost_writes=rpo["lost_writes"], rpo_s=rpo["rpo_s"]
    )
    return {k: v for k, v in rpo.items() if k != "lost_seqs"} | {
        "lost_seqs_sample": rpo["lost_seqs"][:20]
    }


def describe_error(exc: psycopg.Error, dsn: str) -> str:
    """One line about ``exc`` that cannot carry the DSN or its password.

    A server error (it has a SQLSTATE) and a connection failure keep libpq's first line (it
    names host, port and user, never the password); anything else, such as a DSN that does
    not parse (libpq echoes it), keeps only the class name. The password, and the DSN
    itself, are scrubbed from what is kept in any case.
    """
    kind = type(exc).__name__
    first = (str(exc).strip().splitlines() or [""])[0]
    if not first or not (exc.sqlstate or isinstance(exc, psycopg.OperationalError)):
        return f"{kind} (not a usable PostgreSQL DSN?)"
    try:
        password = str(conninfo_to_dict(dsn).get("password") or "")
    except psycopg.Error:
        password = ""
    for secret in (dsn, password):
        if secret:
            first = first.replace(secret, "***")
    return f"{kind}: {first}"


__all__ = [
    "describe_error",
    "measure_lost_writes",
    "CANARY_COLUMNS",
    "CLIENT_DEFAULTS",
    "Canary",
    "Rpo",
    "Write",
    "bounded_dsn",
    "compute_rpo",
]

"""Guards that run before any fault: the production guard and the one-drill-per-target lock.

- :func:`check_production_guard` refuses a production target unless three keys agree
  (production is decided by facts, :mod:`mpac_drill.production`: the environment or a
  production account; a non-production target borrowing a production name is refused):
  ``--allow-production`` on the command line, a change ticket (``--ticket CHG-1234``), and
  ``allow_production: true`` in the target file itself. For every ``aws`` target it also
  checks that the credentials act in the target's ``account_id`` (STS GetCallerIdentity),
  so a staging drill cannot hit production through a wrong ``AWS_PROFILE``. A dry run makes
  no AWS call, STS included.
- :class:`DrillLock` refuses a second drill against the same target while one runs: two
  drills at once would each measure the other's outage. The lock is a file created with
  ``O_EXCL`` holding who runs what since when; a lock whose process is gone is taken over
  with a warning.

Example::

    check_production_guard(target, allow_production=False, ticket=None, dry_run=False)
    with DrillLock(Path("runs/.locks"), target.name, "rds-failover", run_dir):
        ...  # inject, measure, roll back
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypedDict

import psutil
from chaoslib.exceptions import ActivityFailed

from mpac_drill.config import Target
from mpac_drill.errors import HarnessError, UsageError
from mpac_drill.production import (
    ProductionFacts,
    is_production,
    production_clashes,
    production_facts,
)

logger = logging.getLogger("mpac_drill")

#: A change ticket: project key, dash, number (``CHG-1234``, ``OPS2-77``).
TICKET_RE = re.compile(r"^[A-Z][A-Z0-9]+-\d+$")
_ACCOUNT_RE = re.compile(r"^\d{12}$")
_CREATE_TIME_TOLERANCE_S = 0.01  # as procs.py: psutil's create time is stable to the tick
_UNREADABLE_GRACE_S = 2.0  # an empty or torn lock file younger than this is being written
_TAKEOVER_STALE_S = 30.0  # a takeover marker older than this was left by a crashed process
_ATTEMPTS = 50
_RETRY_S = 0.05


# ---------------------------------------------------------------- production guard


def check_production_guard(
    target: Target, *, allow_production: bool, ticket: str | None, dry_run: bool
) -> None:
    """Refuse a drill the target does not allow; return quietly when it may run.

    A production target needs ``allow_production`` (``--allow-production``), a ``ticket``
    matching ``CHG-1234`` and ``allow_production: true`` in the target file, in a dry run
    too. An ``aws`` target outside a dry run also needs credentials that act in its
    ``account_id`` (one STS GetCallerIdentity call).

    :raises UsageError: one line saying what is missing, or naming both (masked) accounts.
    :raises HarnessError: when STS cannot be asked (no credentials, endpoint unreachable).
    """
    facts = production_facts() if target.kind == "aws" else None
    if is_production(target, facts):
        if "aws.endpoint_url" in target.overrides:
            raise UsageError(
                f"--set aws.endpoint_url: refused on production target "
                f"{target.name!r}; only its target file may point it elsewhere"
            )
        _check_production(target, allow_production=allow_production, ticket=ticket, facts=facts)
        logger.warning(
            "production drill allowed on target %s under change ticket %s%s",
            target.name,
            ticket,
            " [dry-run]" if dry_run else "",
        )
    elif facts is not None:
        clashes = production_clashes(target, facts)
        if clashes:
            raise UsageError(
                f"target {target.name!r} ({target.path}) is not production but "
                f"{'; '.join(clashes)} (as {facts.source.name} says): refusing; give the "
                f"target its own {target.environment} names"
            )
    if target.kind != "aws" or dry_run:
        return
    expected = _expected_account(target)
    try:
        # Imported here: the sandbox path of the harness never loads boto3.
        from mpac_drill.platform.aws.alarms import account_id

        actual = account_id(target)
    except ActivityFailed as exc:
        raise HarnessError(
            f"cannot confirm the AWS account of target {target.name!r} before any fault: {exc}"
        ) from None
    if actual != expected:
        raise UsageError(
            f"target {target.name!r} is AWS account {mask_account(expected)} but the "
            f"credentials act in account {mask_account(actual)}: refusing to inject faults "
            "(check AWS_PROFILE, aws.profile and aws.role_arn)"
        )
    logger.info(
        "target %s: credentials act in its AWS account %s", target.name, mask_account(actual)
    )


def mask_account(account: str) -> str:
    """``"123456789012"`` → ``"********9012"``: enough to tell accounts apart in a log."""
    text = str(account)
    return "*" * max(len(text) - 4, 0) + text[-4:]


def _check_production(
    target: Target, *, allow_production: bool, ticket: str | None, facts: ProductionFacts | None
) -> None:
    missing = []
    if not allow_production:
        missing.append("--allow-production")
    if not ticket:
        missing.append("a change ticket (--ticket CHG-1234)")
    elif not TICKET_RE.match(ticket):
        missing.append(f"a change ticket like CHG-1234 (not {ticket!r})")
    if target.get("allow_production") is not True:
        missing.append(f"allow_production: true in {target.path}")
    if missing:
        why = "is production"
        if target.environment != "production" and facts is not None:
            why = (
                f"acts in production account {mask_account(str(target.get('account_id')))} "
                f"(listed in {facts.source.name}), so it is production whatever its "
                "environment says"
            )
        raise UsageError(f"target {target.name!r} {why}: refused without " + ", ".join(missing))


def _expected_account(target: Target) -> str:
    value = target.get("account_id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:012d}"  # unquoted in YAML
    if not isinstance(value, str) or not _ACCOUNT_RE.match(value):
        raise UsageError(
            f"target {target.name!r} ({target.path}) needs account_id: the 12-digit AWS "
            f"account the drill may touch, quoted (not {value!r})"
        )
    return value


# ---------------------------------------------------------------- one drill per target


class LockHolder(TypedDict):
    """What a lock file holds: who runs which drill since when."""

    pid: int
    scenario: str
    started_at: str
    run_dir: str
    host: str
    create_time: float
    token: str


class DrillLock:
    """Hold ``<lock_dir>/<target>.lock`` for the length of one drill.

    Entering refuses (``UsageError``) while another live drill holds the lock; a lock left
    by a process that is gone (or whose pid now belongs to another process) is taken over
    with a warning. Leaving removes the lock, after an exception or Ctrl-C too, but only
    while it is still this drill's.
    """

    def __init__(self, lock_dir: Path, target_name: str, scenario: str, run_dir: Path) -> None:
        self.lock_dir = Path(lock_dir)
        self.target_name = target_name
        self.scenario = scenario
        self.run_dir = Path(run_dir)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", target_name).lstrip(".") or "_"
        self.path = self.lock_dir / f"{safe}.lock"
        self._token: str | None = None

    def __enter__(self) -> DrillLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Create the lock file, or take over a stale one; refuse while a drill runs."""
        if self._token is not None:
            raise UsageError(f"the drill lock of target {self.target_name!r} is already held")
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(_ATTEMPTS):
            if self._create():
                return
            raw = _read(self.path)
            if raw is None:  # released between our attempt and the read
                continue
            holder = _parse(raw)
            if holder is None:
                if _age_s(self.path) < _UNREADABLE_GRACE_S:
                    time.sleep(_RETRY_S)  # its owner is writing it right now
                    continue
                logger.warning("taking over the unreadable drill lock %s", self.path)
            elif _alive(holder):
                raise UsageError(self._busy_message(holder))
            else:
                logger.warning(
                    "taking over the stale drill lock of target %s: %s since %s (pid %s on "
                    "%s is gone)",
                    self.target_name,
                    holder["scenario"],
                    holder["started_at"],
                    holder["pid"],
                    holder["host"],
                )
            if not self._remove_if_unchanged(raw):
                time.sleep(_RETRY_S)
        raise HarnessError(f"could not take the drill lock {self.path}: it keeps changing")

    def release(self) -> None:
        """Remove the lock file when it is still ours; a no-op otherwise."""
        token, self._token = self._token, None
        if token is None:
            return
        raw = _read(self.path)
        holder = _parse(raw) if raw is not None else None
        if holder is None or holder.get("token") != token:
            logger.warning("drill lock %s is no longer ours: left in place", self.path)
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _create(self) -> bool:
        me = psutil.Process()
        holder = LockHolder(
            pid=me.pid,
            scenario=self.scenario,
            started_at=_utc_now(),
            run_dir=str(self.run_dir),
            host=socket.gethostname(),
            create_time=me.create_time(),
            token=uuid.uuid4().hex,
        )
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(holder, fh)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                self.path.unlink()
            raise
        self._token = holder["token"]
        return True

    def _remove_if_unchanged(self, seen: bytes) -> bool:
        """Unlink the stale lock only if nobody replaced it meanwhile (one taker at a time)."""
        marker = self.path.with_name(self.path.name + ".takeover")
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if _age_s(marker) > _TAKEOVER_STALE_S:
                with contextlib.suppress(FileNotFoundError):
                    marker.unlink()
            return False
        os.close(fd)
        try:
            if _read(self.path) == seen:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                marker.unlink()

    def _busy_message(self, holder: LockHolder) -> str:
        where = f"pid {holder['pid']}"
        if holder["host"] != socket.gethostname():
            where += f" on {holder['host']}"
        return (
            f"a drill is already running against target {self.target_name}: "
            f"{holder['scenario']} since {holder['started_at']} ({where}, "
            f"run folder {holder['run_dir']})"
        )


def _alive(holder: LockHolder) -> bool:
    """Whether the holder's process still runs (a lock from another host is assumed live)."""
    if holder["host"] != socket.gethostname():
        return True
    try:
        process = psutil.Process(holder["pid"])
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(process.create_time() - holder["create_time"]) < _CREATE_TIME_TOLERANCE_S
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's live process
        return True


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _parse(raw: bytes) -> LockHolder | None:
    try:
        data: Any = json.loads(raw)
        holder = LockHolder(
            pid=int(data["pid"]),
            scenario=str(data["scenario"]),
            started_at=str(data["started_at"]),
            run_dir=str(data["run_dir"]),
            host=str(data["host"]),
            create_time=float(data.get("create_time", 0.0)),
            token=str(data.get("token", "")),
        )
    except (ValueError, TypeError, KeyError):
        return None
    return holder


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["TICKET_RE", "LockHolder", "DrillLock", "check_production_guard", "mask_account"]

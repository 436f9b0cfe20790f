"""The write-ahead record of a drill's fault: ``<run folder>/inflight.json``.

Written atomically (temporary file, fsync, rename) immediately before the destructive call
(:meth:`DrillContext.mark_injected`), rewritten as the procedure's steps complete and its
undo plan grows (Route53 switched, a parameter written, an instance restored), and deleted
once ``result.json`` is written. A run folder holding ``inflight.json`` and no
``result.json``, whose writer is gone, is an **interrupted run**: ``mpac-drill recover``
performs the pending steps of its undo plan through the platform and writes its result.

Nothing secret is ever written here: SSM parameters are named with the version the drill
wrote over (their history keeps the value; the undo reads it back at recovery), never with a
value; DSNs never appear.

Example::

    record = new_record(run_id=..., scenario="rds-failover", target={...}, ...)
    write(run_dir, record)            # before the kill
    undo_add(run_dir, record, step)   # a step of the procedure about to change something
    remove(run_dir)                   # after result.json
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import psutil

from mpac_drill.errors import UsageError
from mpac_drill.timefmt import iso, utc_now

INFLIGHT_FILE = "inflight.json"
RESULT_FILE = "result.json"
VERSION = 1
#: The states of an undo step: still to undo, undone by the drill itself, nothing to undo.
PENDING, DONE, NOTHING = "pending", "done", "nothing to undo"
_CREATE_TIME_TOLERANCE_S = 0.01


class UndoStep(TypedDict):
    """One thing the drill changed and how it is undone (never a secret)."""

    id: str  # unique in the run: "sandbox-health", "route53-record", "ssm:database_url", ...
    what: str  # "Route53 record", "SSM parameter", "restored DB instance", ...
    how: str  # the undo, in words
    resources: list[str]
    state: str  # PENDING, DONE or NOTHING
    region: NotRequired[str]
    data: NotRequired[dict[str, Any]]  # what the undo needs: names, versions, record sets


class StepOutcome(TypedDict):
    """What recovery did about one undo step."""

    id: str
    what: str
    resource: str
    outcome: str
    ok: bool


class Writer(TypedDict):
    pid: int
    create_time: float
    host: str


class InflightRecord(TypedDict):
    inflight_version: int
    run_id: str
    scenario: str
    target: dict[str, Any]  # name, path, kind, overrides (--set: no secrets)
    started_at: str
    quarter: str | None
    users: int
    updated_at: str
    writer: Writer
    fault: dict[str, Any]  # action, resources, about_to_inject_at, the fault's details
    steps: list[dict[str, Any]]  # procedure steps completed: name, at
    undo: list[UndoStep]


def me() -> Writer:
    proc = psutil.Process()
    return Writer(pid=proc.pid, create_time=proc.create_time(), host=socket.gethostname())


def write(run_dir: Path, record: InflightRecord) -> None:
    """Replace ``inflight.json`` atomically and durably: a reader (or a recovery after a
    power cut) sees the old record or the new one, never half of one."""
    record["updated_at"] = iso(utc_now())
    path = Path(run_dir) / INFLIGHT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(INFLIGHT_FILE + ".tmp")
    data = json.dumps(record, indent=2, default=str) + "\n"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def read(run_dir: Path) -> InflightRecord | None:
    """The run's ``inflight.json``, ``None`` when there is none.

    :raises UsageError: the file is there but unreadable (one line naming it).
    """
    path = Path(run_dir) / INFLIGHT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is unreadable: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict) or data.get("inflight_version") != VERSION:
        raise UsageError(f"{path} is not an inflight record of version {VERSION}")
    record: InflightRecord = data  # type: ignore[assignment]
    return record


def remove(run_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (Path(run_dir) / INFLIGHT_FILE).unlink()


def undo_add(run_dir: Path, record: InflightRecord, step: UndoStep) -> None:
    """Add (or replace, by id) an undo step and rewrite the file: call before the change."""
    record["undo"] = [s for s in record["undo"] if s["id"] != step["id"]] + [step]
    write(run_dir, record)


def undo_update(run_dir: Path, record: InflightRecord, step_id: str, **changes: Any) -> None:
    """Change a step already in the plan (its state, or what its data learned)."""
    for step in record["undo"]:
        if step["id"] == step_id:
            data = dict(step.get("data") or {})
            data.update(changes.pop("data", {}))
            if data:
                step["data"] = data
            step.update(changes)  # type: ignore[typeddict-item]
    write(run_dir, record)


def step_done(run_dir: Path, record: InflightRecord, name: str) -> None:
    record["steps"].append({"name": name, "at": iso(utc_now())})
    write(run_dir, record)


def writer_alive(record: InflightRecord) -> bool:
    """Whether the process that wrote ``record`` still runs (same pid, same start)."""
    w = record.get("writer") or {}
    if w.get("host") != socket.gethostname():
        return True  # another machine's drill: never taken for dead
    try:
        proc = psutil.Process(int(w["pid"]))
        return abs(proc.create_time() - float(w["create_time"])) <= _CREATE_TIME_TOLERANCE_S
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, TypeError, ValueError):
        return False


def is_interrupted(run_dir: Path) -> bool:
    d = Path(run_dir)
    return (d / INFLIGHT_FILE).is_file() and not (d / RESULT_FILE).exists()


def interrupted_runs(
    runs_dirs: Iterable[Path], target_name: str | None, extra: Iterable[Path] = ()
) -> list[tuple[Path, InflightRecord]]:
    """Interrupted runs (of ``target_name``, or any) directly under ``runs_dirs`` and among
    the run folders ``extra`` (the stale drill lock's), oldest first; a run whose writer still
    runs is a drill in progress, not an interruption."""
    folders: list[Path] = []
    for runs in runs_dirs:
        with contextlib.suppress(OSError):
            folders += [p for p in Path(runs).iterdir() if p.is_dir()]
    folders += [Path(p) for p in extra]
    found: dict[Path, InflightRecord] = {}
    for folder in folders:
        if not is_interrupted(folder):
            continue
        key = folder.resolve()
        if key in found:
            continue
        record = read(folder)
        if record is None or writer_alive(record):
            continue
        if target_name is not None and record["target"].get("name") != target_name:
            continue
        found[key] = record
    return sorted(found.items(), key=lambda kv: kv[1]["started_at"])


__all__ = [
    "DONE",
    "INFLIGHT_FILE",
    "InflightRecord",
    "NOTHING",
    "PENDING",
    "StepOutcome",
    "UndoStep",
    "interrupted_runs",
    "is_interrupted",
    "me",
    "read",
    "remove",
    "step_done",
    "undo_add",
    "undo_update",
    "write",
]

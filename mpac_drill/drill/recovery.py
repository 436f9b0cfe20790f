"""Finish what a dead harness left: interrupted runs found, their undo plans performed, their
``result.json`` written (status aborted, reason "harness died", what recovery did).

An interrupted run is a run folder with ``inflight.json`` (the write-ahead record of its
fault, :mod:`mpac_drill.drill.inflight`) and no ``result.json``, whose writer is gone. They
are looked for in the runs folder and in the run folder the target's stale drill lock
names (a drill killed with SIGKILL leaves its lock), so a drill run with another
``--runs-dir`` is found too.

``mpac-drill recover`` calls :func:`find` and :func:`recover_run`; every drill calls
:func:`refuse_if_interrupted` and :func:`refuse_foreign_load` before it injects anything.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mpac_drill.config import Catalog, Target, load_catalog, load_target, resolve_target_path
from mpac_drill.drill import inflight as wal
from mpac_drill.drill.context import DrillContext
from mpac_drill.drill.inflight import InflightRecord, StepOutcome
from mpac_drill.drill.platforms import platform_for
from mpac_drill.drill.result import build_result, validate, write_json
from mpac_drill.errors import HarnessError, UsageError
from mpac_drill.timefmt import iso, utc_now

REASON = "harness died"


@dataclass
class Recovered:
    """One interrupted run after :func:`recover_run`."""

    run_dir: Path
    record: InflightRecord
    outcomes: list[StepOutcome] = field(default_factory=list)
    result_written: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return all(o["ok"] for o in self.outcomes)


def lock_run_dir(lock_dir: Path, target_name: str) -> Path | None:
    """The run folder named by the target's drill lock, if a lock is there."""
    from mpac_drill.safety import DrillLock

    path = DrillLock(lock_dir, target_name, "recover", Path()).path
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        return Path(str(holder["run_dir"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find(
    target: Target, runs_dir: Path, lock_dir: Path, run: Path | None = None
) -> list[tuple[Path, InflightRecord]]:
    """The interrupted runs to recover: ``run`` alone (refused, one line, when it is not an
    interrupted run), else those of ``target`` under ``runs_dir`` and the lock's run folder.

    :raises UsageError: ``run`` is no folder, has a result, no inflight record, or its drill
        still runs.
    """
    if run is not None:
        run = Path(run)
        if not run.is_dir():
            raise UsageError(f"{run} is not a run folder")
        if (run / wal.RESULT_FILE).exists():
            raise UsageError(f"{run} has its result.json: it is not an interrupted run")
        record = wal.read(run)
        if record is None:
            raise UsageError(f"{run} has no inflight.json: no fault was injected there")
        if wal.writer_alive(record):
            raise UsageError(
                f"{run}: its drill still runs (pid {record['writer']['pid']}): not interrupted"
            )
        return [(run.resolve(), record)]
    extra = [p for p in [lock_run_dir(lock_dir, target.name)] if p is not None]
    return wal.interrupted_runs([runs_dir], target.name, extra)


def refuse_if_interrupted(target: Target, runs_dir: Path, lock_dir: Path) -> None:
    """Before any drill: refuse while the target has an interrupted run (its fault may still
    be in place, its DR procedure half done).

    :raises HarnessError: exit 3, one line telling to run ``mpac-drill recover``.
    """
    found = find(target, runs_dir, lock_dir)
    if found:
        run_dir, record = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise HarnessError(
            f"target {target.name!r} has an interrupted run{more}: {run_dir} "
            f"({record['scenario']}, {record['fault'].get('action')} at "
            f"{record['fault'].get('about_to_inject_at')}, harness gone); no fault is "
            f"injected until `mpac-drill recover --target {target_arg(target)} --runs-dir "
            f"{shlex.quote(str(run_dir.parent))}` has finished it"
        )


def target_arg(target: Target) -> str:
    """``--target`` as the operator can type it again: the name of a shipped target file,
    else the target file's path (a private target's name resolves to no file)."""
    try:
        if resolve_target_path(target.name).resolve() == Path(target.path).resolve():
            return target.name
    except UsageError:
        pass
    return shlex.quote(str(target.path))


def refuse_foreign_load(target: Target, urls: list[str]) -> None:
    """Before any drill: refuse while another mpac-drill load generator (locust) loads the
    same services; its figures would be measured under load nobody asked for.

    :raises HarnessError: exit 3, one line naming the pids and run folders.
    """
    from mpac_drill.load import foreign_load

    found = foreign_load(urls)
    if found:
        runs = sorted({p["run_dir"] for p in found})
        pids = ", ".join(str(p["pid"]) for p in found)
        raise HarnessError(
            f"target {target.name!r} is already under load by mpac-drill locust pid(s) "
            f"{pids} of run folder {', '.join(runs)}: no drill measures under foreign "
            "load (stop them, or run `mpac-drill recover` if their harness died)"
        )


def _context(record: InflightRecord, run_dir: Path, catalog: Catalog) -> DrillContext:
    t = record["target"]
    target = load_target(str(t.get("path") or t["name"]), dict(t.get("overrides") or {}))
    ctx = DrillContext(
        target=target,
        scenario=catalog.get(record["scenario"]),
        catalog=catalog,
        run_dir=run_dir,
        users=int(record.get("users") or 0),
        load_workers=0,
        quarter=record.get("quarter"),
    )
    ctx.started_utc = datetime.fromisoformat(record["started_at"].replace("Z", "+00:00"))
    fault = dict(record["fault"])
    fault["injected_at"] = fault.pop("about_to_inject_at", None)
    ctx.fault = fault
    return ctx


def plan_lines(record: InflightRecord) -> list[str]:
    """The run's undo plan, one line per step (``--dry-run``)."""
    return [
        f"{s['state']}: {s['what']} {', '.join(s['resources'])}"
        + (f" ({s['region']})" if s.get("region") else "")
        + f": {s['how']}"
        for s in record["undo"]
    ]


def recover_run(
    run_dir: Path, record: InflightRecord, *, catalog: Catalog | None = None
) -> Recovered:
    """Stop the run's leftover load, perform the pending undo steps through the platform,
    and write ``result.json`` (aborted, "harness died", ``recovery``), removing
    ``inflight.json``. When a step fails, no result is written: the steps that succeeded are
    marked done in ``inflight.json``, so running recover again retries only the rest."""
    from mpac_drill.load import stop_run_load

    started = time.monotonic()
    ctx = _context(record, run_dir, catalog or load_catalog())
    out = Recovered(run_dir=run_dir, record=record)
    stray = stop_run_load(run_dir, timeout_s=5)
    out.outcomes.append(
        StepOutcome(
            id="load",
            what="locust processes of the run",
            resource=str(run_dir),
            outcome=f"{len(stray)} stopped" if stray else "none left",
            ok=True,
        )
    )
    out.outcomes += platform_for(ctx).recover(list(record["undo"]))
    out.duration_s = round(time.monotonic() - started, 3)
    if not out.ok:
        done = {o["id"] for o in out.outcomes if o["ok"]}
        for step in record["undo"]:
            if step["id"] in done and step["state"] == wal.PENDING:
                step["state"] = wal.DONE
        wal.write(run_dir, record)
        return out
    _write_result(ctx, out)
    return out


def _write_result(ctx: DrillContext, out: Recovered) -> None:
    run_dir, record = out.run_dir, out.record
    ctx.abort_reason = REASON
    for o in out.outcomes:
        ctx.cleaned_up(o["what"], o["resource"], o["outcome"], note=False)
    _load_figures(ctx)
    if not (run_dir / "journal.json").exists():
        write_json(run_dir / "journal.json", {"status": "interrupted", "reason": REASON})
    result = build_result(ctx, {"status": "interrupted"})
    result["reason"] = REASON
    steps = record.get("steps") or []
    recovery: dict[str, Any] = {
        "by": "mpac-drill recover",
        "at": iso(utc_now()),
        "harness_died_after": steps[-1]["name"] if steps else "the fault's injection",
        "procedure_steps_done": [s["name"] for s in steps],
        "steps": [dict(o) for o in out.outcomes],
        "duration_s": out.duration_s,
    }
    result["recovery"] = recovery
    errors = validate(result)
    if errors:
        raise HarnessError(f"result.json would break the contract: {errors[0]}")
    write_json(run_dir / wal.RESULT_FILE, result)
    wal.remove(run_dir)
    out.result_written = True


def _load_figures(ctx: DrillContext) -> None:
    """What locust measured until the harness died (its per-second files survive it)."""
    from mpac_drill.load import LOCUST_DIR, summarize

    if (ctx.run_dir / LOCUST_DIR).is_dir():
        try:
            ctx.measurements["load"] = dict(summarize(ctx.run_dir))
        except (OSError, ValueError) as exc:
            ctx.note(f"load figures unreadable: {exc}")


__all__ = [
    "REASON",
    "Recovered",
    "find",
    "lock_run_dir",
    "plan_lines",
    "recover_run",
    "refuse_foreign_load",
    "refuse_if_interrupted",
]

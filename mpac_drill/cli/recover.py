"""``mpac-drill recover [RUN]``: finish the runs a dead harness left (issue 17)."""

from __future__ import annotations

from pathlib import Path

import click

from mpac_drill.cli import console, err_console, runs_dir_option, target_options
from mpac_drill.config import load_target
from mpac_drill.errors import ExitCode


@click.command("recover")
@click.argument("run", required=False, type=click.Path(file_okay=False))
@target_options
@runs_dir_option
@click.option("--dry-run", is_flag=True, help="Print each run's undo plan; make no call.")
def command(
    run: str | None, target: str, sets: tuple[str, ...], runs_dir: str, dry_run: bool
) -> int:
    """Finish the interrupted runs of a target: the harness died after injecting a fault.

    An interrupted run is a run folder with inflight.json (the write-ahead record of its
    fault and undo plan) and no result.json, whose harness is gone (kill -9, OOM killer,
    power cut). For each one (RUN alone when given, else the target's runs under
    --runs-dir and the one its stale drill lock names): stop its leftover load, perform the
    pending undo steps (sandbox: DR sandbox and restored instances stopped, the sandbox up
    and healthy; AWS: the Route53 record and SSM parameters put back, restored instances
    deleted, canary rows purged), write result.json (aborted, reason "harness died", what
    recovery did) and print one line. Every drill on the target refuses to inject until
    this is done. Exit 0 when every run was recovered, 3 when a step failed (the run stays
    interrupted; run recover again once the cause is fixed).

    \b
    Examples:
      mpac-drill recover
      mpac-drill recover --target staging --runs-dir /data/drills --dry-run
      mpac-drill recover runs/20261127T143501Z-region-failover-staging
    """
    from mpac_drill.drill import recovery
    from mpac_drill.drill.runner import LOCK_DIR
    from mpac_drill.safety import DrillLock

    t = load_target(target, sets)
    found = recovery.find(t, Path(runs_dir), LOCK_DIR, Path(run) if run else None)
    if not found:
        console.print(
            f"no interrupted run of target {t.name} in {runs_dir} (nor in its drill lock)",
            markup=False,
        )
        return ExitCode.OK
    code = ExitCode.OK
    for run_dir, record in found:
        head = f"{run_dir.name}: {record['scenario']} on {record['target']['name']}"
        if dry_run:
            console.print(f"{head}: would recover (no call made):", markup=False)
            console.print("  stop the run's leftover locust processes, if any", markup=False)
            for line in recovery.plan_lines(record):
                console.print(f"  {line}", markup=False)
            continue
        lock = DrillLock(LOCK_DIR, str(record["target"]["name"]), "recover", run_dir)
        lock.acquire()  # no drill starts on the target meanwhile; a stale lock is taken over
        try:
            out = recovery.recover_run(run_dir, record)
        finally:
            lock.release()
        if out.result_written:
            done = "; ".join(
                f"{o['what']}: {o['outcome']}" for o in out.outcomes if o["id"] != "load"
            )
            console.print(
                f"{head}: recovered in {out.duration_s:.1f} s, result.json aborted "
                f"({recovery.REASON}): {done}",
                markup=False,
            )
        else:
            failed = "; ".join(
                f"{o['what']} {o['resource']}: {o['outcome']}" for o in out.outcomes if not o["ok"]
            )
            err_console.print(
                f"{head}: NOT recovered ({failed}); it stays interrupted: fix the cause, then "
                "run mpac-drill recover again",
                markup=False,
            )
            code = ExitCode.HARNESS
    return code

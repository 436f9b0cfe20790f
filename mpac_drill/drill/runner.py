"""Run one drill: the scenario's Chaos Toolkit experiment, its run folder, its result.

``run_drill`` is what ``mpac-drill run`` (and ``demo``, ``gate``, ``quarter``) call. It
creates the run folder, starts the sandbox when needed, runs the experiment through
chaoslib with rollbacks always played (also on failure and interruption), and writes
``journal.json`` and ``result.json``.
"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpac_drill import EXPERIMENTS_DIR, PROJECT_ROOT
from mpac_drill.config import Catalog, Target, load_catalog
from mpac_drill.drill import context as drill_context
from mpac_drill.drill import inflight
from mpac_drill.drill.context import DrillContext, new_run_dir
from mpac_drill.drill.control import release_after_rollbacks
from mpac_drill.drill.platforms import platform_module
from mpac_drill.drill.result import (
    build_result,
    exit_code_for,
    run_error,
    validate,
    write_json,
)
from mpac_drill.errors import ExitCode, HarnessError, Terminated, UsageError

Listener = Callable[[DrillContext], None]
LOCK_DIR = PROJECT_ROOT / ".locks"  # git-ignored
#: The signals that end a drill early (rollbacks, cleanup and result.json still run).
_SIGNAL_CODES = {
    signal.SIGINT: ExitCode.INTERRUPTED,
    signal.SIGTERM: ExitCode.TERMINATED,
    signal.SIGHUP: ExitCode.HANGUP,
}


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    result: dict[str, Any]
    exit_code: ExitCode


def _experiment(catalog: Catalog, scenario_id: str) -> tuple[Any, Path]:
    from chaoslib.loader import load_experiment

    sc = catalog.get(scenario_id)
    if not sc.experiment:
        raise UsageError(
            f"scenario {scenario_id} (runbook §{sc.runbook_section}) has no "
            "drill yet: see `mpac-drill scenarios`"
        )
    path = EXPERIMENTS_DIR / sc.experiment
    try:
        return load_experiment(str(path)), path
    except Exception as exc:  # noqa: BLE001 - chaoslib raises several kinds
        raise UsageError(f"experiment {path} cannot be loaded: {exc}") from None


def _redact(journal: dict[str, Any]) -> dict[str, Any]:
    """The journal as JSON-able data, with no secrets (they never enter it, but make sure)."""
    from chaoslib import PayloadEncoder

    data = json.loads(json.dumps(journal, cls=PayloadEncoder))
    data.pop("secrets", None)
    return data


#: What the region drills on AWS need that the runbook does not name.
_ROUTE53 = ("route53.hosted_zone_id", "route53.record", "route53.dr_dns_name")
_REGION_KEYS = {
    "region-failover": _ROUTE53,
    "pgw-region-failover": (*_ROUTE53, "pgw.dr_base_url", "ssm.pgw_database_url"),
}
#: The health URLs locust loads (``--users`` > 0) on an AWS target.
_LOAD_KEYS = ("endpoints.svc-portal", "endpoints.svc-smarttab", "endpoints.pgw")


def check_target_for(
    scenario_id: str, target: Target, *, dry_run: bool = False, users: int | None = None
) -> None:
    """Refuse, before anything runs, a drill whose target leaves a name it needs unset.

    On AWS, obs-failure needs the target's ``obs`` section, region-failover the DR load
    balancer the Route53 record moves to (``route53.dr_dns_name``), pgw-region-failover that,
    the DR PGW endpoint (``pgw.dr_base_url``) and the DR PGW's database parameter
    (``ssm.pgw_database_url``, finding F13): the runbook names none of them (nor staging's
    hosted zone and record). Every AWS drill needs each health URL it lists in ``endpoints``
    set (the observer samples them) and, with load (``users`` > 0, by default the target's
    ``load.users``), the three locust loads. Refused
    here, a region drill never restores a snapshot it cannot finish switching to. A dry run
    is never refused: its plan shows the unset names.

    :raises UsageError: one line naming the unset keys.
    """
    from mpac_drill.load import check_rate_settings

    check_rate_settings(target)  # a bad load.rps / load.mix: exit 2, in a dry run too
    if dry_run:
        return
    if scenario_id == "obs-failure":
        from mpac_drill.drill.platforms import platform_module

        platform_module(target, "obs").check_target(target)
    if target.kind == "sandbox":
        return
    if scenario_id in _REGION_KEYS:
        missing = [key for key in _REGION_KEYS[scenario_id] if not target.get(key)]
        if missing:
            raise UsageError(
                f"target {target.name!r} ({target.path}) does not set "
                f"{', '.join(missing)}, which {scenario_id} on AWS needs (the "
                "runbook names none of them): fill them in"
            )
    endpoints = target.get("endpoints") or {}
    listed = [f"endpoints.{k}" for k in endpoints] if isinstance(endpoints, dict) else []
    users = int(target.get("load.users", 0) or 0) if users is None else users
    needed = list(dict.fromkeys([*listed, *(_LOAD_KEYS if users > 0 else ())]))
    missing = [key for key in needed if not target.get(key)]
    if missing:
        why = "the observer samples them" + (" and locust loads them" if users > 0 else "")
        raise UsageError(
            f"target {target.name!r} ({target.path}) does not set "
            f"{', '.join(missing)}, which {scenario_id} on AWS needs ({why}): "
            "fill in the target's own health URLs"
        )


def run_drill(
    scenario_id: str,
    target: Target,
    *,
    runs_dir: Path,
    users: int | None = None,
    load_workers: int | None = None,
    dry_run: bool = False,
    listeners: list[Listener] | None = None,
    progress: Callable[[str], None] = lambda m: None,
    catalog: Catalog | None = None,
    allow_production: bool = False,
    ticket: str | None = None,
    quarter: str | None = None,
    experiment_edit: Callable[[Any], Any] | None = None,
) -> RunOutcome:
    """Run one scenario on one target and write its run folder.

    Refused for production without ``allow_production`` and a ``ticket``, for an AWS
    account other than the target's, and while another drill holds the target's lock.
    ``quarter`` (``YYYY-QN``): the quarter the drill is run for (``mpac-drill quarter``),
    recorded in result.json; by default the calendar quarter of its start.
    ``experiment_edit``: changes the loaded experiment before it is validated (``mpac-drill
    gameday`` puts its plan walk in place of the automated failover).
    """
    from chaoslib.experiment import ensure_experiment_is_valid, run_experiment

    from mpac_drill.safety import DrillLock, check_production_guard

    check_target_for(scenario_id, target, dry_run=dry_run, users=users)
    check_production_guard(
        target, allow_production=allow_production, ticket=ticket, dry_run=dry_run
    )

    catalog = catalog or load_catalog()
    scenario = catalog.get(scenario_id)
    experiment, path = _experiment(catalog, scenario_id)
    if experiment_edit is not None:  # the game day walks its plan in place of a step
        experiment = experiment_edit(experiment)
    try:
        ensure_experiment_is_valid(experiment)
    except Exception as exc:  # noqa: BLE001 - InvalidActivity, InvalidExperiment, ...
        raise UsageError(f"experiment {path.name} is invalid: {exc}") from None
    recorder = dry_run_recorder(target) if dry_run else None
    # Read-only, before any lock, load or fault: every resource the drill needs is there.
    checks = platform_module(target, "preflight").preflight(target, scenario.id, dry_run=recorder)
    if checks:
        progress(
            f"preflight: {len(checks)} read-only check(s) passed"
            if not dry_run
            else f"preflight: {len(checks)} read-only check(s) planned"
        )
    if not dry_run:  # a dead harness's fault first: `mpac-drill recover` (issue 17)
        from mpac_drill.drill.recovery import refuse_if_interrupted

        refuse_if_interrupted(target, Path(runs_dir), LOCK_DIR)
    run_dir = new_run_dir(Path(runs_dir).resolve(), scenario.id, target.name)
    # One drill per target at a time, whatever --runs-dir each uses: taken before the
    # sandbox is touched, so a refused drill changes nothing (not even recovery delays).
    lock = DrillLock(LOCK_DIR, target.name, scenario.id, run_dir)
    lock.acquire()
    try:
        if not dry_run:  # before anything is changed (the sandbox's delays included)
            from mpac_drill.drill.recovery import refuse_foreign_load

            refuse_foreign_load(target, _load_urls(target))
        if target.kind == "sandbox" and not dry_run:
            from mpac_drill.sandbox import control

            control.up(target, progress)  # starts it, or checks it and sets the delays
        run_dir.mkdir(parents=True, exist_ok=False)
        return _run_locked(
            scenario_id,
            target,
            run_dir,
            experiment,
            catalog,
            users,
            load_workers,
            dry_run,
            listeners,
            run_experiment,
            quarter,
            recorder,
            checks,
        )
    finally:
        lock.release()


def _load_urls(target: Target) -> list[str]:
    """The service URLs a drill's load would hit (the foreign-load check compares them)."""
    if target.kind == "sandbox":
        from mpac_drill.errors import SandboxError
        from mpac_drill.sandbox import control

        try:
            services = control.view(target).endpoints["services"]
        except SandboxError:  # not running: nothing can be loading it
            return []
        return [str(u) for u in services.values()]
    endpoints = target.get("endpoints") or {}
    return [str(u) for u in endpoints.values() if u] if isinstance(endpoints, dict) else []


def dry_run_recorder(target: Target) -> Any:
    """The recorder of a dry run, with canned answers so the plan shows the destructive
    calls too, with placeholders where only a live account would know the value."""
    from mpac_drill.aws import DryRun

    group = str(target.get("elasticache.replication_group", ""))
    node_group = str(target.get("elasticache.node_group", "0001"))
    return DryRun(
        responses={
            "ecs.ListTasks": {"taskArns": ["<each-running-task-of-the-service>"]},
            "elasticache.DescribeReplicationGroups": {
                "ReplicationGroups": [
                    {"ReplicationGroupId": group, "NodeGroups": [{"NodeGroupId": node_group}]}
                ]
            },
        }
    )


def _run_locked(
    scenario_id: str,
    target: Target,
    run_dir: Path,
    experiment: Any,
    catalog: Catalog,
    users: int | None,
    load_workers: int | None,
    dry_run: bool,
    listeners: list[Listener] | None,
    run_experiment: Any,
    quarter: str | None = None,
    recorder: Any = None,
    preflight_checks: list[Any] | None = None,
) -> RunOutcome:
    scenario = catalog.get(scenario_id)
    ctx = DrillContext(
        target=target,
        scenario=scenario,
        catalog=catalog,
        run_dir=run_dir,
        users=int(users if users is not None else target.get("load.users", 0)),
        load_workers=int(
            load_workers if load_workers is not None else target.get("load.workers", 0)
        ),
        dry_run=dry_run,
        listeners=list(listeners or []),
        quarter=quarter,
    )
    ctx.dry_run_recorder = recorder
    ctx.record.preflight = list(preflight_checks)
    drill_context.register(ctx)
    config_vars = {
        "mpac_target": str(target.path),
        "mpac_set": dict(target.overrides),
        "mpac_run_dir": str(run_dir),
        "mpac_scenario": scenario.id,
    }
    settings = {"runtime": {"rollbacks": {"strategy": "always"}}}
    signal_code: int | None = None

    def on_signal(signum: int, frame: Any) -> None:
        # The first signal interrupts the method; later ones are noted and ignored so the
        # rollbacks, the cleanup and result.json always finish.
        nonlocal signal_code
        if signal_code is not None:
            return
        ctx.signalled = True
        if signum == signal.SIGINT:
            signal_code = ExitCode.INTERRUPTED
            raise KeyboardInterrupt
        signal_code = _SIGNAL_CODES.get(signum, ExitCode.TERMINATED)
        raise Terminated(signum)

    def defer(signum: int, frame: Any) -> None:
        nonlocal signal_code
        if signal_code is None:
            signal_code = _SIGNAL_CODES.get(signum, ExitCode.TERMINATED)

    # SIGHUP too: a dropped SSH session to the bastion must not skip the rollbacks
    previous = {sig: signal.signal(sig, on_signal) for sig in _SIGNAL_CODES}
    journal: dict[str, Any] = {}
    ctk_log = logging.getLogger("chaostoolkit")  # chaoslib's own lines go to the run folder
    handler = logging.FileHandler(run_dir / "chaostoolkit.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    ctk_log.addHandler(handler)
    ctk_log.setLevel(logging.INFO)
    ctk_log.propagate = False
    try:
        journal = run_experiment(experiment, settings=settings, experiment_vars=(config_vars, {}))
    except (Terminated, KeyboardInterrupt):
        # a signal outside chaoslib's own handling: play the rollbacks ourselves
        signal_code = signal_code or ExitCode.INTERRUPTED
        for sig in previous:
            signal.signal(sig, defer)
        # chaoslib's control cleanup forgot the drill: its rollbacks need it again
        drill_context.register(ctx, config_vars)
        journal = {
            "status": "interrupted",
            "rollbacks": _rollback_after_escape(ctx, experiment, config_vars),
        }
    finally:
        for sig in previous:
            signal.signal(sig, defer)
        cleanup_drill(ctx)
        release_after_rollbacks(ctx)  # a signalled drill's lock, held through its rollbacks
        ctk_log.removeHandler(handler)
        handler.close()
    try:
        if (
            journal.get("status") == "interrupted"
            and signal_code is None
            and (not ctx.abort_reason)
        ):
            signal_code = ExitCode.TERMINATED  # chaoslib turned a SIGTERM into an interruption
        write_json(
            run_dir / "journal.json", _redact(journal) if journal else {"status": "interrupted"}
        )
        if ctx.fault:
            write_json(run_dir / "fault.json", ctx.fault)
        result = build_result(ctx, journal, signal_code=signal_code)
        errors = validate(result)
        if errors:
            raise HarnessError(f"result.json would break the contract: {errors[0]}")
        write_json(run_dir / "result.json", result)
        inflight.remove(run_dir)  # result.json replaces the write-ahead record
    finally:
        drill_context.forget(ctx)
        for sig, old in previous.items():
            signal.signal(sig, old)
    return RunOutcome(run_dir=run_dir, result=result, exit_code=exit_code_for(result, signal_code))


def _rollback_after_escape(
    ctx: DrillContext, experiment: Any, config_vars: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run the experiment's rollbacks when an interruption escaped chaoslib; their runs,
    for the journal (chaoslib's own shape: activity, status, exception)."""
    from chaoslib.activity import execute_activity

    runs: list[dict[str, Any]] = []
    for activity in experiment.get("rollbacks", []):
        try:
            run = execute_activity(
                experiment, activity, configuration=config_vars, secrets={}, dry=None
            )
        except Exception as exc:  # noqa: BLE001 - every rollback gets its turn
            run = {"activity": activity, "status": "failed", "exception": [f"{exc}"]}
        if run is not None:
            runs.append(run)
            if run.get("status") != "succeeded":
                ctx.note(f"rollback {activity.get('name')}: {run_error(run)}")
    return runs


def cleanup_drill(ctx: DrillContext) -> None:
    """Belt and braces after the rollbacks: nothing the drill started may outlive it."""
    from mpac_drill.measure.load import stop_drill_load

    steps: list[tuple[str, Callable[[], object]]] = [
        ("stop_observers", ctx.stop_observer),
        ("stop_load", lambda: stop_drill_load(ctx)),
    ]
    for name, step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - keep cleaning up
            ctx.note(f"cleanup {name}: {exc}")
    if ctx.impact is not None:
        ctx.impact.stop()
    if ctx.handles.payments is not None:  # the PGW region drill's payment client
        ctx.handles.payments.stop()
    if ctx.front_door is not None:  # the region drill's front door, if fail_back did not run
        ctx.front_door.stop()
        ctx.front_door = None

"""The state one drill shares between its Chaos Toolkit activities.

Chaos Toolkit calls each activity as a plain function with the experiment's
``configuration``; every activity of one run finds the same :class:`DrillContext` through
:func:`current`. The context holds the target, the run folder, the fault's injection time
(monotonic and UTC), the observer, the canary, the load generator and the measurements.
Secrets stay in memory here: they are never part of ``configuration`` (which the journal
records) nor of any file in the run folder.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed, InterruptExecution
from chaoslib.types import Configuration

from mpac_drill import PROJECT_ROOT
from mpac_drill.config import Catalog, Scenario, Target, load_catalog, load_target
from mpac_drill.drill import inflight as wal
from mpac_drill.drill.inflight import InflightRecord, UndoStep
from mpac_drill.drill.platforms import platform_for
from mpac_drill.measure.record import CleanupEntry, DrillHandles, DrillRecord
from mpac_drill.timefmt import iso, utc_now

_REGISTRY: dict[str, DrillContext] = {}
_LOCK = threading.Lock()


def new_run_dir(runs_dir: Path, scenario: str, target: str) -> Path:
    stamp = utc_now().strftime("%Y%m%dT%H%M%S%fZ")
    return runs_dir / f"{stamp}-{scenario}-{target}"


@dataclass
class DrillContext:
    target: Target
    scenario: Scenario
    catalog: Catalog
    run_dir: Path
    users: int
    load_workers: int
    dry_run: bool = False
    quarter: str | None = None  # the quarter the drill runs for (`quarter`); else its date's
    started_utc: datetime = field(default_factory=utc_now)
    started_mono: float = field(default_factory=time.monotonic)
    injected_mono: float | None = None
    injected_utc: datetime | None = None
    fault: dict[str, Any] = field(default_factory=dict)
    measurements: dict[str, Any] = field(default_factory=dict)
    record: DrillRecord = field(default_factory=DrillRecord)  # result.json's sections, typed
    handles: DrillHandles = field(default_factory=DrillHandles)  # in memory only
    notes: list[str] = field(default_factory=list)
    current_phase: str = "starting"
    abort_reason: str | None = None
    # a signal ended the method outside chaoslib's handling: the runner plays the rollbacks
    # after chaoslib's own cleanup, so that cleanup must leave the write-ahead record
    signalled: bool = False
    observer: Any = None
    canary: Any = None
    load: Any = None
    impact: Any = None
    dry_run_recorder: Any = None
    platform: Any = None  # mpac_drill.platform.platform_for(self): decided once
    front_door: Any = None  # the region drill's "Route53" (sandbox/route53.py): users' address
    rpo_dsn: str | None = None  # where the canary reads back (the region drill: the DR database)
    fault_refused: str | None = None  # why no fault may be injected: a measurement did not start
    listeners: list[Callable[[DrillContext], None]] = field(default_factory=list)
    _sandbox: Any = None
    _observer_stopped: bool = False
    _alarms_checked: float = -1e9
    _effect_check: threading.Thread | None = None
    #: the write-ahead record (``inflight.json``) from the injection on; ``None`` before it
    inflight: InflightRecord | None = None

    # ------------------------------------------------------------ settings

    def setting(self, dotted: str) -> Any:
        return self.target.require(dotted)

    def recovery_bound_s(self) -> float:
        """Give up waiting for recovery after this long: the target's bound, and never more
        than twice the scenario's RTO target."""
        bound = float(self.setting("drill.recovery_bound_s"))
        if self.scenario.rto_s:
            bound = min(bound, 2 * self.scenario.rto_s)
        return bound

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    def sandbox(self) -> Any:
        """The running sandbox (state, endpoints, secrets), read once per run."""
        if self._sandbox is None:
            from mpac_drill.sandbox import control

            self._sandbox = control.view(self.target)
        return self._sandbox

    # ------------------------------------------------------------ progress

    def phase(self, name: str) -> None:
        self.current_phase = name
        for fn in self.listeners:
            fn(self)

    def note(self, msg: str) -> None:
        self.notes.append(msg)

    def cleaned_up(
        self,
        what: str,
        resource: str,
        outcome: str,
        *,
        note: bool = True,
        region: str | None = None,
    ) -> None:
        """Record one clean-up (result.json ``cleanup``, and a note): what the drill created
        or changed, and what became of it, so a reader sees nothing was left behind."""
        entry: CleanupEntry = {"what": what, "resource": resource, "outcome": outcome}
        if region is not None:
            entry["region"] = region
        self.record.cleanup.append(entry)
        if note:
            self.note(f"clean-up: {what} {resource}: {outcome}")

    def plan(self, action: str, **detail: Any) -> dict[str, Any]:
        """In a dry run: note a step that is no API call (a Grafana GET, a name to fill in)."""
        step = {"action": action, **detail}
        self.record.planned_steps.append(step)
        return {"dry_run": True, **step}

    def failed(self, msg: str) -> ActivityFailed:
        return ActivityFailed(f"{self.scenario.id} on {self.target.name}: {msg}")

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started_mono

    # ------------------------------------------------------------ the fault

    def mark_injected(self, action: str, resources: list[str], **detail: Any) -> None:
        """Record the injection instant; call immediately before the destructive call.

        Refuses (``ActivityFailed``, before anything is recorded) when a measurement the drill
        needs could not start (``fault_refused``): a drill injects no fault it cannot measure.
        """
        if self.fault_refused:
            self.phase(f"fault refused: {self.fault_refused}")
            raise self.failed(f"fault not injected: {self.fault_refused}")
        if not self.dry_run:  # write-ahead: on disk before the destructive call
            self._write_inflight(action, resources, detail)
        self.injected_mono = time.monotonic()
        self.injected_utc = utc_now()
        self.fault = {
            "action": action,
            "resources": resources,
            "injected_at": iso(self.injected_utc),
            **detail,
        }
        self.phase(
            "fault planned (dry run: nothing injected)" if self.dry_run else "fault injected"
        )

    def _write_inflight(self, action: str, resources: list[str], detail: dict[str, Any]) -> None:
        """``inflight.json``: the fault about to be injected and its undo plan (the
        platform's), written before the injection instant is stamped (its fsync is not
        counted in the RTO)."""
        record = InflightRecord(
            inflight_version=wal.VERSION,
            run_id=self.run_id,
            scenario=self.scenario.id,
            target={
                "name": self.target.name,
                "path": str(self.target.path),
                "kind": self.target.kind,
                "overrides": dict(self.target.overrides),
            },
            started_at=iso(self.started_utc),
            quarter=self.quarter,
            users=self.users,
            updated_at="",
            writer=wal.me(),
            fault={
                "action": action,
                "resources": list(resources),
                "about_to_inject_at": iso(utc_now()),
                **detail,
            },
            steps=[],
            undo=platform_for(self).undo_plan(action),
        )
        wal.write(self.run_dir, record)
        self.inflight = record

    def undo_add(self, step: UndoStep) -> None:
        """Write-ahead: add ``step`` to the undo plan on disk before making the change it
        undoes (no-op before the injection and in a dry run)."""
        if self.inflight is not None:
            wal.undo_add(self.run_dir, self.inflight, step)

    def undo_update(self, step_id: str, **changes: Any) -> None:
        """Update an undo step: ``state="done"`` once the drill undid it itself, or what
        its ``data`` learned (the version a parameter write created)."""
        if self.inflight is not None:
            wal.undo_update(self.run_dir, self.inflight, step_id, **changes)

    def procedure_step(self, name: str) -> None:
        """Record in ``inflight.json`` that a step of the procedure completed."""
        if self.inflight is not None:
            wal.step_done(self.run_dir, self.inflight, name)

    def fault_took_effect(self, verified: bool, **evidence: Any) -> None:
        """Record whether the platform saw the fault take effect, with its evidence (which
        tasks reached STOPPED, which primary replaced which, ...). A fault that did not take
        effect is judged by nothing (result.json: status failed, no verdicts)."""
        if self.fault:
            self.fault["effect"] = {"verified": verified, **evidence}

    def confirm_effect_in_background(self, confirm: Callable[[], None]) -> None:
        """Run the platform's confirmation of the fault (``confirm`` calls
        :meth:`fault_took_effect`) on a thread of its own: it polls the platform for up to a
        minute, and the drill's probes (recovery, stop conditions) must not wait for it.
        :meth:`await_effect` joins it before anything is judged."""

        def run() -> None:
            try:
                confirm()
            except Exception as exc:  # unread evidence: the effect stays unconfirmed
                self.note(f"the fault's effect could not be confirmed: {exc}")

        self._effect_check = threading.Thread(target=run, name="fault-effect", daemon=True)
        self._effect_check.start()

    def await_effect(self, timeout_s: float = 90.0) -> None:
        """Wait (bounded) for a background confirmation of the fault's effect to finish."""
        check = self._effect_check
        if check is not None:
            check.join(timeout_s)
            if check.is_alive():
                self.note(f"the fault's effect was still being confirmed after {timeout_s:g} s")

    @property
    def fault_state(self) -> str:
        """``none`` (nothing injected), ``unverified`` (injected, effect not yet confirmed),
        ``no effect`` (confirmed absent) or ``effective``."""
        if not self.fault:
            return "none"
        effect = self.fault.get("effect")
        if effect is None:
            return "unverified"
        return "effective" if effect.get("verified") else "no effect"

    # ------------------------------------------------------------ observers

    def endpoints(self) -> dict[str, str]:
        """Service name → the health URL the observer samples (the platform's answer)."""
        return platform_for(self).health_endpoints()

    def start_observer(self) -> None:
        from mpac_drill.measure.observer import Observer

        if self.observer is not None:
            return
        self.observer = Observer(
            endpoints=self.endpoints(),
            interval_s=float(self.setting("drill.observer_interval_s")),
            timeout_s=1.0,
            max_duration_s=self.recovery_bound_s() + 600,
        )
        self.observer.start()

    def start_canary(self) -> None:
        """Start the RPO canary on the platform's database (idempotent; see
        ``Platform.start_canary``: on AWS through the DSN of ``database.dsn_ssm_parameter``,
        refused faults when it cannot write)."""
        if self.canary is None:
            self.canary = platform_for(self).start_canary()

    def stop_observer(self) -> dict[str, Any]:
        """Stop observer and canary, write ``timeline.csv`` and ``canary.csv`` (once)."""
        if self._observer_stopped:
            return {"stopped": False}
        self._observer_stopped = True
        out: dict[str, Any] = {"stopped": True}
        if self.observer is not None:
            self.observer.stop()
            self.observer.write_csv(self.run_dir / "timeline.csv", self.injected_mono)
            out["timeline"] = "timeline.csv"
        if self.canary is not None:
            self.canary.stop()
            self.canary.write_csv(self.run_dir / "canary.csv", self.injected_mono)
            out["canary"] = "canary.csv"
            platform_for(self).end_canary(self.canary)  # a real database keeps nothing
        return out

    # ------------------------------------------------------------ stop conditions

    def check_stop_conditions(self) -> None:
        """Abort the drill (rollbacks then run) when a stop condition of the target holds:
        the load's failure share above ``stop.max_failure_rate`` for longer than
        ``stop.max_failure_rate_for_s``, or (AWS) a ``stop.cloudwatch_alarms`` alarm in
        ALARM. The recovery bound is checked by ``measure_rto``."""
        if self.dry_run:
            return
        bound = float(self.target.get("stop.max_failure_rate", 1.0))
        window = float(self.target.get("stop.max_failure_rate_for_s", 60))
        if self.load is not None and bound < 1.0:
            failing = self.load.failing_for_s(bound)
            if failing > window:
                self.abort(
                    f"stop condition: load failure share above {bound:.0%} for "
                    f"{failing} s (allowed {window:g} s)"
                )
        alarms = self.target.get("stop.cloudwatch_alarms") or []
        if alarms:
            now = time.monotonic()
            if now - self._alarms_checked >= 10:
                self._alarms_checked = now
                firing = platform_for(self).alarms_firing(list(alarms))
                if firing:
                    self.abort(f"stop condition: CloudWatch alarm {', '.join(firing)} in ALARM")

    def abort(self, reason: str) -> None:
        """End the drill now: chaoslib records an interruption and plays the rollbacks.

        chaoslib wraps an activity's exceptions into ``ActivityFailed`` and carries on with
        the method, so the way out is its own: SIGUSR1 (``exit_gracefully``), which raises
        ``SystemExit`` here and stops the method before any further fault.
        """
        from chaoslib.exit import exit_gracefully

        self.abort_reason = reason
        self.note(reason)
        self.phase(f"aborting: {reason}")
        exit_gracefully()
        raise InterruptExecution(reason)  # only reached outside chaoslib's signal handling

    # ------------------------------------------------------------ provenance

    def harness_info(self) -> dict[str, Any]:
        import platform
        import subprocess

        from mpac_drill import __version__

        try:
            commit = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = ""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        return {
            "version": __version__,
            "git_commit": commit or None,
            "user": user,
            "host": socket.gethostname(),
            "python": platform.python_version(),
        }


def _key(configuration: Configuration) -> str:
    return str(Path(str(configuration.get("mpac_run_dir") or "auto")).resolve())


def current(configuration: Configuration | None) -> DrillContext:
    """The drill that ``configuration`` belongs to.

    Created before the experiment starts, by ``mpac-drill run`` or, for a plain
    ``chaos run``, by the experiment's ``mpac-drill`` control (``drill/control.py``), after
    the production guard, the account check and the drill lock. Never created here.

    :raises ActivityFailed: no drill runs for this configuration.
    """
    key = _key(configuration or {})
    with _LOCK:
        ctx = _REGISTRY.get(key)
    if ctx is None:
        raise ActivityFailed(
            "no mpac-drill drill runs for this experiment: run it with `mpac-drill run`, or "
            "with `chaos run` on an experiment that declares the mpac-drill control "
            "(module mpac_drill.drill.control) and passed its guards"
        )
    return ctx


def lookup(configuration: Configuration | None) -> DrillContext | None:
    """The drill registered for ``configuration``, or ``None``."""
    with _LOCK:
        return _REGISTRY.get(_key(configuration or {}))


def register(ctx: DrillContext, *aliases: Configuration) -> None:
    """Make ``ctx`` the drill of its run folder (and of each configuration in ``aliases``)."""
    with _LOCK:
        _REGISTRY[_key({"mpac_run_dir": str(ctx.run_dir)})] = ctx
        for configuration in aliases:
            _REGISTRY[_key(configuration)] = ctx


def forget(ctx: DrillContext) -> None:
    with _LOCK:
        for k in [k for k, v in _REGISTRY.items() if v is ctx]:
            del _REGISTRY[k]


def context_from_configuration(configuration: Configuration) -> DrillContext:
    """For plain ``chaos run``: a drill from the experiment's configuration (no guard run
    here: the control runs them before registering it)."""
    target = load_target(
        str(configuration.get("mpac_target") or "sandbox"), configuration.get("mpac_set") or {}
    )
    catalog = load_catalog()
    scenario = catalog.get(str(configuration.get("mpac_scenario")))
    run_dir_cfg = configuration.get("mpac_run_dir")
    run_dir = (
        Path(str(run_dir_cfg))
        if run_dir_cfg
        else new_run_dir(Path("runs"), scenario.id, target.name)
    )
    return DrillContext(
        target=target,
        scenario=scenario,
        catalog=catalog,
        run_dir=run_dir,
        users=int(configuration.get("mpac_users") or target.get("load.users", 0)),
        load_workers=int(configuration.get("mpac_load_workers") or target.get("load.workers", 0)),
    )

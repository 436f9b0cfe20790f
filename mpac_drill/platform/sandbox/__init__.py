"""The sandbox platform: :class:`~mpac_drill.platform.Platform` on the local miniature MPAC.

One module per system the actions name, each driving the sandbox component that plays it:
``ecs.py`` (task processes under the daemon's supervisor), ``rds.py`` (PostgreSQL primary,
standby and failover controller; point-in-time restore from the bucket), ``elasticache.py``
(Redis + Sentinels), ``region.py`` (the whole sandbox lost, a DR sandbox restored, the front
door switched), ``obs.py`` (mpac-obs). In a dry run nothing is touched: each fault and wait
is recorded into the drill's recorder as a call of service ``sandbox``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from mpac_drill.aws import DryRun, DryRunCall
from mpac_drill.drill.inflight import StepOutcome, UndoStep
from mpac_drill.measure.observer import all_answer
from mpac_drill.platform import (
    CacheFailoverRecord,
    DatabaseFailoverRecord,
    PrimaryRecord,
    RecoveryEvent,
    ServiceWaitRecord,
    StopTasksRecord,
    step_events,
    tasks_to_stop,
)
from mpac_drill.platform.sandbox import (
    detection,
    ecs,
    elasticache,
    load,
    obs,
    rds,
    recover,
    recovery,
    region,
)

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext
    from mpac_drill.measure.canary import Canary
    from mpac_drill.measure.detection import DetectionReading

#: The rollbacks wait at most this long for the sandbox to be whole again.
_SANDBOX_WAIT_S = 120.0
#: The steady-state check waits at most this long for every component to be healthy.
_STEADY_WAIT_S = 30.0


class SandboxPlatform:
    """The drill's platform when its target is the sandbox."""

    kind = "sandbox"
    shared_database = False  # the sandbox's databases are the drill's own

    def __init__(self, drill: DrillContext) -> None:
        self.drill = drill
        self.dry: DryRun | None = None
        if drill.dry_run:
            self.dry = drill.dry_run_recorder or DryRun()
            drill.dry_run_recorder = self.dry

    # ------------------------------------------------------------ plumbing

    def _plan(self, operation: str, **params: Any) -> None:
        assert self.dry is not None
        self.dry.calls.append(
            DryRunCall(service="sandbox", operation=operation, region="local", params=params)
        )

    # ------------------------------------------------------------ what users reach

    def health_endpoints(self) -> dict[str, str]:
        return load.health_endpoints(self.drill)

    def service_urls(self) -> dict[str, str]:
        return load.service_urls(self.drill)

    def steady(self, timeout_s: float) -> bool:
        if self.dry is not None:
            return True
        from mpac_drill.sandbox import control

        try:
            control.wait_healthy(self.drill.target, timeout_s=_STEADY_WAIT_S)
        except Exception:  # noqa: BLE001 - a steady-state answer, not an error
            return False
        return all_answer(self.health_endpoints(), timeout_s)

    # ------------------------------------------------------------ ECS

    def stop_tasks(
        self, service: str, *, count: int | None = None, percent: float | None = None
    ) -> StopTasksRecord:
        if self.dry is not None:
            tasks_to_stop(0, count, percent)  # the same refusals as a live run
            self._plan("KillTasks", service=service, count=count, percent=percent)
            self.drill.mark_injected("ecs:StopTask", [service], service=service)
            return StopTasksRecord(service=service, running_before=0, stopped=[], dry_run=True)
        out = ecs.stop_tasks(self.drill, service, count, percent)
        return StopTasksRecord(
            service=service,
            running_before=int(out["running_before"]),
            stopped=list(out["stopped"]),
            dry_run=False,
        )

    def await_service(self, service: str, timeout_s: float) -> ServiceWaitRecord:
        waited = self._wait("WaitHealthy", timeout_s, service=service)
        return ServiceWaitRecord(service=service, stable=True, waited_s=waited)

    def _wait(self, operation: str, timeout_s: float, **params: Any) -> float:
        if self.dry is not None:
            self._plan(operation, **params)
            return 0.0
        started = time.monotonic()
        rds.wait_healthy(self.drill, timeout_s=min(timeout_s, _SANDBOX_WAIT_S))
        return round(time.monotonic() - started, 3)

    # ------------------------------------------------------------ RDS

    def failover_database(self, db: str) -> DatabaseFailoverRecord:
        if self.dry is not None:
            self._plan("CrashPrimary", db=db, component="postgres")
            self.drill.mark_injected("rds:RebootDBInstance(ForceFailover)", [db], db=db)
            return DatabaseFailoverRecord(
                db=db, primary_before=None, api_call="sandbox: kill primary", dry_run=True
            )
        out = rds.failover_rds(self.drill, db)
        return DatabaseFailoverRecord(
            db=db, primary_before=out["primary_before"], api_call=out["api_call"], dry_run=False
        )

    def await_database(self, db: str, timeout_s: float) -> PrimaryRecord:
        waited = self._wait("WaitHealthy", timeout_s, db=db)
        after = None if self.dry is not None else rds.primary_after(self.drill, "rds")
        return PrimaryRecord(primary_after=after, waited_s=waited)

    def restore_point_in_time(self, db: str, restore_age_s: float) -> dict[str, Any]:
        if self.dry is not None:
            self._plan("RestoreToPointInTime", db=db, restore_age_s=restore_age_s)
            return {"dry_run": True, "db": db, "restore_age_s": restore_age_s}
        return rds.restore_point_in_time(
            self.drill, db, float(restore_age_s), timeout_s=self.drill.recovery_bound_s()
        )

    def delete_restored(self, db: str) -> dict[str, Any]:
        if self.dry is not None:
            return {"deleted": None}
        out = rds.delete_restored_instance(self.drill)
        if out.get("deleted"):
            state = "stopped and removed" if out.get("was_running") else "removed (had exited)"
            self.drill.cleaned_up("restored PostgreSQL instance", str(out["deleted"]), state)
        return out

    # ------------------------------------------------------------ ElastiCache

    def failover_cache(self) -> CacheFailoverRecord:
        if self.dry is not None:
            self._plan("CrashPrimary", component="redis")
            self.drill.mark_injected("elasticache:TestFailover", ["redis"])
            return CacheFailoverRecord(primary_before=None, dry_run=True)
        out = elasticache.failover_elasticache(self.drill)
        return CacheFailoverRecord(primary_before=out["primary_before"], dry_run=False)

    def await_cache(self, timeout_s: float) -> PrimaryRecord:
        waited = self._wait("WaitHealthy", timeout_s, component="redis")
        after = None if self.dry is not None else rds.primary_after(self.drill, "elasticache")
        return PrimaryRecord(primary_after=after, waited_s=waited)

    def impact_urls(self) -> dict[str, str] | None:
        if self.dry is not None:
            return None
        services = self.service_urls()
        return {"portal": services["svc-portal"], "smarttab": services["svc-smarttab"]}

    def database_dsn(self, db: str) -> str | None:
        if self.dry is not None:
            return None
        dr = self.drill.handles.dr_dsn.get(db)
        return str(dr or self.drill.sandbox().dsn(db))

    # ------------------------------------------------------------ region

    def open_front_door(self) -> dict[str, Any]:
        if self.dry is not None:
            self._plan("OpenFrontDoor")
            return {"dry_run": True}
        return region.open_front_door(self.drill)

    def lose_region(self) -> dict[str, Any]:
        return region.lose_region(self.drill)

    def fail_over_to_dr(self, system: str, timeout_s: float) -> dict[str, Any]:
        return region.fail_over_to_dr(self.drill, timeout_s=timeout_s, system=system)

    def fail_back(self) -> dict[str, Any]:
        if self.dry is not None:
            return {"dry_run": True}
        return region.fail_back(self.drill)

    # ------------------------------------------------------------ mpac-obs

    def start_obs_history(self, interval_s: float) -> dict[str, Any]:
        return obs.start_history(self.drill, interval_s)

    def measure_obs_history(self) -> dict[str, Any]:
        return obs.measure_history(self.drill)

    # ------------------------------------------------------------ canary, stop conditions

    def start_canary(self) -> Canary | None:
        if self.dry is not None:
            return None
        from mpac_drill.measure.canary import Canary

        canary = Canary(
            dsn=self.drill.sandbox().dsn("smartpos"),
            run_id=self.drill.run_id,
            interval_s=float(self.drill.setting("drill.canary_interval_s")),
            max_duration_s=self.drill.recovery_bound_s() + 600,
        )
        canary.start()
        return canary

    def end_canary(self, canary: Any) -> None:
        """The sandbox's database is the drill's own: the rows stay as evidence."""

    def alarms_firing(self, names: list[str]) -> list[str]:
        return []  # the sandbox has no CloudWatch: its stop condition is the load's failures

    def detection_settings(self) -> dict[str, Any]:
        return detection.settings(self.drill.target)

    def read_detection(self, names: list[str], since: float) -> DetectionReading:
        if self.dry is not None:
            self._plan("ReadAlarmsAndIncidents", alarms=list(names))
            return detection.read(None, names)
        return detection.read_live(self.drill.sandbox().dir, names)

    # ------------------------------------------------------------ after the harness died

    def undo_plan(self, action: str) -> list[UndoStep]:
        return recover.undo_plan(self.drill)

    def recover(self, plan: list[UndoStep]) -> list[StepOutcome]:
        return recover.recover(self.drill, plan)

    def recovery_events(self, since: float) -> list[RecoveryEvent]:
        if self.dry is not None:
            return []
        events = recovery.read_events(self.drill.sandbox().dir, since)
        return sorted([*events, *step_events(list(self.drill.record.steps))], key=_at)


def _at(event: RecoveryEvent) -> str:
    return event["at"]


__all__ = ["SandboxPlatform"]

"""The AWS platform: :class:`~mpac_drill.platform.Platform` on an AWS account.

One module per system the actions name, each calling AWS through the one client factory
(:func:`mpac_drill.aws.client`: region, profile, role, ``endpoint_url`` for moto, dry run):
``ecs.py``, ``rds.py`` (+ ``pitr.py``), ``elasticache.py``, ``region.py`` (over ``dr*.py``),
``obs.py`` (+ ``obs_history.py``), ``canary.py`` (the canary's DSN from SSM) and
``alarms.py`` (CloudWatch stop conditions, STS). In a dry run every call is recorded into the
drill's :class:`~mpac_drill.aws.DryRun` recorder and none is sent.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chaoslib.exceptions import ActivityFailed

from mpac_drill.aws import DryRun
from mpac_drill.drill.inflight import StepOutcome, UndoStep
from mpac_drill.errors import DrillError
from mpac_drill.measure.observer import all_answer
from mpac_drill.measure.record import Step
from mpac_drill.platform import (
    CacheFailoverRecord,
    DatabaseFailoverRecord,
    PrimaryRecord,
    RecoveryEvent,
    ServiceWaitRecord,
    StopTasksRecord,
    step_events,
)
from mpac_drill.platform.aws import (
    alarms,
    canary,
    detection,
    ecs,
    elasticache,
    load,
    obs,
    pagerduty,
    pitr,
    rds,
    recover,
    recovery,
    region,
)

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext
    from mpac_drill.measure.canary import Canary
    from mpac_drill.measure.detection import DetectionReading


#: How long a rollback waits for the evidence that a failover happened (primary moved, event).
_EFFECT_WAIT_S = 300.0
_POLL_S = 2.0


class AwsPlatform:
    """The drill's platform when its target is an AWS account (or moto, in tests)."""

    kind = "aws"
    shared_database = True  # the canary writes into the services' real database

    def __init__(self, drill: DrillContext) -> None:
        self.drill = drill
        self.target = drill.target
        self.dry: DryRun | None = None
        self._pager: pagerduty.PagerDutyReader | None = None  # holds the token in memory
        if drill.dry_run:
            self.dry = drill.dry_run_recorder or DryRun()
            drill.dry_run_recorder = self.dry

    # ------------------------------------------------------------ what users reach

    def health_endpoints(self) -> dict[str, str]:
        return load.health_endpoints(self.drill)

    def service_urls(self) -> dict[str, str]:
        return load.service_urls(self.drill)

    def steady(self, timeout_s: float) -> bool:
        if self.dry is not None:
            return True  # a dry run contacts nothing, health endpoints included
        return all_answer(self.health_endpoints(), timeout_s)

    # ------------------------------------------------------------ ECS

    def stop_tasks(
        self, service: str, *, count: int | None = None, percent: float | None = None
    ) -> StopTasksRecord:
        def inject(arns: list[str]) -> None:
            self.drill.mark_injected("ecs:StopTask", arns, service=service)

        out = ecs.stop_tasks(
            self.target, service, count=count, percent=percent, dry_run=self.dry,
            before_stop=inject,
        )  # fmt: skip
        if self.dry is None and self.drill.fault:
            stopped = list(out["stopped"])
            self.drill.confirm_effect_in_background(lambda: self._tasks_left(service, stopped))
        return StopTasksRecord(
            service=service,
            running_before=out["running_before"],
            stopped=list(out["stopped"]),
            dry_run=out["dry_run"],
        )

    def _tasks_left(self, service: str, stopped: list[str]) -> None:
        """The fault's effect: every stopped task left RUNNING (and which replaced them)."""
        states = ecs.wait_tasks_left_running(self.target, service, stopped)
        left = [arn for arn, st in states.items() if st["last_status"] != "RUNNING"]
        self.drill.fault_took_effect(
            len(left) == len(stopped),
            tasks={arn: dict(st) for arn, st in states.items()},
            replaced_by=ecs.running_tasks(self.target, service, exclude=stopped),
            evidence=f"{len(left)} of {len(stopped)} stopped task(s) left RUNNING",
        )

    def await_service(self, service: str, timeout_s: float) -> ServiceWaitRecord:
        self.drill.await_effect()
        out = ecs.wait_service_stable(self.target, service, timeout_s, dry_run=self.dry)
        return ServiceWaitRecord(service=service, stable=out["stable"], waited_s=out["waited_s"])

    # ------------------------------------------------------------ RDS

    def failover_database(self, db: str) -> DatabaseFailoverRecord:
        ident = str(self.drill.setting(f"rds.{db}.identifier"))

        def inject(action: str) -> None:
            self.drill.mark_injected(action, [ident], db=db)

        out = rds.failover_rds(self.target, db, dry_run=self.dry, before_failover=inject)
        if self.drill.fault:
            self.drill.fault["primary_before"] = _primary_name(out["primary_before"])
        if not out["runbook_call_correct"]:
            self.drill.record.findings.append(
                {
                    "id": "F4",
                    "section": "1.2",
                    "summary": f"runbook names {out['runbook_call']}; a Multi-AZ DB "
                    f"{out['type']} fails over with {out['api_call']}",
                    "evidence": f"{ident} is a DB {out['type']} in {out['region']}",
                }
            )
        return DatabaseFailoverRecord(
            db=db,
            primary_before=_primary_name(out["primary_before"]),
            api_call=out["api_call"],
            dry_run=out["dry_run"],
        )

    def await_database(self, db: str, timeout_s: float) -> PrimaryRecord:
        started = time.monotonic()
        before = self.drill.fault.get("primary_before")
        deadline = started + min(timeout_s, _EFFECT_WAIT_S)
        while True:  # the effect: the primary moved (another writer, or another AZ)
            after = _primary_name(rds.rds_primary(self.target, db, dry_run=self.dry))
            moved = after is not None and after != before
            event = None if moved or self.dry is not None else self._failover_event(db)
            if self.dry is not None or moved or event or time.monotonic() >= deadline:
                break
            time.sleep(_POLL_S)
        if self.dry is None and self.drill.fault_state == "unverified":
            self.drill.fault_took_effect(
                bool(moved or event),
                primary_before=before,
                primary_after=after,
                evidence=(
                    "the primary moved"
                    if moved
                    else event or "neither the primary moved nor RDS reported a failover"
                ),
            )
        return PrimaryRecord(primary_after=after, waited_s=round(time.monotonic() - started, 3))

    def _failover_event(self, db: str) -> str | None:
        """An RDS event of the failover category since the injection, as evidence."""
        since = self.drill.injected_utc
        if since is None:
            return None
        for ev in rds.failover_events(self.target, db, since=since):
            return f"RDS event {ev['date']}: {ev['message']}"
        return None

    def restore_point_in_time(self, db: str, restore_age_s: float) -> dict[str, Any]:
        d = self.drill
        ident = str(d.setting(f"rds.{db}.identifier"))
        d.mark_injected(
            "rds:RestoreDBInstanceToPointInTime", [ident], db=db, restore_age_s=restore_age_s
        )
        assert d.injected_utc is not None and d.injected_mono is not None
        restore_time = d.injected_utc - timedelta(seconds=float(restore_age_s))
        region = str(self.target.get("aws.region") or "")

        def before_restore(identifier: str) -> None:  # write-ahead: what to delete
            d.undo_add(recover.instance_step(identifier, region, step_id=recover.PITR, db=db))

        result = pitr.restore_db_instance_to_point_in_time(
            self.target,
            db,
            restore_time,
            timeout_s=d.recovery_bound_s(),
            dry_run=self.dry,
            before_restore=before_restore,
        )
        d.handles.pitr_instance = {"identifier": result["target_identifier"], "db": db}
        d.record.steps = [Step(**s) for s in result["steps"]]
        d.fault.update(
            target_identifier=result["target_identifier"], restore_time=result["restore_time"]
        )
        if result["available"] and not result["dry_run"]:
            d.measurements["rto_s"] = round(time.monotonic() - d.injected_mono, 4)
        if not result["dry_run"]:
            d.fault_took_effect(
                bool(result["available"]),
                restored=result["target_identifier"],
                evidence=f"restored instance status {result['status']}",
            )
        d.record.pitr = {k: v for k, v in result.items() if k != "steps"}
        if not result["dry_run"]:
            d.note("restored data not verified: no canary on this target")
        return dict(result)

    def delete_restored(self, db: str) -> dict[str, Any]:
        handle = self.drill.handles.pitr_instance
        if not handle or handle.get("deleted"):
            return {"deleted": None}
        out = pitr.delete_restored_db_instance(
            self.target, handle["identifier"], db=handle.get("db", db), dry_run=self.dry
        )
        handle["deleted"] = True
        self.drill.undo_update(recover.PITR, state="done")
        if not out["dry_run"]:
            self.drill.cleaned_up(
                "restored DB instance",
                out["identifier"],
                f"DeleteDBInstance sent; status {out['status']} when the drill ended",
                region=out["region"],
            )
        return dict(out)

    # ------------------------------------------------------------ ElastiCache

    def failover_cache(self) -> CacheFailoverRecord:
        group = str(self.drill.setting("elasticache.replication_group"))

        def inject() -> None:
            self.drill.mark_injected("elasticache:TestFailover", [group])

        out = elasticache.failover_elasticache(
            self.target, dry_run=self.dry, before_failover=inject
        )
        if self.drill.fault:
            self.drill.fault["primary_before"] = out["primary_before"]
        return CacheFailoverRecord(primary_before=out["primary_before"], dry_run=out["dry_run"])

    def await_cache(self, timeout_s: float) -> PrimaryRecord:
        started = time.monotonic()
        before = self.drill.fault.get("primary_before")
        deadline = started + min(timeout_s, _EFFECT_WAIT_S)
        while True:  # the effect: another node is primary now
            after = elasticache.cache_primary(self.target, dry_run=self.dry)
            if self.dry is not None or after != before or time.monotonic() >= deadline:
                break
            time.sleep(_POLL_S)
        if self.dry is None and self.drill.fault_state == "unverified":
            self.drill.fault_took_effect(
                after is not None and after != before,
                primary_before=before,
                primary_after=after,
                evidence="ElastiCache names another primary"
                if after != before
                else "the same node is still primary",
            )
        return PrimaryRecord(primary_after=after, waited_s=round(time.monotonic() - started, 3))

    def impact_urls(self) -> dict[str, str] | None:
        return None  # the checks count through the databases, which the harness cannot read

    def database_dsn(self, db: str) -> str | None:
        return None  # the harness reads no database on AWS but through the canary's DSN

    # ------------------------------------------------------------ region

    def open_front_door(self) -> dict[str, Any]:
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
        """The canary on the DSN in the SSM SecureString ``database.dsn_ssm_parameter``,
        once it has connected, its table is there and a first write was acknowledged.
        Without that key: not run (noted; RPO not measured). In a dry run the GetParameter
        is only recorded.

        :raises ActivityFailed: the DSN cannot be read or takes no write; the drill then
            refuses its fault (``fault_refused``).
        """
        from mpac_drill.measure.canary import Canary

        d = self.drill
        if canary.dsn_parameter(self.target) is None:
            d.note(
                f"canary not run: the target sets no {canary.DSN_PARAMETER_KEY}, so the "
                "harness has no database DSN (RPO not measured)"
            )
            return None
        try:
            database = canary.canary_database(self.target, dry_run=self.dry)
        except Exception as exc:  # noqa: BLE001 - whatever stops the canary stops the fault
            # our messages name the parameter, never the DSN; of anything else only the class
            known = isinstance(exc, ActivityFailed | DrillError)
            d.fault_refused = f"canary not started: {exc if known else type(exc).__name__}"
            raise d.failed(d.fault_refused) from None
        if database is None:  # a dry run: the GetParameter is in the plan
            return None
        interval_s = float(d.setting("drill.canary_interval_s"))
        started = Canary(
            dsn=database.dsn,
            run_id=d.run_id,
            interval_s=interval_s,
            max_duration_s=d.recovery_bound_s() + 600,
        )
        started.start()
        wait_s = max(10.0, 5 * interval_s)
        if not started.wait_acked(wait_s):
            started.stop()
            d.fault_refused = (
                f"canary not started: the database of {database.source} "
                f"acknowledged no write within {wait_s:g} s"
            )
            raise d.failed(d.fault_refused)
        d.note(
            f"canary: DSN from {database.source}"
            + ("; table canary created" if database.table_created else "")
        )
        return started

    def end_canary(self, canary: Any) -> None:
        """Delete the run's canary rows from the real database after the read-back (or on a
        rollback): a note either way, the DSN in neither."""
        d = self.drill
        try:
            n = canary.purge()
        except RuntimeError as exc:
            d.cleaned_up("canary rows", d.run_id, "NOT deleted: see notes", note=False)
            d.note(
                f"canary: rows of run {d.run_id} NOT deleted from its database ({exc}); "
                f"delete them with DELETE FROM canary WHERE run_id = '{d.run_id}'"
            )
            return
        d.cleaned_up("canary rows", d.run_id, f"{n} deleted", note=False)
        d.note(
            f"canary: {n} row(s) of this run deleted from its database (the ledger is canary.csv)"
        )

    def alarms_firing(self, names: list[str]) -> list[str]:
        return alarms.alarms_in_alarm(self.target, list(names), dry_run=self.dry)

    def detection_settings(self) -> dict[str, Any]:
        return detection.settings(self.target)

    def read_detection(self, names: list[str], since: float) -> DetectionReading:
        if self._pager is None and pagerduty.configured(self.target):
            self._pager = pagerduty.PagerDutyReader(self.target, dry_run=self.dry)
        return detection.read(self.target, list(names), since, dry_run=self.dry, pager=self._pager)

    # ------------------------------------------------------------ after the harness died

    def undo_plan(self, action: str) -> list[UndoStep]:
        return recover.undo_plan(self.drill, action)

    def recover(self, plan: list[UndoStep]) -> list[StepOutcome]:
        return recover.recover(self.drill, plan)

    def recovery_events(self, since: float) -> list[RecoveryEvent]:
        if self.dry is not None:
            return []
        when = datetime.fromtimestamp(since, UTC)
        fault = self.drill.fault
        action = str(fault.get("action", ""))
        events = step_events(list(self.drill.record.steps))
        try:
            if action.startswith("ecs:") and fault.get("service"):
                events += recovery.ecs_task_events(
                    self.target, str(fault["service"]), when, list(fault.get("resources", []))
                )
            elif action.startswith("rds:") and fault.get("db"):
                events += recovery.rds_failover_events(self.target, str(fault["db"]), when)
            elif action.startswith("elasticache:"):
                events += recovery.cache_failover_events(self.target, when)
        except (ActivityFailed, DrillError) as exc:  # unread: those phases stay "not seen"
            self.drill.note(f"recovery events not read: {exc}")
        return sorted(events, key=lambda e: e["at"])


def _primary_name(primary: rds.RdsPrimary | None) -> str | None:
    """``instance (AZ)`` of an RDS primary, ``None`` when RDS does not say."""
    if not primary or not primary.get("instance"):
        return None
    zone = primary.get("availability_zone")
    return f"{primary['instance']} ({zone})" if zone else str(primary["instance"])


__all__ = ["AwsPlatform"]

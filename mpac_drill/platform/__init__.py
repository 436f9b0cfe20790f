"""The one seam between drills and platforms: :class:`Platform`, its records, its rules.

A drill's actions and probes never ask which kind of target they run on, nor whether this
is a dry run: they call the drill's platform, which
:func:`mpac_drill.drill.platforms.platform_for` picks once per drill
(``mpac_drill.platform.sandbox.SandboxPlatform`` for the local sandbox,
``mpac_drill.platform.aws.AwsPlatform`` for an AWS account, on moto in tests). Both
implement every method below with the same signature and return the same typed records.

One definition of every figure: each fault method (``stop_tasks``, ``failover_database``,
``failover_cache``, ``restore_point_in_time``, ``lose_region``) marks the injection instant
itself, on the drill (``DrillContext.mark_injected``), immediately before its destructive call
(the ``kill``, the ``StopTask``, the ``RebootDBInstance``...), after every read it needs. RTO
is measured from that instant on every target.

One dry run: on both platforms a dry run records each call it would make into the drill's
:class:`~mpac_drill.aws.DryRun` recorder, in one format (``service``, ``operation``,
``region``, ``params``; the sandbox's calls have service ``sandbox``, region ``local``),
and makes none.

Adding a platform: implement :class:`Platform` in ``mpac_drill/platform/<name>/`` (one
module per system the actions name: ``ecs``, ``rds``, ``elasticache``, ``region``, ``obs``,
``load``) and return it from ``mpac_drill.drill.platforms.platform_for`` (``docs/architecture.md``).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from mpac_drill.drill.inflight import StepOutcome, UndoStep
from mpac_drill.errors import UsageError
from mpac_drill.timefmt import iso

if TYPE_CHECKING:
    from mpac_drill.measure.detection import DetectionReading
    from mpac_drill.measure.record import Step

# ---------------------------------------------------------------- records


class StopTasksRecord(TypedDict):
    """What ``stop_tasks`` stopped: the service's tasks before, the ones stopped."""

    service: str
    running_before: int
    stopped: list[str]
    dry_run: bool


class ServiceWaitRecord(TypedDict):
    """A rollback's wait for a service (or the whole sandbox) to be whole again."""

    service: str
    stable: bool
    waited_s: float


class DatabaseFailoverRecord(TypedDict):
    """A database failover: which primary was failed, and how."""

    db: str
    primary_before: str | None
    api_call: str
    dry_run: bool


class CacheFailoverRecord(TypedDict):
    """A cache failover: which primary was failed."""

    primary_before: str | None
    dry_run: bool


class PrimaryRecord(TypedDict):
    """After a rollback's wait: who is primary now (``None``: the platform does not say)."""

    primary_after: str | None
    waited_s: float


class RecoveryEvent(TypedDict):
    """One of the platform's own events of recovery after a fault (``recovery_events``).

    ``kind``: ``task_running`` (an ECS replacement task runs and serves), ``database_promoted``
    (the new RDS primary accepts writes), ``cache_promoted`` (a new Redis / ElastiCache
    primary), ``region_step`` (a step of a region drill's DR procedure ended).
    """

    at: str  # UTC instant (timefmt.iso) the platform gives for the event
    kind: str
    resource: str
    evidence: str  # where it was read: the sandbox daemon's event line, the AWS API and field


# ---------------------------------------------------------------- the seam


class Platform(Protocol):
    """What a drill may ask of the platform it runs on. Every method is identical on the
    sandbox and on AWS; the fault methods mark the injection instant themselves."""

    kind: str  # "sandbox" | "aws": for messages and records only, never for branching
    #: whether the canary would write into a database others use (then only a drill that
    #: asks for it, ``canary_on_aws``, runs it)
    shared_database: bool

    # -- what users and the observer reach
    def health_endpoints(self) -> dict[str, str]:
        """Service name → the health URL the observer samples."""

    def service_urls(self) -> dict[str, str]:
        """Service name → base URL users (locust, the payment client) call."""

    def steady(self, timeout_s: float) -> bool:
        """Whether the platform is whole: every component healthy and every health endpoint
        answering 2xx within ``timeout_s`` (true in a dry run, which contacts nothing)."""

    # -- ECS (runbook §1.1)
    def stop_tasks(
        self, service: str, *, count: int | None = None, percent: float | None = None
    ) -> StopTasksRecord:
        """Stop all, ``count`` or ``percent`` of a service's running tasks (one rule:
        :func:`tasks_to_stop`)."""

    def await_service(self, service: str, timeout_s: float) -> ServiceWaitRecord:
        """Rollback: wait (bounded) until the service runs its desired tasks again."""

    # -- RDS (§1.2, §2.3)
    def failover_database(self, db: str) -> DatabaseFailoverRecord:
        """Fail over the primary of database ``db`` (``smartpos`` or ``pgw``)."""

    def await_database(self, db: str, timeout_s: float) -> PrimaryRecord:
        """Rollback: wait (bounded) until ``db`` has a primary and a standby again."""

    def restore_point_in_time(self, db: str, restore_age_s: float) -> dict[str, Any]:
        """Restore ``db`` to now − ``restore_age_s`` into a new instance, timed."""

    def delete_restored(self, db: str) -> dict[str, Any]:
        """Rollback: delete what ``restore_point_in_time`` created (idempotent)."""

    # -- ElastiCache (§1.3)
    def failover_cache(self) -> CacheFailoverRecord:
        """Fail the cache primary; a replica is promoted."""

    def await_cache(self, timeout_s: float) -> PrimaryRecord:
        """Rollback: wait (bounded) until the cache has a primary and a replica again."""

    def impact_urls(self) -> dict[str, str] | None:
        """Where the Redis impact checks call (portal, smarttab), or ``None`` where they
        cannot run (they need the databases to count what got through)."""

    def database_dsn(self, db: str) -> str | None:
        """A DSN the harness may read ``db`` with (impact counts, reconciliation), or
        ``None`` where the harness has none."""

    # -- region (§1.4, §1.5)
    def open_front_door(self) -> dict[str, Any]:
        """Give users one address per service that outlives the region."""

    def lose_region(self) -> dict[str, Any]:
        """Lose the primary region (the fault)."""

    def fail_over_to_dr(self, system: str, timeout_s: float) -> dict[str, Any]:
        """Run the runbook's DR procedure for ``system`` (``smartpos`` §1.4, ``pgw`` §1.5)."""

    def fail_back(self) -> dict[str, Any]:
        """Rollback: undo the DR procedure, bring the primary region back."""

    # -- mpac-obs (§1.6)
    def start_obs_history(self, interval_s: float) -> dict[str, Any]:
        """Start writing history mpac-obs must keep through its failure."""

    def measure_obs_history(self) -> dict[str, Any]:
        """Check that history and dashboards survived."""

    # -- RPO canary and stop conditions
    def start_canary(self) -> Any:
        """Start the RPO canary on the platform's database; ``None`` where it is not run."""

    def end_canary(self, canary: Any) -> None:
        """After the read-back: remove what the canary wrote where the database is real."""

    def alarms_firing(self, names: list[str]) -> list[str]:
        """Of the stop-condition alarms ``names``, those in ALARM now."""

    # -- the detection chain (runbook "Detection" lines, §3)
    def detection_settings(self) -> dict[str, Any]:
        """How the drill watches detection here: ``bound_s``, ``poll_s``, ``source`` (the
        label of the figures), ``pager`` (whether a pager is read), ``max_readings``."""

    def read_detection(self, names: list[str], since: float) -> DetectionReading:
        """The named alarms (state, transitions) and the pager's incidents triggered since
        ``since`` (epoch), read once; a dry run records the calls and reads nothing."""

    # -- after the harness died (issue 17): the write-ahead undo plan and its recovery
    def undo_plan(self, action: str) -> list[UndoStep]:
        """At the injection of ``action``: what must be undone if the harness dies now (the
        drill's ``inflight.json``; the procedure's steps add theirs as they go). No secret."""

    def recover(self, plan: list[UndoStep]) -> list[StepOutcome]:
        """Perform the pending steps of an interrupted run's undo plan; one outcome each."""

    # -- where recovery time goes (phases)
    def recovery_events(self, since: float) -> list[RecoveryEvent]:
        """The platform's own events of recovery at or after ``since`` (epoch), oldest
        first: replacement tasks running, primaries promoted, DR steps ended. Only what the
        platform reported; an event it did not report is absent, never invented (a dry run
        reads nothing and returns none)."""


# ---------------------------------------------------------------- shared rules


def step_events(steps: list[Step]) -> list[RecoveryEvent]:
    """A timed procedure's steps (``record.steps``, the region drills) as recovery events:
    each step that ended ok, at its end. The same on every platform."""
    out: list[RecoveryEvent] = []
    for step in steps:
        if not step["ok"]:
            continue
        try:
            start = datetime.fromisoformat(step["started_at"])
        except (TypeError, ValueError):
            continue
        end = start + timedelta(seconds=float(step["duration_s"]))
        out.append(
            RecoveryEvent(
                at=iso(end),
                kind="region_step",
                resource=step["name"],
                evidence=f"step {step['name']!r} ended ({step['duration_s']:.2f} s)",
            )
        )
    return out


def tasks_to_stop(running: int, count: int | None, percent: float | None) -> int:
    """How many of ``running`` tasks to stop: all, ``count`` (at most all), or ``percent``
    % of them rounded up (at least one). The one selection rule of every platform.

    :raises UsageError: both given, a ``count`` that is not a whole number ≥ 1 (``True``
        included), a ``percent`` outside (0, 100].
    """
    if count is not None and percent is not None:
        raise UsageError("stop_tasks: give count or percent, not both")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise UsageError(f"stop_tasks: count must be a whole number >= 1, not {count!r}")
    if percent is not None and (
        isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 < percent <= 100
    ):
        raise UsageError(f"stop_tasks: percent must be in (0, 100], not {percent!r}")
    if count is not None:
        return min(count, running)
    if percent is not None:
        return min(running, max(1, math.ceil(running * percent / 100)))
    return running


__all__ = [
    "CacheFailoverRecord",
    "DatabaseFailoverRecord",
    "Platform",
    "PrimaryRecord",
    "RecoveryEvent",
    "ServiceWaitRecord",
    "StopTasksRecord",
    "step_events",
    "tasks_to_stop",
]

"""Test only: moto 5.2.5 made to report the recovery records AWS documents, so the AWS
recovery phases (``mpac_drill/platform/aws/recovery.py``) can be checked end to end.

moto, run in this process (``ThreadedMotoServer``, tests/aws/conftest.py), gives ECS tasks no
``startedAt`` and records no event when a Multi-AZ DB instance is rebooted with
``ForceFailover``. :func:`aws_recovery_events` patches its in-process backends (and restores
them on exit) so that:

- **RDS**: ``RebootDBInstance`` with ``ForceFailover=True`` on a Multi-AZ DB instance adds
  the ``failover`` category events of the Amazon RDS User Guide's DB instance event table
  (USER_Events.Messages) to moto's own event list, as moto's ``Event`` model, so
  ``DescribeEvents`` answers them through moto's real serializer:

  ========== ======================================================================= =========
  event ID   message                                                                 ``Date``
  ========== ======================================================================= =========
  0013       Multi-AZ instance failover started.                                     the call
  0015       Multi-AZ failover to standby complete - DNS propagation may take a few  call + d
             minutes.
  0049       Multi-AZ instance failover completed.                                   call + d
  ========== ======================================================================= =========

  ``d`` is ``failover_delay_s``; "the call" is the instant moto handles the reboot. A
  completed event is added only once its ``Date`` has passed (a timer), as AWS reports an
  event after it happened: a ``DescribeEvents`` in between sees only 0013. Nothing else
  changes (moto keeps the instance's AvailabilityZone). A reboot without ``ForceFailover``,
  or of an instance that is not Multi-AZ, records nothing, as before.

  ``DescribeEvents`` also honours the request's ``StartTime``, ``EndTime`` and
  ``EventCategories``, as the API reference documents (moto 5.2.5 ignores them and answers
  every event of the source, e.g. "DB instance created", category ``creation``, from before
  the fault).
- **ECS**: every task moto creates (``RunTask``, ``StartTask``) gets ``createdAt`` and
  ``startedAt`` = the instant moto creates it. moto starts a task ``RUNNING`` at once (no
  PROVISIONING/PENDING), so that instant is when AWS would report it started; its
  ``lastStatus`` is moto's own (RUNNING until StopTask, with the session's frozen
  transitions). ``DescribeTasks`` serializes these to the millisecond (ECS's JSON epoch
  timestamps): ``startedAt`` is read back truncated to 1 ms.
- **ElastiCache**: not done. moto 5.2.5 does not implement ElastiCache ``DescribeEvents`` at
  all (no route, no model); faking the whole operation would test the fake, not moto's
  serializer, so the ElastiCache platform phase stays "not seen" on moto.

What the extension did is recorded on the yielded :class:`AwsRecords` (the failovers and
their event dates, the tasks and their ``startedAt``), for a test to compare with what the
drill measured.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.ecs import models as ecs_models
from moto.rds import models as rds_models
from moto.rds import responses as rds_responses

#: the failover events of a DB instance (Amazon RDS User Guide, "DB instance events"),
#: as moto's ``Event.EVENT_MAP`` entries: our key → RDS event ID, message
FAILOVER_STARTED = ("MPAC_TEST_MULTI_AZ_FAILOVER_STARTED", "RDS-EVENT-0013",
                    "Multi-AZ instance failover started.")  # fmt: skip
FAILOVER_COMPLETE = (
    ("MPAC_TEST_MULTI_AZ_FAILOVER_TO_STANDBY_COMPLETE", "RDS-EVENT-0015",
     "Multi-AZ failover to standby complete - DNS propagation may take a few minutes."),
    ("MPAC_TEST_MULTI_AZ_FAILOVER_COMPLETED", "RDS-EVENT-0049",
     "Multi-AZ instance failover completed."),
)  # fmt: skip


@dataclass
class RdsFailover:
    """One forced failover moto handled: the DB instance and the events' dates (UTC)."""

    identifier: str
    called: datetime  # 0013's Date
    completed: datetime  # 0015's and 0049's Date
    added: threading.Event = field(default_factory=threading.Event)  # 0015/0049 are in


@dataclass
class AwsRecords:
    """What the extension did while active."""

    failover_delay_s: float
    failovers: list[RdsFailover] = field(default_factory=list)
    #: task ARN → the ``startedAt`` it was given (UTC, microseconds; DescribeTasks: ms)
    started: dict[str, datetime] = field(default_factory=dict)


def _aware(at: datetime) -> datetime:
    """A request's naive timestamp (moto parses them naive) as UTC."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _naive(at: datetime) -> datetime:
    """moto keeps its dates naive UTC (``moto.core.utils.utcnow``)."""
    return at.astimezone(UTC).replace(tzinfo=None)


@contextmanager
def aws_recovery_events(*, failover_delay_s: float = 1.0) -> Iterator[AwsRecords]:
    """Patch the in-process moto backends as the module says, for the ``with`` block."""
    records = AwsRecords(failover_delay_s=failover_delay_s)
    timers: list[threading.Timer] = []
    real_reboot = rds_responses.RDSResponse.reboot_db_instance
    real_task_init = ecs_models.Task.__init__
    real_describe_events = rds_models.RDSBackend.describe_events

    def add_event(database: Any, key: str, date: datetime) -> None:
        event = rds_models.Event(key, database)
        event.date = _naive(date)
        database.backend.events.append(event)

    def reboot_db_instance(self: Any) -> Any:
        answer = real_reboot(self)
        identifier = str(self.params.get("DBInstanceIdentifier"))
        database = self.backend.databases.get(identifier)
        forced = self.params.get("ForceFailover") in (True, "true")
        if not forced or database is None or not database.multi_az:
            return answer
        now = datetime.now(UTC)
        failover = RdsFailover(identifier, now, now + timedelta(seconds=failover_delay_s))
        records.failovers.append(failover)
        add_event(database, FAILOVER_STARTED[0], now)

        def complete() -> None:
            for key, _, _ in FAILOVER_COMPLETE:
                add_event(database, key, failover.completed)
            failover.added.set()

        timer = threading.Timer(failover_delay_s, complete)
        timer.daemon = True
        timers.append(timer)
        timer.start()
        return answer

    def describe_events(self: Any, *args: Any, **kwargs: Any) -> list[Any]:
        events = real_describe_events(self, *args, **kwargs)
        start, end = kwargs.get("start_time"), kwargs.get("end_time")
        categories = set(kwargs.get("event_categories") or [])
        return [
            e
            for e in events
            if (start is None or e.date >= _naive(_aware(start)))
            and (end is None or e.date <= _naive(_aware(end)))
            and (not categories or categories & set(e.event_categories))
        ]

    def task_init(self: Any, *args: Any, **kwargs: Any) -> None:
        real_task_init(self, *args, **kwargs)
        now = datetime.now(UTC)
        self.created_at = self.started_at = _naive(now)  # DescribeTasks createdAt, startedAt
        records.started[self.task_arn] = now

    with pytest.MonkeyPatch.context() as patch:
        for key, _, message in (FAILOVER_STARTED, *FAILOVER_COMPLETE):
            patch.setitem(
                rds_models.Event.EVENT_MAP, key, {"Categories": ["failover"], "Message": message}
            )
        patch.setattr(rds_responses.RDSResponse, "reboot_db_instance", reboot_db_instance)
        patch.setattr(rds_models.RDSBackend, "describe_events", describe_events)
        patch.setattr(ecs_models.Task, "__init__", task_init)
        try:
            yield records
        finally:
            for timer in timers:
                timer.cancel()


@pytest.fixture
def aws_events() -> Iterator[AwsRecords]:
    """:func:`aws_recovery_events` with a 1 s failover, for one test."""
    with aws_recovery_events(failover_delay_s=1.0) as records:
        yield records


__all__ = [
    "FAILOVER_COMPLETE",
    "FAILOVER_STARTED",
    "AwsRecords",
    "RdsFailover",
    "aws_events",
    "aws_recovery_events",
]

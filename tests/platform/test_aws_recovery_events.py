"""The AWS recovery events (DescribeEvents and DescribeTasks answers, documented shape):
only a completed failover at or after the injection is a recovery event; a replacement
task's event is its service's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mpac_drill.config import load_target
from mpac_drill.measure.phases import platform_milestone
from mpac_drill.platform.aws import recovery
from mpac_drill.platform.aws.recovery import _completed_failovers

SINCE = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


def _answer(*events: tuple[timedelta, str]) -> dict:
    return {"Events": [{"Date": SINCE + d, "Message": m} for d, m in events]}


def test_only_completed_failovers_after_the_injection_count() -> None:
    found = _answer(
        (timedelta(seconds=-5), "Multi-AZ instance failover completed."),  # before the fault
        (timedelta(seconds=20), "Multi-AZ instance failover started."),
        (timedelta(seconds=75), "Multi-AZ instance failover completed."),
        (timedelta(seconds=80), "DB instance restarted."),
    )
    (event,) = _completed_failovers(found, SINCE, "database_promoted", "RDS", "mpac-smartpos")
    assert event["kind"] == "database_promoted" and event["resource"] == "mpac-smartpos"
    assert event["at"].startswith("2026-11-30T07:01:15")
    assert event["evidence"].startswith("RDS DescribeEvents mpac-smartpos")


def test_cache_failover_message_is_read_alike() -> None:
    found = _answer((timedelta(seconds=9), "Failover to replica node 0002-001 completed"))
    (event,) = _completed_failovers(found, SINCE, "cache_promoted", "ElastiCache", "mpac-redis")
    assert event["kind"] == "cache_promoted" and "ElastiCache DescribeEvents" in event["evidence"]
    assert _completed_failovers({"Events": []}, SINCE, "cache_promoted", "ElastiCache", "g") == []


class _FakeEcs:
    """ListTasks and DescribeTasks answers of the documented shape (task ARNs hold ``/``)."""

    ARN = "arn:aws:ecs:ap-northeast-1:123456789012:task/mpac-smartpos-staging/0f1e2d3c"

    def get_paginator(self, name: str) -> Any:
        assert name == "list_tasks"
        return type("P", (), {"paginate": lambda _self, **_: [{"taskArns": [self.ARN]}]})()

    def describe_tasks(self, **_: Any) -> dict[str, Any]:
        return {
            "tasks": [
                {
                    "taskArn": self.ARN,
                    "group": "service:svc-portal",
                    "startedAt": SINCE + timedelta(seconds=42.5),
                    "lastStatus": "RUNNING",
                }
            ]
        }


def test_an_aws_replacement_task_ends_the_platform_phase_of_its_service(monkeypatch) -> None:
    """A task ARN holds ``/``: read bare as the event's resource, the milestone took it for
    another service's task and the ECS platform phase was never seen on AWS."""
    monkeypatch.setattr(recovery, "client", lambda service, target: _FakeEcs())
    (event,) = recovery.ecs_task_events(load_target("staging"), "svc-portal", SINCE, [])
    assert event["resource"] == f"svc-portal/{_FakeEcs.ARN}"
    mark = platform_milestone("ecs:StopTask", [event], SINCE, "svc-portal")
    assert mark["seen"] and mark["t_s"] == 42.5 and "ECS DescribeTasks" in mark["evidence"]
    assert not platform_milestone("ecs:StopTask", [event], SINCE, "pgw")["seen"]


class _FakeRds:
    """A DescribeEvents answer as an endpoint that ignores StartTime and EventCategories
    (moto 5.2) gives it: the instance's creation and backup events come back too."""

    def describe_events(self, **_: Any) -> dict[str, Any]:
        return {
            "Events": [
                {
                    "Date": SINCE - timedelta(minutes=3),
                    "Message": "DB instance created",
                    "EventCategories": ["creation"],
                },
                {
                    "Date": SINCE + timedelta(seconds=2),
                    "Message": "Backing up DB instance",
                    "EventCategories": ["backup"],
                },
                {
                    "Date": SINCE + timedelta(seconds=31),
                    "Message": "Multi-AZ instance failover completed.",
                    "EventCategories": ["failover"],
                },
            ]
        }


def test_the_fault_effect_reads_only_failover_events_after_the_fault(monkeypatch) -> None:
    """The fault's evidence was the creation event on an endpoint that does not filter."""
    from mpac_drill.platform.aws import rds

    monkeypatch.setattr(rds, "client", lambda service, target: _FakeRds())
    (event,) = rds.failover_events(load_target("staging"), "smartpos", since=SINCE)
    assert event["message"] == "Multi-AZ instance failover completed."

"""The AWS failover events (RDS and ElastiCache DescribeEvents answers, documented shape):
only a completed failover at or after the injection is a recovery event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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

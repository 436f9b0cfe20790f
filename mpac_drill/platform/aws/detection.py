"""The detection chain on AWS: the scenario's CloudWatch alarms, read during the drill.

Bounded and paced: a reading is one ``DescribeAlarms`` (all named alarms, at most 100) plus
one ``DescribeAlarmHistory`` (``StateUpdate`` items since the injection) per alarm found,
every ``detection.poll_interval_s`` (default 30 s) for at most ``detection.bound_s``
(default 900 s): at most ``bound / interval + 2`` readings, shown in ``--dry-run``. Where the
history cannot be read (moto's server does not implement it; a role without
``cloudwatch:DescribeAlarmHistory``), the alarm's ``StateValue`` and
``StateUpdatedTimestamp`` stand for its last transition. Read-only.

Route53's health-check alarms (namespace ``AWS/Route53``, the region drills' detection) are
read like any other alarm, in the one region whose CloudWatch has Route53's metrics:
``us-east-1`` (``detection.route53_region`` overrides it). That region is outside the lost
primary region, as on AWS; an alarm created in ``aws.region`` on ``HealthCheckStatus`` has no
data there, and the drill reports it missing (D1) where it looked for it.

PagerDuty (``pagerduty.token_ssm_parameter``, ``pagerduty.service_id``; ``pagerduty.py``)
is read in the same readings when the target names it: its incidents since the injection and
their log entries (paged, acknowledged). A target that does not gets ``pager: "not
configured"`` and the alarm alone is judged.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mpac_drill.aws import AwsCallFailed, DryRun, client
from mpac_drill.config import Target
from mpac_drill.errors import UsageError
from mpac_drill.measure.detection import AlarmReading, DetectionReading
from mpac_drill.platform.aws import pagerduty

#: (endpoint, region) where DescribeAlarmHistory failed once: not asked again this process
_NO_HISTORY: set[tuple[str, str]] = set()


def settings(target: Target) -> dict[str, Any]:
    bound = float(target.get("detection.bound_s", 900))
    poll = max(1.0, float(target.get("detection.poll_interval_s", 30)))
    pager = pagerduty.configured(target)
    if pager and not pagerduty.api_url(target).startswith("https://"):
        raise UsageError(
            f"target {target.name!r}: pagerduty.api_url must be https:// (the token is a "
            f"secret), not {pagerduty.api_url(target)!r}"
        )
    calls = (
        "1 DescribeAlarms per region read (aws.region; Route53's alarms in "
        f"{route53_region(target)}) + 1 DescribeAlarmHistory per alarm"
    )
    return {
        "bound_s": bound,
        "poll_s": poll,
        "source": "aws+pagerduty" if pager else "aws",
        "pager": pager,
        "max_readings": int(bound / poll) + 2,
        "calls_per_reading": calls + ("; " + pagerduty.calls_per_reading() if pager else ""),
    }


def route53_region(target: Target) -> str:
    """Where Route53's health-check metrics (and so alarms on them) live."""
    return str(target.get("detection.route53_region") or "us-east-1")


def regions_of(target: Target, names: list[str]) -> dict[str, list[str]]:
    """region → the named alarms read there (in ``names``' order): an alarm whose catalog
    definition is in ``AWS/Route53`` in ``route53_region``, every other in ``aws.region``."""
    from mpac_drill.config import load_catalog

    route53 = {a.name for a in load_catalog().alarms() if a.namespace == "AWS/Route53"}
    home = str(target.require("aws.region"))
    out: dict[str, list[str]] = {}
    for name in names:
        out.setdefault(route53_region(target) if name in route53 else home, []).append(name)
    return out


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None


def read(
    target: Target,
    names: list[str],
    since: float,
    dry_run: DryRun | None = None,
    pager: pagerduty.PagerDutyReader | None = None,
) -> DetectionReading:
    """One reading of the named alarms (state, update time, history since ``since``) and,
    with ``pager``, of the PagerDuty service's incidents since then."""
    calls = 0
    found: dict[str, tuple[Any, str, dict[str, Any]]] = {}  # name -> (client, region, alarm)
    for region, here in regions_of(target, names).items():
        cloudwatch = client("cloudwatch", target, region=region, dry_run=dry_run)
        calls += 1
        for a in cloudwatch.describe_alarms(
            AlarmNames=list(here[:100]), AlarmTypes=["MetricAlarm"]
        ).get("MetricAlarms", []):
            if a.get("AlarmName") in here:
                found[a["AlarmName"]] = (cloudwatch, region, a)
    out: list[AlarmReading] = []
    for name in names:
        cloudwatch, region, a = found.get(name) or (None, "", None)
        if a is None:
            out.append(
                {
                    "name": name,
                    "exists": False,
                    "state": None,
                    "state_updated_at": None,
                    "history": [],
                }
            )
            continue
        history: list[dict[str, Any]] = []
        where = (str(target.get("aws.endpoint_url") or ""), region)
        items: list[dict[str, Any]] = []
        if where not in _NO_HISTORY:
            calls += 1
            items = _history(cloudwatch, name, since, where)
        for item in items:
            try:
                data = json.loads(item.get("HistoryData") or "{}")
                history.append(
                    {
                        "at": _epoch(item["Timestamp"]),
                        "from": data["oldState"]["stateValue"],
                        "to": data["newState"]["stateValue"],
                    }
                )
            except (KeyError, TypeError, ValueError):
                continue
        updated = _epoch(a.get("StateUpdatedTimestamp"))
        if updated is not None and not any(
            h["to"] == a["StateValue"] and abs(float(h["at"]) - updated) < 1 for h in history
        ):
            before = history[-1]["to"] if history else None
            history.append({"at": updated, "from": before, "to": a["StateValue"]})
        out.append(
            {
                "name": name,
                "exists": True,
                "state": a.get("StateValue"),
                "state_updated_at": updated,
                "history": sorted(history, key=lambda h: float(h["at"])),
            }
        )
    incidents: list[Any] = []
    if pager is not None:
        bound = float(target.get("detection.bound_s", 900))
        incidents, pd_calls = pager.read(since, since + bound)
        calls += pd_calls
    return {"alarms": out, "incidents": incidents, "calls": calls}


def _history(cloudwatch: Any, name: str, since: float, where: tuple[str, str]) -> list[Any]:
    """The alarm's state updates from an hour before ``since``; [] where unavailable."""
    try:
        return list(
            cloudwatch.describe_alarm_history(
                AlarmName=name,
                HistoryItemType="StateUpdate",
                StartDate=datetime.fromtimestamp(since - 3600).astimezone(),
                MaxRecords=100,
                ScanBy="TimestampAscending",
            ).get("AlarmHistoryItems", [])
        )
    except (AwsCallFailed, ClientError, BotoCoreError, KeyError, ValueError):
        _NO_HISTORY.add(where)
        return []


__all__ = ["read", "settings"]

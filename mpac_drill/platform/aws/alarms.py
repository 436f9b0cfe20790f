"""CloudWatch and STS on AWS: the stop-condition alarms and the account the credentials
act in (the production guard's check)."""

from __future__ import annotations

from mpac_drill.aws import DryRun, client
from mpac_drill.config import Target

# ---------------------------------------------------------------- CloudWatch, STS


def alarms_in_alarm(target: Target, names: list[str], dry_run: DryRun | None = None) -> list[str]:
    """Which of the named CloudWatch alarms (metric or composite) are in ALARM now.

    For stop conditions: a drill aborts when this is not empty.

    :param names: alarm names, as in ``stop.cloudwatch_alarms`` of the target.
    """
    if not names:
        return []
    cloudwatch = client("cloudwatch", target, dry_run=dry_run)
    firing: list[str] = []
    for start in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
        for page in cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNames=list(names[start : start + 100]),
            StateValue="ALARM",
            AlarmTypes=["MetricAlarm", "CompositeAlarm"],
        ):
            # StateValue checked again: moto ignores it when AlarmNames is given
            for kind in ("MetricAlarms", "CompositeAlarms"):
                firing += [
                    a["AlarmName"] for a in page.get(kind, []) if a.get("StateValue") == "ALARM"
                ]
    return firing


def account_id(target: Target) -> str:
    """The AWS account the target's credentials act in (STS GetCallerIdentity).

    For the production guard: compare with the target's ``account_id``.
    """
    return str(client("sts", target).get_caller_identity()["Account"])


__all__ = ["account_id", "alarms_in_alarm"]

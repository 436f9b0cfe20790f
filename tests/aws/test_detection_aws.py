"""The detection chain on AWS, on moto: the named CloudWatch alarms read during the drill
(created with PutMetricAlarm, fired with SetAlarmState), bounded and paced, read-only."""

from __future__ import annotations

import time

from mpac_drill.aws import DryRun
from mpac_drill.measure.detection import DetectionWatch, figures, findings, wait_for
from mpac_drill.platform.aws import detection


def _put_alarm(cw, name):
    cw.put_metric_alarm(
        AlarmName=name,
        Namespace="ECS/ContainerInsights",
        MetricName="RunningTaskCount",
        Statistic="Minimum",
        ComparisonOperator="LessThanThreshold",
        Threshold=1,
        Period=60,
        EvaluationPeriods=3,
        DatapointsToAlarm=2,
        TreatMissingData="breaching",
    )


def test_alarm_set_to_alarm_after_injection_is_read_with_its_time(aws_target, moto):
    cw = moto("cloudwatch")
    name = f"ECS-TaskCount-Low-{time.time_ns()}"
    _put_alarm(cw, name)
    cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="healthy")
    time.sleep(1.1)  # moto stamps whole seconds
    injected = time.time()
    time.sleep(1.1)
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="tasks gone")
    reading = detection.read(aws_target, [name, "Not-There"], injected)
    # DescribeAlarms + one history read for the alarm found (moto's server lacks the
    # history: asked once per process, then the state's update time stands for it)
    assert reading["calls"] in (1, 2)
    rec = figures(
        reading,
        injected_at=injected,
        bound_s=60,
        severity="P1",
        respond_s=900,
        update_s=1800,
        source="aws",
        pager=False,
    )
    fired, missing = rec["alarms"]
    assert fired["outcome"] == "fired" and 0 <= fired["time_to_alarm_s"] <= 3
    assert missing["outcome"] == "missing"
    assert [f["id"] for f in findings(rec, "1.1")] == ["D1"]
    assert rec["pager"] == "not configured"


def test_watch_is_bounded_and_paced(aws_target, moto):
    cw = moto("cloudwatch")
    name = f"Silent-{time.time_ns()}"
    _put_alarm(cw, name)
    cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="healthy")
    injected = time.time()
    watch = DetectionWatch(
        read=lambda since: detection.read(aws_target, [name], since),
        injected_at=lambda: injected,
        bound_s=1.0,
        poll_s=0.4,
        pager=False,
    )
    started = time.monotonic()
    watch.start()
    reading = wait_for(watch, extra_s=2)
    assert time.monotonic() - started < 3
    assert 1 <= watch.readings <= watch.planned_readings() == 4
    assert watch.readings <= watch.calls <= 2 * watch.readings and reading is not None


def test_dry_run_reads_nothing_and_records_the_calls(aws_target):
    dry = DryRun()
    detection.read(aws_target, ["ECS-TaskCount-Low"], time.time(), dry_run=dry)
    ops = [c["operation"] for c in dry.calls]
    assert ops[0] == "DescribeAlarms" and set(ops) <= {"DescribeAlarms", "DescribeAlarmHistory"}
    plan = detection.settings(aws_target)
    assert plan["max_readings"] == int(plan["bound_s"] / plan["poll_s"]) + 2

"""PagerDuty on AWS, read-only: the token from an SSM SecureString (moto), the incidents and
their log entries from a local PagerDuty-shaped HTTPS server, read with the maintained
``pagerduty`` client. Page and acknowledgement figures, the "fired without a page"
finding, pacing, the dry run, and the token never leaving memory."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from mpac_drill.aws import DryRun
from mpac_drill.config import Target
from mpac_drill.errors import UsageError
from mpac_drill.measure.detection import figures, findings
from mpac_drill.platform.aws import detection
from mpac_drill.platform.aws.pagerduty import PagerDutyReader
from tests.aws.pagerduty_server import FakePagerDuty, start

SERVICE = "PSVC123"


@pytest.fixture
def pd(tmp_path, moto) -> Iterator[FakePagerDuty]:
    """A local PagerDuty whose token sits in moto's SSM as a SecureString."""
    fake = FakePagerDuty(token=f"pdtok-{uuid.uuid4().hex}")
    server = start(fake, tmp_path)
    fake.parameter = f"/mpac/pd-{uuid.uuid4().hex[:8]}"  # type: ignore[attr-defined]
    moto("ssm").put_parameter(Name=fake.parameter, Value=fake.token, Type="SecureString")
    yield fake
    server.shutdown()


@pytest.fixture
def pd_target(pd, moto, make_target) -> Callable[..., Target]:
    def make(**more: Any) -> Target:
        name = pd.parameter  # this test's own: moto's SSM is shared by the whole session
        return make_target(
            **{
                "pagerduty.token_ssm_parameter": name,
                "pagerduty.service_id": SERVICE,
                "pagerduty.api_url": pd.url,
                "pagerduty.ca_bundle": pd.ca_file,
                **more,
            }
        )

    return make


def _alarm(cw, name: str) -> None:
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
    cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="healthy")


def _fire_after_injection(cw, name: str) -> float:
    """The injection's epoch; the alarm goes to ALARM > 1 s later (moto stamps seconds)."""
    time.sleep(1.1)
    injected = time.time()
    time.sleep(1.1)
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="tasks gone")
    return injected


def _record(reading, injected: float) -> Any:
    return figures(
        reading,
        injected_at=injected,
        bound_s=1800,
        severity="P1",
        respond_s=900,
        update_s=1800,
        source="aws+pagerduty",
        pager=True,
    )


def test_page_and_ack_come_from_pagerduty(pd, pd_target, moto):
    target = pd_target()
    cw = moto("cloudwatch")
    name = f"ECS-TaskCount-Low-{uuid.uuid4().hex[:6]}"
    _alarm(cw, name)
    injected = _fire_after_injection(cw, name)
    base = math.ceil(injected)  # PagerDuty's times are whole seconds
    title = f'ALARM: "{name}" in Asia Pacific (Tokyo)'
    pd.add_incident("PINC1", title, SERVICE, base + 120, base + 300)
    pd.add_incident("POLD", title, SERVICE, base - 3600, base - 3500)  # before: not this one
    pd.add_incident("POTHER", title, "PSVCOTHER", base + 60, base + 61)  # another service
    reader = PagerDutyReader(target)
    reading = detection.read(target, [name], injected, pager=reader)
    rec = _record(reading, injected)
    assert rec["time_to_page_s"] == pytest.approx(base + 120 - injected, abs=0.01)
    assert rec["time_to_ack_s"] == pytest.approx(base + 300 - injected, abs=0.01)
    assert rec["outcome"] == "detected" and rec["alarms"][0]["paged"]
    assert [i["id"] for i in rec["incidents"]] == ["PINC1"]
    assert {v["metric"]: v["outcome"] for v in rec["verdicts"]} == {
        "time_to_alarm_s": "met",
        "time_to_page_s": "met",
        "time_to_ack_s": "met",
    }
    # read-only, filtered by service and the injection, with the token from SSM
    assert {r["method"] for r in pd.requests} == {"GET"}
    (listing,) = [r for r in pd.requests if r["path"] == "/incidents"]
    assert listing["query"]["service_ids[]"] == [SERVICE]
    assert listing["query"]["since"] == [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(injected))]
    assert listing["headers"]["authorization"] == f"Token token={pd.token}"
    # paced: an acknowledged incident's log is not read again
    before = len(pd.requests)
    again = detection.read(target, [name], injected, pager=reader)
    assert len(pd.requests) - before == 1 and again["incidents"] == reading["incidents"]


def test_late_ack_misses_the_target_and_no_ack_is_not_acknowledged(pd, pd_target, moto):
    target = pd_target()
    cw = moto("cloudwatch")
    name = f"ECS-TaskCount-Low-{uuid.uuid4().hex[:6]}"
    _alarm(cw, name)
    injected = _fire_after_injection(cw, name)
    base = math.ceil(injected)
    pd.add_incident("PLATE", f'ALARM: "{name}"', SERVICE, base + 100, base + 1000)
    rec = _record(detection.read(target, [name], injected, pager=PagerDutyReader(target)), injected)
    ack = {v["metric"]: v for v in rec["verdicts"]}["time_to_ack_s"]
    assert ack["outcome"] == "missed" and ack["value"] > 900

    pd.incidents.clear()
    pd.add_incident("PNOACK", f'ALARM: "{name}"', SERVICE, base + 100)
    rec = _record(detection.read(target, [name], injected, pager=PagerDutyReader(target)), injected)
    assert rec["time_to_ack_s"] is None and rec["outcome"] == "not acknowledged"


def test_alarm_without_incident_is_fired_without_a_page(pd, pd_target, moto):
    target = pd_target()
    cw = moto("cloudwatch")
    name = f"ECS-TaskCount-Low-{uuid.uuid4().hex[:6]}"
    _alarm(cw, name)
    injected = _fire_after_injection(cw, name)
    rec = _record(detection.read(target, [name], injected, pager=PagerDutyReader(target)), injected)
    assert rec["time_to_alarm_s"] is not None and rec["time_to_page_s"] is None
    assert rec["outcome"] == "not paged"
    (d3,) = findings(rec, "1.1")
    assert d3["id"] == "D3" and "fired without a page" in d3["summary"]


def test_settings_plan_pagerduty_calls_and_refuse_plain_http(pd, pd_target):
    plan = detection.settings(pd_target())
    assert plan["pager"] and plan["source"] == "aws+pagerduty"
    assert "GET /incidents" in plan["calls_per_reading"]
    with pytest.raises(UsageError, match="https"):
        detection.settings(pd_target(**{"pagerduty.api_url": "http://127.0.0.1:9"}))


def test_dry_run_lists_the_reads_and_sends_nothing(pd, pd_target):
    target = pd_target()
    dry = DryRun()
    detection.read(
        target,
        ["ECS-TaskCount-Low"],
        time.time(),
        dry_run=dry,
        pager=PagerDutyReader(target, dry_run=dry),
    )
    lines = "\n".join(dry.render())
    assert "ssm GetParameter" in lines and "WithDecryption=true" in lines
    assert "pagerduty GET /incidents" in lines and SERVICE in lines
    assert "log_entries" in lines
    assert pd.requests == [] and pd.token not in lines


def test_refused_token_is_one_line_without_any_of_the_token(pd, pd_target, moto):
    name = pd.parameter
    moto("ssm").put_parameter(
        Name=name, Value="wrong-" + pd.token, Type="SecureString", Overwrite=True
    )
    with pytest.raises(ActivityFailed) as failed:
        PagerDutyReader(pd_target()).read(time.time(), time.time())
    message = str(failed.value)
    assert "HTTP 401" in message and "\n" not in message
    assert pd.token[-4:] not in message and "pdtok" not in message


@pytest.mark.sandbox
def test_ecs_drill_on_aws_reads_the_page_and_keeps_the_token_out_of_the_run_folder(
    sandbox, ecs_service, pd, pd_target, moto, tmp_path, retarget
):
    """The whole drill (moto for AWS, the sandbox's services for health, the local
    PagerDuty): result.json's detection comes from CloudWatch and PagerDuty, and no file of
    the run folder holds the token."""
    import json
    import threading

    from mpac_drill.drill.runner import run_drill
    from tests.aws.test_experiments_aws import _endpoint_overrides

    cw = moto("cloudwatch")
    _alarm(cw, "ECS-TaskCount-Low")
    target, _ = ecs_service(tasks=2, desired=2)
    base = pd_target(**{"ecs.cluster": target.get("ecs.cluster")})
    aws = retarget(
        base,
        {
            **_endpoint_overrides(sandbox),
            "account_id": "123456789012",
            "drill.warmup_s": 1,
            "drill.cooldown_s": 0.5,
            "drill.observer_interval_s": 0.1,
            "detection.bound_s": 8,
            "detection.poll_interval_s": 1,
        },
    )
    paged: dict[str, float] = {}

    def on_call() -> None:  # CloudWatch → SNS → PagerDuty, played after the injection
        deadline = time.time() + 120
        while not pd.requests and time.time() < deadline:
            time.sleep(0.05)  # the first GET /incidents comes after the injection
        time.sleep(1.1)
        cw.set_alarm_state(AlarmName="ECS-TaskCount-Low", StateValue="ALARM", StateReason="0")
        at = math.ceil(time.time())
        paged.update(page=at + 1, ack=at + 3)
        pd.add_incident("PDRILL", 'ALARM: "ECS-TaskCount-Low"', SERVICE, at + 1, at + 3)
        time.sleep(1.5)
        cw.set_alarm_state(AlarmName="ECS-TaskCount-Low", StateValue="OK", StateReason="1")

    helper = threading.Thread(target=on_call, daemon=True)
    helper.start()
    try:
        outcome = run_drill("ecs-task-failure", aws, runs_dir=tmp_path / "runs", users=1)
    finally:
        helper.join(10)
        cw.delete_alarms(AlarmNames=["ECS-TaskCount-Low"])
    det = outcome.result["detection"]
    assert det["source"] == "aws+pagerduty" and "pager" not in det
    assert det["outcome"] == "detected", json.dumps(det)
    assert det["time_to_ack_s"] - det["time_to_page_s"] == pytest.approx(2.0, abs=0.01)
    assert 0 < det["time_to_alarm_s"] <= det["time_to_page_s"] + 1
    assert {r["method"] for r in pd.requests} == {"GET"}
    files = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    assert any(p.name == "result.json" for p in files)
    assert any("journal" in p.name for p in files)
    leaked = [str(p) for p in files if pd.token.encode() in p.read_bytes()]
    assert leaked == [], f"the PagerDuty token was written to {leaked}"
    assert json.loads((outcome.run_dir / "result.json").read_text())["detection"] == det

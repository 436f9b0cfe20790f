"""The region drill's detection on AWS (moto): Route53's health-check alarm is read from
CloudWatch like any other alarm, in us-east-1 (the one region with Route53's metrics).

The alarm exists there and is set to ALARM (SetAlarmState) after the region was declared
lost: the drill records when. An alarm of the same name in the primary region (where
Route53's metrics never are) is not the one read. Without the alarm: D1, missed detection.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime
from typing import Any

import pytest

from mpac_drill.config import load_catalog
from mpac_drill.drill.runner import run_drill
from tests.aws.test_region_aws import OLD_URL, _c, _dr_region

pytestmark = [pytest.mark.aws, pytest.mark.sandbox]
ALARM = "Route53-HealthCheck-Failed"
FAST = {"detection.bound_s": 8, "detection.poll_interval_s": 1}


def _put(moto_url: str, region: str) -> Any:
    (d,) = load_catalog().get("region-failover").detection.alarms
    cw = _c("cloudwatch", moto_url, region)
    cw.put_metric_alarm(
        AlarmName=d.name,
        Namespace=d.namespace,
        MetricName=d.metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in d.dimensions.items()],
        Statistic=d.statistic,
        ComparisonOperator=d.comparison,
        Threshold=d.threshold,
        Period=int(d.period_s),
        EvaluationPeriods=d.evaluation_periods,
        DatapointsToAlarm=d.datapoints_to_alarm,
        TreatMissingData=d.treat_missing_data,
    )
    cw.set_alarm_state(AlarmName=d.name, StateValue="OK", StateReason="endpoint healthy")
    return cw


def _target(moto_url, sandbox, tmp_path):
    tag = uuid.uuid4().hex[:6]
    ident, ssm_name = f"mpac-smartpos-{tag}", f"/mpac-smartpos/{tag}/DATABASE_URL"
    target, _ = _dr_region(
        moto_url,
        sandbox,
        tmp_path,
        db_ident=ident,
        param_name=ssm_name,
        param_value=OLD_URL.format(secret=f"pw{tag}"),
        **{"rds.smartpos.identifier": ident, "ssm.database_url": ssm_name, **FAST},
    )
    return target


def _delete(moto_url: str) -> None:
    for region in ("us-east-1", "ap-northeast-1"):
        _c("cloudwatch", moto_url, region).delete_alarms(AlarmNames=[ALARM])


def test_route53_alarm_set_after_the_loss_is_read_in_us_east_1(sandbox, moto_url, tmp_path):
    _delete(moto_url)
    cw = _put(moto_url, "us-east-1")
    _put(moto_url, "ap-northeast-1")  # the primary region's copy stays OK: not the one read
    time.sleep(1.1)  # moto stamps whole seconds: the OK lies before the injection
    fired: dict[str, float] = {}

    def fire(injected: float) -> None:
        # moto stamps whole seconds: the ALARM after the injection's second
        time.sleep(max(0.0, injected + 1.1 - time.time()))
        cw.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="checks failing")
        fired["at"] = time.time()

    def listener(ctx: Any) -> None:
        if ctx.injected_utc is not None and "started" not in fired:
            fired["started"] = 1.0
            threading.Thread(target=fire, args=(ctx.injected_utc.timestamp(),)).start()

    try:
        outcome = run_drill(
            "region-failover",
            _target(moto_url, sandbox, tmp_path),
            runs_dir=tmp_path / "runs",
            users=2,
            listeners=[listener],
        )
    finally:
        _delete(moto_url)
    r = outcome.result
    assert r["status"] == "completed", r.get("reason")
    det = r["detection"]
    (alarm,) = det["alarms"]
    assert alarm["name"] == ALARM and alarm["outcome"] == "fired", det
    assert alarm["state_at_injection"] == "OK"
    injected = datetime.fromisoformat(r["fault"]["injected_at"].replace("Z", "+00:00"))
    # moto stamps whole seconds (rounded down): never after the call, never before the loss
    assert 0 <= alarm["time_to_alarm_s"] <= fired["at"] - injected.timestamp() + 0.01, det
    assert det["source"] == "aws" and det["pager"] == "not configured"
    assert det["outcome"] == "detected" and det["severity"] == "P0"
    assert not [f for f in r["findings"] if f["id"] in ("D1", "D2", "D3")]
    (verdict,) = [v for v in r["verdicts"] if v["metric"] == "detection"]
    assert verdict["passed"] and verdict["outcome"] == "informational"  # gating: false


def test_route53_alarm_that_does_not_exist_is_d1(sandbox, moto_url, tmp_path):
    _delete(moto_url)
    outcome = run_drill(
        "region-failover",
        _target(moto_url, sandbox, tmp_path),
        runs_dir=tmp_path / "runs",
        users=2,
    )
    r = outcome.result
    assert r["status"] == "completed", r.get("reason")
    det = r["detection"]
    assert det["alarms"][0]["outcome"] == "missing" and det["outcome"] == "missed detection"
    (d1,) = [f for f in r["findings"] if f["id"] == "D1"]
    assert ALARM in d1["summary"] and d1["section"] == "1.4"
    (verdict,) = [v for v in r["verdicts"] if v["metric"] == "detection"]
    assert not verdict["passed"] and "missing" in verdict["reason"]

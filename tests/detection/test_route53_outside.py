"""Route53's health checks outside the region (``mpac_drill/sandbox/healthcheck.py``) and
alarms a target does not model ("not played on this target", contract v5).

The health checker probes a real endpoint on loopback (a small HTTP server standing for the
primary region's ALB); losing it fires the catalog's ``Route53-HealthCheck-Failed`` with
CloudWatch's semantics after about request interval × failure threshold + period ×
datapoints to alarm, the page goes out through its own SNS topic and pager, and on-call
acknowledges ``ack_delay_s`` later. No sandbox is started.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mpac_drill.config import load_catalog
from mpac_drill.contract import validate_result
from mpac_drill.measure.detection import NOT_PLAYED, figures, findings
from mpac_drill.measure.detection_verdict import drill_verdict
from mpac_drill.platform.sandbox import detection
from mpac_drill.sandbox.healthcheck import Checker, ExternalMonitoring, HealthCheck, active

R53 = "Route53-HealthCheck-Failed"
PGW = "Route53-PGW-HealthCheck-Failed"
ROUTE53 = {
    "health_checks": {"api.mpac-cloud.com": ["svc-portal"], "pgw.mpac-cloud.com": ["pgw"]},
    "request_interval_s": 30,
    "failure_threshold": 3,
    "checkers": 3,
}


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        code = 200 if self.path == "/health" else 404
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


class _Endpoint:
    """A loopback HTTP endpoint that can be lost (its listener closed)."""

    def __init__(self) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def lose(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[_Endpoint]:
    e = _Endpoint()
    yield e
    with contextlib.suppress(OSError):
        e.lose()


def _record(reading, injected, bound=10.0, pager=True):
    return figures(
        reading,
        injected_at=injected,
        bound_s=bound,
        severity="P0",
        respond_s=300,
        update_s=900,
        source="sandbox",
        pager=pager,
    )


def test_health_check_alarm_pages_and_is_acknowledged_after_the_endpoint_is_lost(
    endpoint, tmp_path: Path
):
    period, ack = 0.2, 0.5
    monitor = ExternalMonitoring(
        alb_ports={"svc-portal": endpoint.port, "pgw": endpoint.port},
        settings=ROUTE53,
        alarms={"period_s": period},
        ack_delay_s=ack,
    )
    monitor.start(primary_dir=tmp_path)
    try:
        assert active(tmp_path) is monitor
        (definition,) = load_catalog().get("region-failover").detection.alarms
        # healthy first: the alarm is OK once it has N whole periods of data
        deadline = time.monotonic() + 10
        while detection.read(None, [R53], monitor.state())["alarms"][0]["state"] != "OK":
            assert time.monotonic() < deadline, monitor.state()
            time.sleep(0.02)
        injected = time.time()
        endpoint.lose()
        deadline = time.monotonic() + 10
        while True:
            reading = detection.read(None, [R53, PGW], monitor.state())
            rec = _record(reading, injected)
            if rec["time_to_ack_s"] is not None or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        state = monitor.state()
    finally:
        monitor.stop()
    assert active(tmp_path) is None
    alarm = rec["alarms"][0]
    assert alarm["outcome"] == "fired" and alarm["state_at_injection"] == "OK", rec
    # the checkers need failure_threshold probes (request_interval scaled), then the alarm
    # datapoints_to_alarm periods: ± one period (where in its period the loss fell) + 0.5 s
    interval = 30 * period / 60
    expected = 3 * interval + period * definition.datapoints_to_alarm
    assert abs(alarm["time_to_alarm_s"] - expected) <= period + 0.5, (expected, alarm)
    assert abs(alarm["time_to_alarm_s"] - period * definition.datapoints_to_alarm) <= (period + 0.5)
    assert 0 <= rec["time_to_page_s"] - alarm["time_to_alarm_s"] <= 0.5, rec
    assert abs(rec["time_to_ack_s"] - rec["time_to_page_s"] - ack) <= 0.5, rec
    assert rec["alarms"][1]["name"] == PGW and rec["alarms"][1]["outcome"] == "fired"
    assert rec["outcome"] == "detected"
    check = state["health_checks"][0]
    assert check["status"] == 0 and check["failed_probes"] >= 3
    assert state["sns"]["delivered"] >= 1 and state["sns"]["failed"] == 0


def test_checker_rule_needs_consecutive_failures_and_18_percent():
    check = HealthCheck("x", {}, failure_threshold=3, checkers=[Checker() for _ in range(3)])
    a, b, c = check.checkers
    for _ in range(2):
        check.record(a, False, 0)
    assert a.healthy and check.status == 1  # 2 of 3 failures: still healthy
    check.record(a, True, 0)
    check.record(a, False, 0)
    check.record(a, False, 0)
    assert a.healthy  # a success reset the run
    check.record(a, False, 0)
    check.record(b, False, 0), check.record(b, False, 0), check.record(b, False, 0)
    assert not a.healthy and not b.healthy and check.status == 1  # 1 of 3 > 18 %
    for _ in range(3):
        check.record(c, False, 1.5)
    assert check.status == 0 and check.changes[-1] == {
        "at": 1.5,
        "status": 0,
        "healthy_checkers": 0,
    }


def test_route53_alarm_without_checks_is_not_played_never_missing():
    reading = detection.read(None, [R53])
    (a,) = reading["alarms"]
    assert a["played"] is False and "region drill" in a["not_played"]
    rec = _record(reading, time.time())
    assert rec["outcome"] == NOT_PLAYED and rec["alarms"][0]["outcome"] == NOT_PLAYED
    assert rec["time_to_alarm_s"] is None and not findings(rec, "1.4")  # no D1, no D2
    assert {v["outcome"] for v in rec["verdicts"]} == {"inconclusive"}
    assert not any(v["passed"] for v in rec["verdicts"])
    gating = drill_verdict(rec, gating=True)
    assert gating["outcome"] == "inconclusive" and gating["passed"] is False
    assert "not played on this target" in gating["reason"] and R53 in gating["reason"]
    listed = drill_verdict(rec, gating=False)
    assert listed["outcome"] == "informational" and listed["passed"] is False


def test_unmapped_health_check_is_not_played_and_absent_one_is_missing(endpoint, tmp_path):
    monitor = ExternalMonitoring(
        alb_ports={"svc-portal": endpoint.port},
        settings={**ROUTE53, "health_checks": {"api.mpac-cloud.com": ["svc-portal"]}},
        alarms={"period_s": 0.2, "absent": [R53]},
        ack_delay_s=0.1,
    )
    assert PGW in monitor.not_played and "pgw.mpac-cloud.com" in monitor.not_played[PGW]
    assert monitor.absent == [R53]
    state = monitor._snapshot()
    reading = detection.read(None, [R53, PGW], state)
    missing, unplayed = _record(reading, time.time())["alarms"]
    assert missing["outcome"] == "missing"  # the sandbox models it; the target lacks it: D1
    assert unplayed["outcome"] == NOT_PLAYED and unplayed["played"] is False


def test_a_metric_the_sandbox_does_not_measure_is_not_played():
    from mpac_drill.config import alarm_definition

    extra = alarm_definition(
        {
            "name": "ALB-5xx-High",
            "namespace": "AWS/ApplicationELB",
            "metric": "HTTPCode_ELB_5XX_Count",
            "dimensions": {},
            "statistic": "Sum",
            "comparison": "GreaterThanThreshold",
            "threshold": 10,
            "period_s": 60,
            "evaluation_periods": 1,
            "datapoints_to_alarm": 1,
            "treat_missing_data": "notBreaching",
        },
        "test",
    )
    catalog = [*load_catalog().alarms(), extra]
    assert "does not measure AWS/ApplicationELB" in str(
        detection.not_played("ALB-5xx-High", None, catalog)
    )
    assert detection.not_played("ECS-TaskCount-Low", None, catalog) is None


def test_played_alarms_judge_the_chain_and_the_reason_names_the_unplayed(tmp_path):
    injected = 1000.0
    reading = {
        "alarms": [
            {
                "name": "ECS-TaskCount-Low",
                "exists": True,
                "state": "ALARM",
                "state_updated_at": 1002.0,
                "history": [{"at": 1002.0, "from": "OK", "to": "ALARM"}],
            },
            {
                "name": R53,
                "exists": False,
                "state": None,
                "state_updated_at": None,
                "history": [],
                "played": False,
                "not_played": "not modelled",
            },
        ],
        "incidents": [
            {
                "id": "P1",
                "title": "cloudwatch/ECS-TaskCount-Low x",
                "triggered_at": 1002.1,
                "acknowledged_at": 1003.1,
            }
        ],
        "calls": 0,
    }
    rec = _record(reading, injected)
    assert rec["outcome"] == "detected" and rec["time_to_alarm_s"] == 2.0
    outcomes = {v["metric"]: v["outcome"] for v in rec["verdicts"]}
    assert outcomes == {
        "time_to_alarm_s": "met",
        "time_to_page_s": "met",
        "time_to_ack_s": "met",
        f"alarm {R53}": "inconclusive",
    }
    v = drill_verdict(rec, gating=True)
    assert (
        v["passed"]
        and v["outcome"] == "met"
        and f"not played on this target: alarm {R53}" in (v["reason"])
    )
    # the contract (v5) takes the record as it is
    result = _minimal_result(rec)
    assert validate_result(result) == []


def _minimal_result(detection_record):
    from tests.test_contract import _result

    out = _result("region-failover", "1.4")
    out["schema_version"] = 5
    out["detection"] = detection_record
    return out

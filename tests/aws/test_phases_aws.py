"""Where recovery time goes, on AWS, end to end (issue 14): the drill reads the platform
phase from the records AWS documents, at the instants those records give.

moto 5.2.5 gives ECS tasks no ``startedAt`` and emits no RDS failover event; the tests with
``aws_recovery_events`` (tests/aws/moto_events.py) extend the in-process moto to report them
as AWS documents, run the real drill (``run_drill``) against it, and read result.json:

- the ``platform`` phase is seen, its evidence names the API read (``ECS DescribeTasks`` /
  ``RDS DescribeEvents``) and its milestone lies at the record's instant: the replacement
  task's ``startedAt`` (ECS's JSON timestamps carry milliseconds: ± 1 ms) or the completed
  failover event's ``Date`` (RDS: microseconds), relative to ``fault.injected_at``, to the
  record's 4 decimals;
- detect, platform, endpoint are contiguous, never negative and sum to ``rto_s`` (1e-9);
- without the extension (moto as it is) the platform phase is ``seen: false`` with its
  reason, and the others still sum to ``rto_s``.

The health endpoints the observer samples are a loopback server whose outage the test
sets: ECS: svc-portal answers 503 from the moment moto holds no RUNNING task of the service
until ``ENDPOINT_LAG_S`` after the replacement task started (``REPLACE_AFTER_S`` after the
stop; moto never relaunches a stopped task: the test plays the service scheduler, RunTask);
RDS: from the forced failover until ``ENDPOINT_LAG_S`` after its completion. So the endpoint
phase is about ``ENDPOINT_LAG_S`` long and the platform phase ends before it.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from moto.ecs.models import ecs_backends

from mpac_drill.drill.runner import run_drill
from mpac_drill.measure.phases import chain_sum
from mpac_drill.timefmt import iso
from tests.aws.conftest import REGION
from tests.aws.moto_events import FAILOVER_COMPLETE, AwsRecords, aws_recovery_events

pytestmark = pytest.mark.aws

MOTO_ACCOUNT = "123456789012"  # moto's default account, which the dummy keys map to
SERVICE = "svc-portal"
GROUP = f"service:{SERVICE}"
ENDPOINTS = ("svc-portal", "svc-smarttab", "pgw")  # the keys staging's endpoints names
INTERVAL_S = 0.1  # drill.observer_interval_s
REPLACE_AFTER_S = 0.8  # ECS: the stop → the replacement task started
FAILOVER_S = 0.8  # RDS: the forced failover → its completed events' Date
ENDPOINT_LAG_S = 0.6  # the platform's record → svc-portal answers 200 again
#: the endpoint phase: the lag, then up to K healthy samples' grid (0.1 s) and whatever a
#: busy machine delays the observer by (a sanity bound; the exact checks are the records')
SLACK_S = 2.0
POLL_S = 0.02
CHAIN = ("detect", "platform", "endpoint")


class Outage:
    """svc-portal's health on a loopback server: down between ``down`` and ``up`` (UTC,
    set by the test's rig); the other services always healthy."""

    def __init__(self) -> None:
        self.down: datetime | None = None
        self.up: datetime | None = None

    def healthy(self) -> bool:
        if self.down is None:
            return True
        return self.up is not None and datetime.now(UTC) >= self.up


@pytest.fixture
def health() -> Iterator[tuple[Outage, dict[str, str]]]:
    """(the outage, ``endpoints.*`` overrides pointing the target at the server)."""
    outage = Outage()

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            name = self.path.removesuffix("/health").strip("/")
            ok = name in ENDPOINTS and (name != SERVICE or outage.healthy())
            body = b'{"status":"ok"}' if ok else b'{"status":"down"}'
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="health").start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield outage, {f"endpoints.{n}": f"{base}/{n}/health" for n in ENDPOINTS}
    server.shutdown()
    server.server_close()


FAST = {
    "account_id": MOTO_ACCOUNT,
    "drill.observer_interval_s": INTERVAL_S,
    "drill.recovery_consecutive": 3,
    "drill.warmup_s": 1,
    "drill.cooldown_s": 0.5,
}


class Scheduler:
    """The ECS service scheduler moto lacks: once moto holds no RUNNING task of svc-portal
    (read in-process, as tests/aws/test_ground_truth_aws.py explains), the endpoint goes
    down; ``REPLACE_AFTER_S`` later one replacement task is started (RunTask, the service's
    group); the endpoint is back ``ENDPOINT_LAG_S`` after that."""

    def __init__(self, ecs: Any, cluster: str, network: dict[str, Any], outage: Outage) -> None:
        self.ecs, self.cluster, self.network, self.outage = ecs, cluster, network, outage
        self.replacement: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self._backend = ecs_backends[MOTO_ACCOUNT][REGION]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="scheduler")
        self._thread.start()

    def _running(self) -> list[Any]:
        tasks = list(self._backend.tasks.get(self.cluster, {}).values())
        return [t for t in tasks if t.group == GROUP and t.last_status == "RUNNING"]

    def _run(self) -> None:
        try:
            while self._running():
                if self._stop.wait(POLL_S):
                    return
            self.outage.down = datetime.now(UTC)
            tasks = self._backend.tasks[self.cluster].values()
            arn = next(t.task_definition_arn for t in tasks if t.group == GROUP)
            if self._stop.wait(REPLACE_AFTER_S):
                return
            (task,) = self.ecs.run_task(
                cluster=self.cluster,
                taskDefinition=arn,
                count=1,
                launchType="FARGATE",
                networkConfiguration=self.network,
                group=GROUP,
            )["tasks"]
            self.replacement = task
            started = task.get("startedAt") or datetime.now(UTC)
            self.outage.up = started + timedelta(seconds=ENDPOINT_LAG_S)
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost
            self.error = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        assert self.error is None, f"the scheduler failed: {self.error!r}"


def _phase(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in result["phases"]["phases"] if p["name"] == name)


def _milestone(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in result["phases"]["milestones"] if m["name"] == name)


def _since_injection(result: dict[str, Any], at: datetime) -> float:
    injected = datetime.fromisoformat(result["fault"]["injected_at"])
    return (at - injected).total_seconds()


def assert_chain(result: dict[str, Any]) -> None:
    """The contract: detect, platform, endpoint contiguous from 0, never negative, summing
    to ``rto_s``; a phase not seen has no duration and the next starts where it started."""
    rto = result["measurements"]["rto_s"]
    assert rto is not None and result["phases"]["rto_s"] == rto
    prev = 0.0
    for name in CHAIN:
        p = _phase(result, name)
        assert p["start_s"] == prev, (name, p, prev)
        if not p["seen"]:
            assert p["end_s"] is None and p["duration_s"] is None, p
            continue
        assert p["duration_s"] >= 0 and p["end_s"] >= p["start_s"], p
        assert math.isclose(p["start_s"] + p["duration_s"], p["end_s"], abs_tol=1e-9), p
        prev = p["end_s"]
    assert prev == round(rto, 4)  # the last seen phase (endpoint) ends at rto_s
    assert abs(chain_sum(result["phases"]["phases"]) - rto) <= 1e-9


def _ecs_drill(
    ecs_service: Callable[..., Any],
    ecs_network: dict[str, Any],
    moto: Callable[[str], Any],
    retarget: Callable[..., Any],
    health: tuple[Outage, dict[str, str]],
    tmp_path: Path,
) -> tuple[dict[str, Any], Scheduler]:
    outage, endpoints = health
    target, _ = ecs_service(tasks=2, desired=2)
    scheduler = Scheduler(moto("ecs"), target.get("ecs.cluster"), ecs_network, outage)
    try:
        drill_target = retarget(target, {**endpoints, **FAST})
        outcome = run_drill("ecs-task-failure", drill_target, runs_dir=tmp_path / "runs", users=0)
    finally:
        scheduler.stop()
    r = outcome.result
    assert r["status"] == "completed", r.get("reason")
    assert r["fault"]["action"] == "ecs:StopTask" and r["fault"]["effect"]["verified"]
    assert scheduler.replacement is not None
    return r, scheduler


def test_ecs_platform_phase_ends_when_the_replacement_task_started(
    ecs_service, ecs_network, moto, retarget, health, tmp_path
) -> None:
    with aws_recovery_events() as records:
        r, scheduler = _ecs_drill(ecs_service, ecs_network, moto, retarget, health, tmp_path)
    assert scheduler.replacement is not None
    arn = scheduler.replacement["taskArn"]
    started = records.started[arn]  # what the extension gave it (µs)
    reported = scheduler.replacement["startedAt"]  # what DescribeTasks/RunTask say (ms)
    assert abs((reported - started).total_seconds()) < 0.001

    mark = _milestone(r, "platform_recovered")
    platform = _phase(r, "platform")
    print(r["phases"])  # the figures, with -s
    assert mark["seen"] and platform["seen"], mark
    assert (
        "ECS DescribeTasks" in mark["evidence"]
        and f"startedAt {iso(reported)}" in (mark["evidence"])
    ), mark
    assert "lastStatus RUNNING" in mark["evidence"]
    # the milestone is startedAt as DescribeTasks gives it, to the record's 4 decimals
    assert abs(mark["t_s"] - _since_injection(r, reported)) <= 0.5e-4, mark
    assert 0 < mark["t_s"] < r["measurements"]["rto_s"]
    assert platform["end_s"] == mark["t_s"]  # not clamped: it is within the chain
    assert_chain(r)
    # the endpoint phase is the lag the server added after the task started (+ sampling);
    # it cannot be shorter (less one loopback request: a sample read just before the flip)
    endpoint = _phase(r, "endpoint")
    assert ENDPOINT_LAG_S - 0.05 <= endpoint["duration_s"] <= ENDPOINT_LAG_S + SLACK_S, endpoint


def test_ecs_platform_phase_not_seen_on_plain_moto(
    ecs_service, ecs_network, moto, retarget, health, tmp_path
) -> None:
    r, scheduler = _ecs_drill(ecs_service, ecs_network, moto, retarget, health, tmp_path)
    assert scheduler.replacement is not None and "startedAt" not in scheduler.replacement
    mark, platform = _milestone(r, "platform_recovered"), _phase(r, "platform")
    assert not mark["seen"] and mark["t_s"] is None
    assert not platform["seen"] and "no task_running event" in platform["evidence"], platform
    assert_chain(r)


@pytest.fixture
def multi_az_instance(moto: Callable[[str], Any]) -> str:
    name = f"mpac-smartpos-{uuid.uuid4().hex[:8]}"
    moto("rds").create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="mpac",
        MasterUserPassword="not-a-secret-1",
        MultiAZ=True,
        AllocatedStorage=20,
    )
    return name


def test_rds_platform_phase_ends_at_the_failover_completed_event(
    multi_az_instance, make_target, moto, health, tmp_path
) -> None:
    outage, endpoints = health
    target = make_target(
        **{
            **endpoints,
            **FAST,
            "rds.smartpos.identifier": multi_az_instance,
            "rds.smartpos.type": "instance",
            "database.dsn_ssm_parameter": None,  # no canary: the phases do not need one
        }
    )
    with aws_recovery_events(failover_delay_s=FAILOVER_S) as records:

        def on_failover() -> None:  # the endpoint follows the failover moto reports
            while not records.failovers:
                time.sleep(POLL_S)
            failover = records.failovers[0]
            outage.down = failover.called
            outage.up = failover.completed + timedelta(seconds=ENDPOINT_LAG_S)

        follower = threading.Thread(target=on_failover, daemon=True)
        follower.start()
        outcome = run_drill("rds-failover", target, runs_dir=tmp_path / "runs", users=0)
        follower.join(timeout=1)
    r = outcome.result
    assert r["status"] == "completed", r.get("reason")
    assert r["fault"]["action"] == "rds:reboot-db-instance --force-failover"
    # the fault's effect is RDS's failover event since the injection (DescribeEvents with
    # StartTime and EventCategories), not an older event of the instance
    effect = r["fault"]["effect"]
    assert effect["verified"] and "Multi-AZ instance failover" in effect["evidence"], effect
    (failover,) = records.failovers
    assert failover.identifier == multi_az_instance and failover.added.is_set()

    # moto's DescribeEvents (its serializer) answers the events with their dates
    events = moto("rds").describe_events(
        SourceIdentifier=multi_az_instance, SourceType="db-instance"
    )["Events"]
    failovers = [e for e in events if e["EventCategories"] == ["failover"]]
    assert [e["Message"] for e in failovers][1:] == [m for _, _, m in FAILOVER_COMPLETE]
    assert [e["Date"] for e in failovers][1:] == [failover.completed] * 2

    mark = _milestone(r, "platform_recovered")
    platform = _phase(r, "platform")
    print(r["phases"])  # the figures, with -s
    assert mark["seen"] and platform["seen"], mark
    assert (
        f"RDS DescribeEvents {multi_az_instance} {iso(failover.completed)}" in (mark["evidence"])
    ), mark
    assert "started" not in mark["evidence"]  # 0013 says started: not the promotion
    expected = _since_injection(r, failover.completed)
    assert abs(mark["t_s"] - expected) <= 0.5e-4, (mark, expected)
    assert _since_injection(r, failover.called) > 0  # moto saw the call after the injection
    assert platform["end_s"] == mark["t_s"]
    assert_chain(r)
    endpoint = _phase(r, "endpoint")
    assert ENDPOINT_LAG_S - 0.05 <= endpoint["duration_s"] <= ENDPOINT_LAG_S + SLACK_S, endpoint


def test_the_extension_is_gone_after_its_block(moto, multi_az_instance) -> None:
    records: AwsRecords
    with aws_recovery_events(failover_delay_s=0.05) as records:
        pass
    moto("rds").reboot_db_instance(DBInstanceIdentifier=multi_az_instance, ForceFailover=True)
    time.sleep(0.1)
    events = moto("rds").describe_events(
        SourceIdentifier=multi_az_instance, SourceType="db-instance"
    )["Events"]
    assert not [e for e in events if "failover" in e["EventCategories"]]
    assert not records.failovers

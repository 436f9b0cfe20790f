"""The sandbox's Route53 health checks and their alarm, outside the "region".

On AWS a Route53 health check is probed by Route53's own checkers from several places, its
``HealthCheckStatus`` metric is CloudWatch's in us-east-1, and PagerDuty is a service of its
own: none of them is in the region the runbook §1.4/§1.5 loses. The sandbox's daemon
(``monitoring.py``) lives *in* the primary "region", so its alarms and pager die with it.
This module plays the part that survives, hosted by the region drill beside its front door
(``mpac_drill/platform/sandbox/region.py``: started by ``open_front_door``, stopped by
``close_front_door``/``fail_back``), in a thread with its own event loop in the harness,
as the front door is; nothing of it outlives the harness.

- **Health checkers** (Route53's): each catalog alarm on ``AWS/Route53``
  ``HealthCheckStatus`` names its health check by ``HealthCheckId`` (``api.mpac-cloud.com``);
  the target's ``route53.health_checks`` maps it to the services whose *primary-region*
  ALBs it probes (``GET /health`` on loopback, the endpoint's own address, not the front
  door: a health check names the primary's endpoint and keeps probing it after the record
  is switched). ``route53.checkers`` checkers (Route53: one per checker region) probe every
  ``route53.request_interval_s`` (Route53's 30 s or 10 s) and each judges the endpoint
  unhealthy after ``route53.failure_threshold`` consecutive failures (healthy again after as
  many successes), as Route53 does; a probe fails without a 2xx/3xx within the (scaled)
  timeout. The check is healthy while more than 18 % of the checkers find every endpoint
  healthy (Route53's rule). Seconds of Route53 run scaled like the alarms: × ``alarms.period_s``
  / 60.
- **CloudWatch** (us-east-1's): ``HealthCheckStatus`` (1 healthy, 0 not) is published every
  request interval, and the catalog's alarm on it (``alarms.absent`` / ``alarms.overrides``
  applied) is evaluated with the same semantics as the daemon's (``alarms.py``), each period
  run as ``alarms.period_s`` seconds.
- **SNS → PagerDuty**: transitions go to an SNS topic of their own delivering to a pager of
  their own (``pager.py``; acknowledged ``pager.ack_delay_s`` after the page): both outside
  the region, so the page of a region loss can be sent and acknowledged.

A Route53 alarm whose ``HealthCheckId`` has no entry in ``route53.health_checks`` is not
played here (``state()`` lists it under ``not_played``), never reported missing.
:func:`active` finds the monitoring of a primary sandbox, for the drill's detection reads
(``mpac_drill/platform/sandbox/detection.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpac_drill.config import AlarmDefinition, load_catalog
from mpac_drill.sandbox.alarms import ALARM, OK, Alarm, sandbox_definitions
from mpac_drill.sandbox.pager import Pager, SnsTopic, alarm_notification, post_json

NAMESPACE, METRIC = "AWS/Route53", "HealthCheckStatus"
TOPIC_ARN = "arn:aws:sns:us-east-1:000000000000:mpac-route53-alarms"
#: Route53's defaults (seconds of the real service; run scaled by alarms.period_s / 60)
DEFAULTS: dict[str, Any] = {
    "request_interval_s": 30.0,  # Route53: standard 30 s (fast: 10 s)
    "failure_threshold": 3,  # Route53's default
    "checkers": 3,  # checker regions probing each endpoint
    "timeout_s": 4.0,  # Route53: connect within 4 s (scaled, never under 0.2 s)
    "health_checks": {},  # HealthCheckId -> services whose primary ALB it probes
}
#: Route53: a check is healthy while more than this share of its checkers find it healthy
HEALTHY_SHARE = 0.18

_ACTIVE: dict[str, ExternalMonitoring] = {}
_ACTIVE_LOCK = threading.Lock()


def route53_alarms(
    catalog_alarms: list[AlarmDefinition] | None = None,
) -> list[AlarmDefinition]:
    """The catalog's alarms this module plays (Route53 ``HealthCheckStatus``)."""
    alarms = catalog_alarms if catalog_alarms is not None else load_catalog().alarms()
    return [a for a in alarms if a.namespace == NAMESPACE and a.metric == METRIC]


@dataclass
class Checker:
    """One Route53 checker's view of one health check: its consecutive results."""

    healthy: bool = True  # a new check starts healthy (Route53: until it has data)
    run: int = 0  # consecutive results against the current status


@dataclass
class HealthCheck:
    """One Route53 health check: its endpoints (service → URL) and its checkers."""

    check_id: str
    endpoints: dict[str, str]
    failure_threshold: int
    checkers: list[Checker] = field(default_factory=list)
    probes: int = 0
    failed_probes: int = 0
    last_failure: str | None = None
    status: int = 1
    changes: list[dict[str, Any]] = field(default_factory=list)

    def record(self, checker: Checker, ok: bool, at: float) -> None:
        """One checker's probe result; the check's status follows Route53's rule."""
        if ok == checker.healthy:
            checker.run = 0
        else:
            checker.run += 1
            if checker.run >= self.failure_threshold:
                checker.healthy, checker.run = ok, 0
        healthy = sum(c.healthy for c in self.checkers)
        status = 1 if healthy > HEALTHY_SHARE * len(self.checkers) else 0
        if status != self.status:
            self.status = status
            self.changes.append({"at": at, "status": status, "healthy_checkers": healthy})
            del self.changes[:-50]

    def as_dict(self) -> dict[str, Any]:
        return {
            "health_check_id": self.check_id,
            "endpoints": dict(self.endpoints),
            "status": self.status,
            "checkers_healthy": sum(c.healthy for c in self.checkers),
            "checkers": len(self.checkers),
            "failure_threshold": self.failure_threshold,
            "probes": self.probes,
            "failed_probes": self.failed_probes,
            "last_failure": self.last_failure,
            "changes": list(self.changes),
        }


class ExternalMonitoring:
    """Route53 health checks, their CloudWatch alarm, SNS and a pager, outside the region.

    ``alb_ports``: service → the primary region's ALB port (its public endpoint here).
    ``settings``: the target's ``route53`` section (``DEFAULTS``); ``alarms``: its
    ``alarms`` section (``period_s``, ``absent``, ``overrides``); ``ack_delay_s``: its
    ``pager.ack_delay_s``."""

    def __init__(
        self,
        *,
        alb_ports: dict[str, int],
        settings: dict[str, Any] | None,
        alarms: dict[str, Any] | None,
        ack_delay_s: float,
        catalog_alarms: list[AlarmDefinition] | None = None,
        on_event: Callable[[str], None] = lambda msg: None,
    ) -> None:
        self.settings = {**DEFAULTS, **(settings or {})}
        alarm_settings = {"period_s": 0.5, "absent": [], "overrides": {}, **(alarms or {})}
        self.period_s = float(alarm_settings["period_s"])
        if not self.period_s > 0:
            raise ValueError("alarms.period_s must be above 0")
        self.scale = self.period_s / 60.0  # CloudWatch's 60-s period runs as period_s
        self.interval_s = float(self.settings["request_interval_s"]) * self.scale
        self.timeout_s = min(
            max(0.2, float(self.settings["timeout_s"]) * self.scale), max(0.2, self.interval_s)
        )
        self.on_event = on_event
        wanted = route53_alarms(catalog_alarms)
        defined = sandbox_definitions(
            wanted,
            absent=list(alarm_settings["absent"] or []),
            overrides=dict(alarm_settings["overrides"] or {}),
        )
        mapping = {str(k): list(v) for k, v in dict(self.settings["health_checks"]).items()}
        self.not_played: dict[str, str] = {}
        self.checks: dict[str, HealthCheck] = {}
        self._defs: list[AlarmDefinition] = []
        for a in defined:
            check_id = str(a.dimensions.get("HealthCheckId", ""))
            services = mapping.get(check_id)
            unknown = [s for s in services or [] if s not in alb_ports]
            if not services or unknown:
                self.not_played[a.name] = (
                    f"no sandbox endpoint for Route53 health check {check_id!r} "
                    f"(route53.health_checks{' names unknown services ' if unknown else ''}"
                    f"{', '.join(unknown)})"
                )
                continue
            if check_id not in self.checks:
                self.checks[check_id] = HealthCheck(
                    check_id=check_id,
                    endpoints={s: f"http://127.0.0.1:{alb_ports[s]}/health" for s in services},
                    failure_threshold=max(1, int(self.settings["failure_threshold"])),
                    checkers=[Checker() for _ in range(max(1, int(self.settings["checkers"])))],
                )
            self._defs.append(a)
        self.absent = sorted({a.name for a in wanted} - {a.name for a in defined})
        self.alarms: dict[str, Alarm] = {}
        routing_key = secrets.token_hex(16)
        self.pager = Pager(routing_key=routing_key, ack_delay_s=ack_delay_s, on_event=on_event)
        self.topic = SnsTopic(arn=TOPIC_ARN, subscriber="", routing_key=routing_key)
        self.topic.on_event = on_event
        self.started_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._key: str | None = None

    # ------------------------------------------------------------ harness side

    def start(self, primary_dir: Path | None = None, timeout_s: float = 10) -> None:
        """Start the checkers, the alarms, SNS and the pager (a thread of their own);
        registered for ``primary_dir`` (the primary sandbox whose region they watch)."""
        self._thread = threading.Thread(target=self._run, daemon=True, name="route53-checks")
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise OSError("route53 health checks did not start")
        if self._error is not None:
            self.stop()
            raise self._error
        if primary_dir is not None:
            self._key = str(Path(primary_dir).resolve())
            with _ACTIVE_LOCK:
                _ACTIVE[self._key] = self

    def stop(self) -> None:
        if self._key is not None:
            with _ACTIVE_LOCK:
                if _ACTIVE.get(self._key) is self:
                    del _ACTIVE[self._key]
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def state(self, timeout_s: float = 2.0) -> dict[str, Any]:
        """A consistent snapshot (taken on the loop): the same shape as the daemon's
        ``state.json`` ``detection`` (alarms, sns, pager), plus the health checks and the
        alarms not played here."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return self._snapshot()
        return asyncio.run_coroutine_threadsafe(self._snapshot_async(), loop).result(timeout_s)

    async def _snapshot_async(self) -> dict[str, Any]:
        return self._snapshot()

    def _snapshot(self) -> dict[str, Any]:
        return {
            "where": "outside the region (Route53 health checkers, us-east-1 CloudWatch, "
            "PagerDuty), hosted beside the front door",
            "started_at": self.started_at,
            "period_s": self.period_s,
            "request_interval_s": round(self.interval_s, 6),
            "timeout_s": round(self.timeout_s, 6),
            "health_checks": [c.as_dict() for c in self.checks.values()],
            "alarms": [a.as_dict() for a in self.alarms.values()],
            "absent": list(self.absent),
            "not_played": dict(self.not_played),
            "sns": {
                "topic_arn": TOPIC_ARN,
                "url": self.topic.server.url if self.topic.server else None,
                "delivered": self.topic.delivered,
                "failed": self.topic.failed,
            },
            "pager": {
                "url": self.pager.server.url if self.pager.server else None,
                "ack_delay_s": self.pager.ack_delay_s,
                "incidents": [i.as_dict() for i in self.pager.incidents],
            },
        }

    # ------------------------------------------------------------ the loop thread

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        tasks: list[asyncio.Task[None]] = []
        try:
            loop.run_until_complete(self._start())
            tasks = [loop.create_task(self._evaluate_loop())]
            for check in self.checks.values():
                for i, checker in enumerate(check.checkers):
                    # the checkers are spread over the interval, as Route53's are
                    offset = self.interval_s * i / len(check.checkers)
                    tasks.append(loop.create_task(self._probe_loop(check, checker, offset)))
        except (OSError, RuntimeError) as exc:
            self._error = exc
        self._ready.set()
        if self._error is None:
            loop.run_forever()
        for t in tasks:
            t.cancel()
        with contextlib.suppress(Exception):
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        with contextlib.suppress(Exception):
            loop.run_until_complete(self._stop())
        loop.close()

    async def _start(self) -> None:
        await self.pager.start()
        self.topic.subscriber = f"{self.pager.url}/v2/enqueue"
        await self.topic.start()
        now = time.time()
        self.started_at = now
        self.alarms = {
            a.name: Alarm(definition=a, period_s=self.period_s, created_at=now) for a in self._defs
        }

    async def _stop(self) -> None:
        await self.topic.stop()
        await self.pager.stop()

    async def _probe_loop(self, check: HealthCheck, checker: Checker, offset: float) -> None:
        await asyncio.sleep(offset)
        while True:
            started = time.monotonic()
            results = await asyncio.gather(*(self._probe(url) for url in check.endpoints.values()))
            at = time.time()
            check.probes += 1
            failed = [f"{s}: {why}" for s, why in zip(check.endpoints, results, strict=True) if why]
            if failed:
                check.failed_probes += 1
                check.last_failure = "; ".join(failed)[:300]
            was = check.status
            check.record(checker, not failed, at)
            if check.status != was:
                self.on_event(
                    f"route53: health check {check.check_id} "
                    f"{'healthy' if check.status else 'unhealthy'}"
                )
            for alarm in self.alarms.values():
                if alarm.definition.dimensions.get("HealthCheckId") == check.check_id:
                    alarm.add_sample(at, float(check.status))
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def _probe(self, url: str) -> str | None:
        """One Route53 probe: ``None`` when the endpoint answered 2xx/3xx in time, else why."""
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        if host != "127.0.0.1":  # loopback only: a sandbox endpoint is never elsewhere
            return "not a loopback endpoint"

        async def roundtrip() -> bytes:
            reader, writer = await asyncio.open_connection(host, parts.port)
            try:
                writer.write(
                    f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                    "User-Agent: Amazon-Route53-Health-Check-Service\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                await writer.drain()
                return await reader.readuntil(b"\r\n")
            finally:
                writer.close()

        try:
            line = await asyncio.wait_for(roundtrip(), self.timeout_s)
        except TimeoutError:
            return f"no answer within {self.timeout_s:g} s"
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            return type(exc).__name__
        try:
            status = int(line.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return "not HTTP"
        return None if 200 <= status < 400 else f"HTTP {status}"

    async def _evaluate_loop(self) -> None:
        while True:
            now = time.time()
            period = self.period_s
            # just after the next period boundary, as CloudWatch evaluates on the minute
            await asyncio.sleep((int(now / period) + 1) * period - now + min(0.02, period / 20))
            now = time.time()
            for alarm in list(self.alarms.values()):
                for t in alarm.evaluate(now):
                    self.on_event(f"alarm {alarm.name}: {t.old} -> {t.new}")
                    asyncio.ensure_future(self._publish(alarm, t.old, t.new, t.reason, t.at))

    async def _publish(self, alarm: Alarm, old: str, new: str, reason: str, at: float) -> None:
        """The alarm's actions: ALARM (AlarmActions) and OK (OKActions) go to the topic."""
        if new not in (ALARM, OK) or (new == OK and old != ALARM):
            return
        body = {
            "Action": "Publish",
            "TopicArn": TOPIC_ARN,
            "Subject": f'{new}: "{alarm.name}"',
            "Message": json.dumps(alarm_notification(alarm.as_dict(), old, new, reason, at)),
        }
        try:
            await post_json(self.topic.url, body)
        except (OSError, TimeoutError, ValueError, IndexError) as exc:
            self.on_event(f"alarm {alarm.name}: publish to SNS failed ({exc})")


def active(primary_dir: Path | str) -> ExternalMonitoring | None:
    """The running external monitoring of the primary sandbox at ``primary_dir``, if any."""
    with _ACTIVE_LOCK:
        found = _ACTIVE.get(str(Path(primary_dir).resolve()))
    return found if found is not None and found.running else None


__all__ = [
    "DEFAULTS",
    "HEALTHY_SHARE",
    "ExternalMonitoring",
    "HealthCheck",
    "active",
    "route53_alarms",
]

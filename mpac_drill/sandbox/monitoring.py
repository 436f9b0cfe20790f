"""The sandbox's monitoring: metrics measured from the real processes, alarms, SNS, pager.

Run inside the daemon (``daemon.py``). Every ``alarms.period_s / 10`` it publishes the
metrics the runbook's alarms watch, measured from the sandbox's processes:

- ``RunningTaskCount`` (ECS/ContainerInsights, per ``ServiceName``): the service's tasks
  whose process runs and whose ALB health check passes;
- ``DatabaseConnections`` (AWS/RDS): client sessions on the PostgreSQL primary
  (``pg_stat_activity``), the harness's own excluded; ``ReadLatency``: the time of a read on
  the primary, in seconds; both missing while there is no primary;
- ``CacheHits`` (AWS/ElastiCache): keyspace hits on the Redis primary since the last sample
  (``INFO stats``); ``EngineCPUUtilization``: the primary's main-thread CPU share in percent
  (``INFO cpu``); both missing while the primary does not answer;
- an alarm on any other metric is not created by the daemon: Route53's health check
  status is played outside the "region" by the region drill (``healthcheck.py``), and any
  other is not played on the sandbox (a drill naming it reports "not played", not missing).

At each period's end the alarms (``alarms.py``) are evaluated; each transition is published
to the SNS topic (``pager.py``), which delivers it to the pager. The alarm definitions are
the catalog's, with the target's ``alarms.absent`` and ``alarms.overrides`` applied, each
period run as ``alarms.period_s`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import psycopg

from mpac_drill.config import AlarmDefinition, load_catalog
from mpac_drill.sandbox.alarms import ALARM, Alarm, sandbox_definitions
from mpac_drill.sandbox.pager import Pager, SnsTopic, alarm_notification, post_json

log = logging.getLogger("mpac_drill.sandbox")
TOPIC_ARN = "arn:aws:sns:local:000000000000:mpac-alarms"
#: The metrics the sandbox measures (an alarm on any other is not created here), each with
#: the sampler that measures it (``_sample_source``).
SOURCE = {
    "RunningTaskCount": "ecs",
    "DatabaseConnections": "postgres",
    "ReadLatency": "postgres",
    "CacheHits": "redis",
    "EngineCPUUtilization": "redis",
}
MEASURED = tuple(SOURCE)
DEFAULTS = {"period_s": 0.5, "absent": [], "overrides": {}}
PAGER_DEFAULTS = {"ack_delay_s": 3.0}


class Monitoring:
    """Metrics, alarms, the SNS topic and the pager of one sandbox."""

    def __init__(
        self,
        *,
        daemon: Any,
        alarms: dict[str, Any] | None,
        pager: dict[str, Any] | None,
        on_event: Callable[[str], None],
    ) -> None:
        self.daemon = daemon
        self.on_event = on_event
        self.settings = {**DEFAULTS, **(alarms or {})}
        routing_key = secrets.token_hex(16)
        self.pager = Pager(
            routing_key=routing_key,
            ack_delay_s=float({**PAGER_DEFAULTS, **(pager or {})}["ack_delay_s"]),
            on_event=on_event,
        )
        self.topic = SnsTopic(arn=TOPIC_ARN, subscriber="", routing_key=routing_key)
        self.topic.on_event = on_event
        self.alarms: dict[str, Alarm] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._pg: psycopg.AsyncConnection | None = None
        self._pg_port: int | None = None
        self._redis_last: dict[str, tuple[float, float]] = {}
        self._catalog: list[AlarmDefinition] = load_catalog().alarms()
        self.configure(self.settings)

    # ------------------------------------------------------------ configuration

    def configure(self, settings: dict[str, Any]) -> None:
        """(Re)create the alarms from the catalog and ``settings`` (``alarms.*``)."""
        self.settings = {**DEFAULTS, **settings}
        period = float(self.settings["period_s"])
        now = time.time()
        before = getattr(self, "alarms", {})
        self.alarms = {
            # an alarm whose definition and period did not change keeps its state and data
            a.name: (
                before[a.name]
                if a.name in before
                and before[a.name].definition == a
                and before[a.name].period_s == period
                else Alarm(definition=a, period_s=period, created_at=now)
            )
            for a in sandbox_definitions(
                [a for a in self._catalog if a.metric in MEASURED],
                absent=list(self.settings["absent"] or []),
                overrides=dict(self.settings["overrides"] or {}),
            )
        }

    def tune(self, wanted: dict[str, Any]) -> None:
        """Apply ``alarms.*`` and ``pager.ack_delay_s`` from ``tuning.json`` when changed."""
        keys = ("period_s", "absent", "overrides")
        alarms = {k: wanted[f"alarms.{k}"] for k in keys if f"alarms.{k}" in wanted}
        if alarms and {**self.settings, **alarms} != self.settings:
            self.configure({**self.settings, **alarms})
            self.on_event(f"alarms: re-created ({', '.join(self.alarms) or 'none'})")
        if "pager.ack_delay_s" in wanted:
            self.pager.ack_delay_s = float(wanted["pager.ack_delay_s"])

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.pager.start()
        self.topic.subscriber = f"{self.pager.url}/v2/enqueue"
        await self.topic.start()
        self._tasks = [
            asyncio.ensure_future(self._sample_loop()),
            asyncio.ensure_future(self._evaluate_loop()),
        ]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._pg is not None:
            with contextlib.suppress(Exception):
                await self._pg.close()
        await self.topic.stop()
        await self.pager.stop()

    def state(self) -> dict[str, Any]:
        """What ``state.json`` shows under ``detection``."""
        return {
            "period_s": float(self.settings["period_s"]),
            "alarms": [a.as_dict() for a in self.alarms.values()],
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

    # ------------------------------------------------------------ loops

    async def _sample_loop(self) -> None:
        """One sampler per source (ECS, PostgreSQL, Redis), so a source that stalls (a
        database read waiting out its timeout while the primary is down) delays only its
        own metrics: a stall of one must not show as missing data of another."""
        samplers = [
            asyncio.ensure_future(self._sample_source(source)) for source in set(SOURCE.values())
        ]
        try:
            await asyncio.gather(*samplers)
        finally:
            for t in samplers:
                t.cancel()

    async def _sample_source(self, source: str) -> None:
        while True:
            interval = max(0.05, float(self.settings["period_s"]) / 10)
            cache: dict[tuple[str, str], float | None] = {}
            for alarm in list(self.alarms.values()):
                d = alarm.definition
                if SOURCE.get(d.metric) != source:
                    continue
                key = (d.metric, ",".join(f"{k}={v}" for k, v in sorted(d.dimensions.items())))
                if key not in cache:
                    try:
                        cache[key] = await self._measure(d)
                    except Exception as exc:  # noqa: BLE001 - a metric failing is missing data
                        log.debug("metric %s: %s", key, exc)
                        cache[key] = None
                alarm.add_sample(time.time(), cache[key])
            await asyncio.sleep(interval)

    async def _evaluate_loop(self) -> None:
        while True:
            period = float(self.settings["period_s"])
            now = time.time()
            # just after the next period boundary, as CloudWatch evaluates on the minute
            await asyncio.sleep((int(now / period) + 1) * period - now + min(0.02, period / 20))
            now = time.time()
            for alarm in list(self.alarms.values()):
                for t in alarm.evaluate(now):
                    self.on_event(f"alarm {alarm.name}: {t.old} -> {t.new}")
                    asyncio.ensure_future(self._publish(alarm, t.old, t.new, t.reason, t.at))

    async def _publish(self, alarm: Alarm, old: str, new: str, reason: str, at: float) -> None:
        """The alarm's actions: ALARM (AlarmActions) and OK (OKActions) go to the topic."""
        if new not in (ALARM, "OK") or (new == "OK" and old != ALARM):
            return
        message = alarm_notification(alarm.as_dict(), old, new, reason, at)
        import json

        body = {
            "Action": "Publish",
            "TopicArn": TOPIC_ARN,
            "Subject": f'{new}: "{alarm.name}"',
            "Message": json.dumps(message),
        }
        try:
            await post_json(self.topic.url, body)
        except (OSError, TimeoutError, ValueError, IndexError) as exc:
            self.on_event(f"alarm {alarm.name}: publish to SNS failed ({exc})")

    # ------------------------------------------------------------ metrics

    async def _measure(self, d: AlarmDefinition) -> float | None:
        if d.metric == "RunningTaskCount":
            return self._running_tasks(d.dimensions.get("ServiceName", ""))
        if d.metric in ("DatabaseConnections", "ReadLatency"):
            return await self._postgres(d.metric)
        if d.metric in ("CacheHits", "EngineCPUUtilization"):
            return await self._redis(d.metric)
        return None

    def _running_tasks(self, service: str) -> float | None:
        ecs, albs = self.daemon.ecs, self.daemon.albs
        if ecs is None or service not in ecs.services or service not in albs:
            return None
        health = albs[service].health()
        return float(sum(1 for t in ecs.services[service].tasks if t.pid and health.get(t.name)))

    async def _postgres(self, metric: str) -> float | None:
        pg = self.daemon.pg
        primary = pg.primary() if pg is not None else None
        if primary is None:
            return None
        if self._pg is None or self._pg.closed or self._pg_port != primary.port:
            if self._pg is not None:
                with contextlib.suppress(Exception):
                    await self._pg.close()
            from mpac_drill.sandbox.postgres import conninfo

            self._pg = await asyncio.wait_for(
                psycopg.AsyncConnection.connect(
                    conninfo(primary.port, pg.password, "smartpos"), autocommit=True
                ),
                1.0,
            )
            self._pg_port = primary.port
        try:
            started = time.perf_counter()
            cur = await asyncio.wait_for(
                self._pg.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                    " AND pid <> pg_backend_pid()"
                ),
                1.0,
            )
            row = await cur.fetchone()
            latency = time.perf_counter() - started
        except Exception:
            with contextlib.suppress(Exception):
                await self._pg.close()
            self._pg = None
            raise
        return float(row[0]) if metric == "DatabaseConnections" and row else latency

    async def _redis(self, metric: str) -> float | None:
        group = self.daemon.redis
        primary = next(
            (n for n in getattr(group, "nodes", []) if n.role == "primary" and n.pid), None
        )
        if group is None or primary is None:
            return None
        client = group.client(primary, timeout_s=0.3)
        try:
            section = "stats" if metric == "CacheHits" else "cpu"
            info = await client.info(section)
        finally:
            await client.aclose()
        now = time.monotonic()
        if metric == "CacheHits":
            value = float(info.get("keyspace_hits", 0))
        else:
            value = float(
                info.get("used_cpu_user_main_thread", info.get("used_cpu_user", 0))
            ) + float(info.get("used_cpu_sys_main_thread", info.get("used_cpu_sys", 0)))
        key = f"{metric}@{primary.port}"
        last = self._redis_last.get(key)
        self._redis_last[key] = (now, value)
        if last is None or value < last[1]:
            return None  # the first sample of a (new) primary: no delta yet
        if metric == "CacheHits":
            return value - last[1]
        return 100.0 * (value - last[1]) / max(now - last[0], 1e-6)


__all__ = ["Monitoring", "TOPIC_ARN"]

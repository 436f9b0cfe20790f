"""The sandbox's "SNS → PagerDuty": an alarm's action reaches on-call over real HTTP.

- :class:`SnsTopic` listens on loopback for SNS ``Publish`` requests (JSON: ``TopicArn``,
  ``Subject``, ``Message``: CloudWatch's alarm notification as a JSON string) and delivers
  each message to its subscriber, the pager's Events API endpoint, as PagerDuty's
  CloudWatch integration does (an ALARM triggers, an OK resolves; one ``dedup_key`` per alarm).
- :class:`Pager` answers PagerDuty Events API v2 (``POST /v2/enqueue``: ``routing_key``,
  ``event_action`` trigger|resolve, ``dedup_key``, ``payload``; 202 ``{"status": "success",
  "dedup_key": ...}``). A trigger opens an incident (a second one with the same
  ``dedup_key`` while it is open only adds to it); the on-call engineer of the sandbox
  acknowledges it ``pager.ack_delay_s`` later: the ground truth of people's response (a
  page is always acknowledged; a resolve that comes first closes the incident right after
  the acknowledgement). Its
  incidents and their log entries (trigger, acknowledge, resolve) read as PagerDuty REST
  API v2 shapes (``GET /incidents``, ``GET /incidents/{id}/log_entries``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mpac_drill.timefmt import iso

Handler = Callable[[str, str, Any], Awaitable[tuple[int, Any]]]
_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found"}


def _utc(t: float) -> str:
    from datetime import UTC, datetime

    return iso(datetime.fromtimestamp(t, UTC))


class JsonServer:
    """A minimal HTTP/1.1 JSON server on loopback (one request per connection)."""

    def __init__(self, handler: Handler, port: int = 0) -> None:
        self._handler = handler
        self.port = port
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
            length = 0
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip() or 0)
            raw = await reader.readexactly(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                status, out = 400, {"status": "invalid event", "message": "body is not JSON"}
            else:
                status, out = await self._handler(method, target, body)
            data = json.dumps(out).encode()
            writer.write(
                f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        except ValueError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


async def post_json(url: str, body: Any, timeout_s: float = 2.0) -> tuple[int, Any]:
    """POST ``body`` as JSON to a loopback ``url``; (status, parsed answer)."""
    parts = urlsplit(url)
    data = json.dumps(body).encode()
    request = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + data

    async def roundtrip() -> bytes:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            writer.write(request)
            await writer.drain()
            return await reader.read()
        finally:
            writer.close()

    raw = await asyncio.wait_for(roundtrip(), timeout_s)
    head, _, payload = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(payload) if payload else None


# ---------------------------------------------------------------- SNS


@dataclass
class SnsTopic:
    """One SNS topic with one HTTP(S) subscriber (the pager's Events API endpoint)."""

    arn: str
    subscriber: str  # the pager's /v2/enqueue URL
    routing_key: str
    on_event: Callable[[str], None] = lambda msg: None
    delivered: int = 0
    failed: int = 0
    server: JsonServer | None = None

    async def start(self) -> None:
        self.server = JsonServer(self._handle)
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    async def _handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method != "POST" or not isinstance(body, dict) or body.get("TopicArn") != self.arn:
            return 400, {"Error": {"Code": "InvalidParameter", "Message": "unknown topic"}}
        try:
            alarm = json.loads(body["Message"])
            event = _pagerduty_event(alarm, self.routing_key)
        except (KeyError, TypeError, ValueError):
            return 400, {"Error": {"Code": "InvalidParameter", "Message": "bad Message"}}
        message_id = f"sns-{time.time_ns()}"
        asyncio.ensure_future(self._deliver(event))
        return 200, {"PublishResponse": {"PublishResult": {"MessageId": message_id}}}

    async def _deliver(self, event: dict[str, Any]) -> None:
        try:
            status, _ = await post_json(self.subscriber, event)
            ok = status == 202
        except (OSError, TimeoutError, ValueError, IndexError):
            ok = False
        if ok:
            self.delivered += 1
        else:
            self.failed += 1
            self.on_event(f"sns: delivery to the pager failed ({event['dedup_key']})")


def _pagerduty_event(alarm: dict[str, Any], routing_key: str) -> dict[str, Any]:
    """PagerDuty's CloudWatch integration: ALARM → trigger, OK → resolve."""
    name = str(alarm["AlarmName"])
    action = "trigger" if alarm["NewStateValue"] == "ALARM" else "resolve"
    return {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": f"cloudwatch/{name}",
        "payload": {
            "summary": f"{name}: {alarm.get('NewStateReason', '')}"[:1024],
            "source": "cloudwatch",
            "severity": "critical",
            "timestamp": alarm.get("StateChangeTime"),
            "custom_details": {"alarm": name, "state": alarm["NewStateValue"]},
        },
    }


def alarm_notification(
    alarm: dict[str, Any], old: str, new: str, reason: str, at: float
) -> dict[str, Any]:
    """CloudWatch's alarm notification (the SNS ``Message``) for one transition."""
    return {
        "AlarmName": alarm["name"],
        "NewStateValue": new,
        "OldStateValue": old,
        "NewStateReason": reason,
        "StateChangeTime": _utc(at),
        "Trigger": {
            "MetricName": alarm["metric"],
            "Namespace": alarm["namespace"],
            "Statistic": alarm["statistic"].upper(),
            "ComparisonOperator": alarm["comparison"],
            "Threshold": alarm["threshold"],
            "Period": alarm["period_s"],
            "EvaluationPeriods": alarm["evaluation_periods"],
        },
    }


# ---------------------------------------------------------------- the pager


@dataclass
class Incident:
    number: int
    title: str
    dedup_key: str
    created_at: float
    acknowledged_at: float | None = None
    resolved_at: float | None = None
    alerts: int = 1
    resolve_pending: bool = False  # the alert resolved before on-call acknowledged

    @property
    def id(self) -> str:
        return f"PSBX{self.number:04d}"

    @property
    def status(self) -> str:
        if self.resolved_at is not None:
            return "resolved"
        return "acknowledged" if self.acknowledged_at is not None else "triggered"

    def rest(self, service_id: str) -> dict[str, Any]:
        """PagerDuty REST API v2's incident shape (the fields a reader uses)."""
        return {
            "id": self.id,
            "type": "incident",
            "incident_number": self.number,
            "title": self.title,
            "status": self.status,
            "urgency": "high",
            "incident_key": self.dedup_key,
            "created_at": _utc(self.created_at),
            "last_status_change_at": _utc(
                self.resolved_at or self.acknowledged_at or self.created_at
            ),
            "service": {"id": service_id, "type": "service_reference"},
            "html_url": f"http://pager.sandbox/incidents/{self.id}",
        }

    def log_entries(self) -> list[dict[str, Any]]:
        """PagerDuty REST API v2's log entries of this incident (oldest first)."""
        out = [("trigger_log_entry", self.created_at)]
        if self.acknowledged_at is not None:
            out.append(("acknowledge_log_entry", self.acknowledged_at))
        if self.resolved_at is not None:
            out.append(("resolve_log_entry", self.resolved_at))
        return [
            {
                "id": f"{self.id}-{i}",
                "type": kind,
                "created_at": _utc(at),
                "incident": {"id": self.id, "type": "incident_reference"},
            }
            for i, (kind, at) in enumerate(out)
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "dedup_key": self.dedup_key,
            "status": self.status,
            "created_at": self.created_at,
            "acknowledged_at": self.acknowledged_at,
            "resolved_at": self.resolved_at,
            "alerts": self.alerts,
        }


@dataclass
class Pager:
    """PagerDuty as on-call sees it: incidents opened by events, acknowledged after
    ``ack_delay_s`` by the sandbox's on-call engineer."""

    routing_key: str
    ack_delay_s: float = 30.0
    service_id: str = "PSANDBX"
    incidents: list[Incident] = field(default_factory=list)
    on_event: Callable[[str], None] = lambda msg: None
    server: JsonServer | None = None
    _acks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self.server = JsonServer(self._handle)
        await self.server.start()

    async def stop(self) -> None:
        for t in list(self._acks):
            t.cancel()
        if self.server is not None:
            await self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def _open(self, dedup_key: str) -> Incident | None:
        return next(
            (i for i in self.incidents if i.dedup_key == dedup_key and i.resolved_at is None),
            None,
        )

    def event(self, body: dict[str, Any], now: float) -> tuple[int, dict[str, Any]]:
        """One Events API v2 event: (HTTP status, answer)."""
        action, key = body.get("event_action"), body.get("dedup_key")
        if body.get("routing_key") != self.routing_key:
            return 400, {"status": "invalid event", "message": "Event object is invalid"}
        if action not in ("trigger", "resolve", "acknowledge") or not isinstance(key, str):
            return 400, {"status": "invalid event", "message": "Event object is invalid"}
        incident = self._open(key)
        if action == "trigger":
            if incident is not None:
                incident.alerts += 1
            else:
                summary = str((body.get("payload") or {}).get("summary", key))
                incident = Incident(len(self.incidents) + 1, summary, key, now)
                self.incidents.append(incident)
                del self.incidents[:-100]
                self.on_event(f"pager: incident {incident.id} triggered ({key})")
                task = asyncio.ensure_future(self._acknowledge(incident))
                self._acks.add(task)
                task.add_done_callback(self._acks.discard)
        elif incident is not None and action == "resolve":
            if incident.acknowledged_at is None:
                incident.resolve_pending = True  # on-call still acknowledges the page
            else:
                incident.resolved_at = now
                self.on_event(f"pager: incident {incident.id} resolved")
        return 202, {"status": "success", "message": "Event processed", "dedup_key": key}

    async def _acknowledge(self, incident: Incident) -> None:
        await asyncio.sleep(max(0.0, incident.created_at + self.ack_delay_s - time.time()))
        incident.acknowledged_at = time.time()
        self.on_event(f"pager: incident {incident.id} acknowledged by on-call")
        if incident.resolve_pending:
            incident.resolved_at = incident.acknowledged_at
            self.on_event(f"pager: incident {incident.id} resolved (its alarm is OK)")

    async def _handle(self, method: str, target: str, body: Any) -> tuple[int, Any]:
        path = urlsplit(target).path
        if method == "POST" and path == "/v2/enqueue" and isinstance(body, dict):
            return self.event(body, time.time())
        if method == "GET" and path == "/incidents":
            rows = [i.rest(self.service_id) for i in self.incidents]
            return 200, {"incidents": rows, "limit": 100, "offset": 0, "more": False}
        if method == "GET" and path.startswith("/incidents/") and path.endswith("/log_entries"):
            wanted = path.split("/")[2]
            for i in self.incidents:
                if i.id == wanted:
                    entries = i.log_entries()
                    return 200, {"log_entries": entries, "limit": 100, "offset": 0, "more": False}
        return 404, {"error": {"message": "Not Found", "code": 2100}}


__all__ = [
    "Incident",
    "JsonServer",
    "Pager",
    "SnsTopic",
    "alarm_notification",
    "post_json",
]

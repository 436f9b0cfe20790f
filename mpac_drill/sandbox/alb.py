"""The sandbox's "ALB": one listener per service that routes only to healthy tasks.

Like an ALB target group, each task is health-checked on ``/health`` every
``alb.health_interval_s``; it becomes healthy after ``healthy_threshold`` consecutive
successes and unhealthy after ``unhealthy_threshold`` failures. A request goes round-robin to
a healthy task; a refused connection marks that task unhealthy at once and the next one is
tried; with no healthy task the listener answers 503 immediately (a shared listening socket
alone would queue connections and hide the outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

_REASONS = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
MAX_HEAD = 64 * 1024


@dataclass
class AlbTarget:
    name: str
    port: int
    healthy: bool = False
    ok_streak: int = 0
    fail_streak: int = 0


@dataclass
class AlbListener:
    service: str
    port: int
    targets: list[AlbTarget]
    health_interval_s: float = 0.1
    healthy_threshold: int = 2
    unhealthy_threshold: int = 1
    health_timeout_s: float = 0.5
    upstream_timeout_s: float = 10.0
    _server: asyncio.Server | None = None
    _rr: itertools.count = field(default_factory=itertools.count)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True, backlog=512
        )
        self._tasks = [asyncio.ensure_future(self._check_loop(t)) for t in self.targets]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    def health(self) -> dict[str, bool]:
        return {t.name: t.healthy for t in self.targets}

    # ------------------------------------------------------------ health checks

    async def _check_loop(self, target: AlbTarget) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            ok = await self._probe(target.port)
            self._record(target, ok)
            next_at += self.health_interval_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if loop.time() - next_at > self.health_interval_s:  # fell behind: don't burst
                next_at = loop.time()

    def _record(self, target: AlbTarget, ok: bool) -> None:
        if ok:
            target.ok_streak += 1
            target.fail_streak = 0
            if target.ok_streak >= self.healthy_threshold:
                target.healthy = True
        else:
            target.fail_streak += 1
            target.ok_streak = 0
            if target.fail_streak >= self.unhealthy_threshold:
                target.healthy = False

    async def _probe(self, port: int) -> bool:
        try:
            status, _ = await asyncio.wait_for(
                _roundtrip(port, b"GET /health HTTP/1.1\r\nHost: alb\r\nConnection: close\r\n\r\n"),
                self.health_timeout_s,
            )
            return 200 <= status < 300
        except (OSError, TimeoutError, ValueError):
            return False

    # ------------------------------------------------------------ proxying

    def _pick(self, exclude: set[str]) -> AlbTarget | None:
        healthy = [t for t in self.targets if t.healthy and t.name not in exclude]
        if not healthy:
            return None
        return healthy[next(self._rr) % len(healthy)]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.split(b"\r\n")
                headers = _parse_headers(lines[1:])
                length = int(headers.get(b"content-length", b"0") or 0)
                body = await reader.readexactly(length) if length else b""
                keep_alive = headers.get(b"connection", b"").lower() != b"close"
                upstream = _rewrite_request(lines[0], lines[1:]) + body
                response = await self._forward(upstream)
                writer.write(_set_keep_alive(response, keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _forward(self, request: bytes) -> bytes:
        tried: set[str] = set()
        while (target := self._pick(tried)) is not None:
            tried.add(target.name)
            try:
                _, raw = await asyncio.wait_for(
                    _roundtrip(target.port, request), self.upstream_timeout_s
                )
                return raw
            except (ConnectionRefusedError, ConnectionResetError, ValueError):
                self._record(target, False)  # the task is gone: stop routing to it now
                target.healthy = False
            except (OSError, TimeoutError):
                return _error(504, self.service, "upstream timed out")
        return _error(503, self.service, "no healthy target")


async def _roundtrip(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    if not raw.startswith(b"HTTP/"):
        raise ValueError("no HTTP response")
    return int(raw.split(b" ", 2)[1]), raw


def _parse_headers(lines: list[bytes]) -> dict[bytes, bytes]:
    out = {}
    for ln in lines:
        if b":" in ln:
            k, v = ln.split(b":", 1)
            out[k.strip().lower()] = v.strip()
    return out


def _rewrite_request(request_line: bytes, header_lines: list[bytes]) -> bytes:
    kept = [ln for ln in header_lines if ln and not ln.lower().startswith(b"connection:")]
    return b"\r\n".join([request_line, *kept, b"Connection: close", b"", b""])


def _set_keep_alive(raw: bytes, keep_alive: bool) -> bytes:
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
    lines.append(b"Connection: keep-alive" if keep_alive else b"Connection: close")
    return b"\r\n".join(lines) + sep + body


def _error(status: int, service: str, why: str) -> bytes:
    body = json.dumps({"ok": False, "alb": service, "error": why}).encode()
    return (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Mpac-Alb: {service}\r\n\r\n"
    ).encode() + body

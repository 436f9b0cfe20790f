"""The sandbox's "Route53": one stable front-door address per service that outlives a region.

Users, locust and the observer reach the platform through ``http://127.0.0.1:<front door
port>``; each connection is forwarded (plain TCP, both directions) to the ALB port of the
region the service's *record* points at. :meth:`FrontDoor.change` is the Route53 change of
the region drill (runbook §1.4 step 3): new connections go to the DR region's ALBs, while
connections already open stay where they were, as resolved DNS answers do. A connection
to a region that is gone is closed at once (the client sees no answer).

Run by the harness for the drill's duration, in a background thread with its own event
loop: it stops with the drill, so nothing of it can outlive the harness.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass
from typing import Any

_CHUNK = 64 * 1024


@dataclass
class Record:
    service: str
    port: int  # the front door's own port
    target_port: int  # the ALB port it forwards to
    region: str


class FrontDoor:
    """A TCP forwarder per service; ``records``: service → (front port, ALB port)."""

    def __init__(self, records: dict[str, tuple[int, int]], region: str) -> None:
        self.records = {
            name: Record(name, port, target, region) for name, (port, target) in records.items()
        }
        self.changes: list[dict[str, Any]] = []
        #: the region drill's Route53 health checks, alarm and pager, held beside the front
        #: door, outside the region (``healthcheck.ExternalMonitoring``; set by the drill)
        self.health_checks: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.Server] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # ------------------------------------------------------------ harness side

    def start(self, timeout_s: float = 10) -> None:
        """Listen on every front-door port (raises OSError when one is taken)."""
        self._thread = threading.Thread(target=self._run, daemon=True, name="route53")
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise OSError("route53 front door did not start")
        if self._error is not None:
            self.stop()
            raise self._error

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def urls(self) -> dict[str, str]:
        """Base URL per service: the only addresses users know."""
        return {r.service: f"http://127.0.0.1:{r.port}" for r in self.records.values()}

    def change(self, targets: dict[str, int], region: str) -> dict[str, Any]:
        """Point each service's record at ``targets[service]`` (an ALB port) in ``region``."""
        before = {r.service: f"{r.region}:{r.target_port}" for r in self.records.values()}
        for name, port in targets.items():
            rec = self.records[name]
            rec.target_port, rec.region = int(port), region  # read per connection
        change = {
            "region": region,
            "before": before,
            "after": {n: f"{region}:{p}" for n, p in targets.items()},
        }
        self.changes.append(change)
        return change

    def region(self) -> str:
        regions = {r.region for r in self.records.values()}
        return regions.pop() if len(regions) == 1 else ",".join(sorted(regions))

    # ------------------------------------------------------------ the loop thread

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            for rec in self.records.values():
                server = loop.run_until_complete(
                    asyncio.start_server(
                        self._handler(rec), "127.0.0.1", rec.port, reuse_address=True, backlog=512
                    )
                )
                self._servers.append(server)
        except OSError as exc:
            self._error = exc
        self._ready.set()
        if self._error is None:
            loop.run_forever()
        for server in self._servers:
            server.close()
        for task in asyncio.all_tasks(loop):
            task.cancel()
        with contextlib.suppress(Exception):
            loop.run_until_complete(asyncio.sleep(0))
        loop.close()

    def _handler(self, rec: Record) -> Any:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", rec.target_port), 2.0
                )
            except (OSError, TimeoutError):
                writer.close()  # the region behind the record does not answer
                return
            await asyncio.gather(
                _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
            )

        return handle


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


__all__ = ["FrontDoor", "Record"]

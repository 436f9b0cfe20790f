"""The observer: samples every service's health endpoint at a fixed interval.

One thread per endpoint, each on a fixed schedule (``next += interval``, so latency does not
drift the grid), recording the monotonic time, the UTC time, ok, HTTP status and latency.
From these samples ``probes.recovery`` computes detection and RTO; ``timeline.csv`` keeps
them for the report.
"""

from __future__ import annotations

import csv
import http.client
import json
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlsplit

from mpac_drill.measure.recovery import Sample
from mpac_drill.timefmt import iso

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext

TIMELINE_COLUMNS = ("t_utc", "t_rel_s", "service", "ok", "status", "latency_ms")


class RawSample(TypedDict):
    mono: float
    utc: datetime
    service: str
    ok: bool
    status: int
    latency_ms: float


def utc_iso(dt: datetime) -> str:
    return iso(dt)


def probe_http(url: str, timeout_s: float) -> tuple[bool, int]:
    """One GET; ``(ok, status)`` with status 0 when nothing answered."""
    parts = urlsplit(url)
    conn_cls = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    conn = conn_cls(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        return 200 <= resp.status < 300, resp.status
    except (OSError, http.client.HTTPException):
        return False, 0
    finally:
        conn.close()


def all_answer(endpoints: dict[str, str], timeout_s: float) -> bool:
    """Whether every URL of ``endpoints`` answers 2xx within ``timeout_s``."""
    return all(probe_http(url, timeout_s)[0] for url in endpoints.values())


def request_json(
    url: str,
    method: str = "GET",
    body: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    timeout_s: float = 1.0,
) -> tuple[int, dict[str, str], Any]:
    """One HTTP exchange with a JSON body: ``(status, headers, payload)``; status 0 when
    nothing answered, payload ``{}`` when the answer is not JSON. ``token`` goes as a
    Bearer header and nowhere else."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    headers = {"Content-Type": "application/json", "Connection": "close"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request(
            method, path, body=json.dumps(body) if body is not None else None, headers=headers
        )
        resp = conn.getresponse()
        raw = resp.read()
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {}
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload
    except (OSError, http.client.HTTPException):
        return 0, {}, {}
    finally:
        conn.close()


def paced(stop: threading.Event, interval_s: float, max_duration_s: float) -> Iterator[int]:
    """1, 2, 3, ... one every ``interval_s`` on a fixed grid until ``stop`` is set or
    ``max_duration_s`` has passed; a step that overran goes at once and the grid restarts
    from it (no catch-up burst). The writers of the canary, the QR payments and the mpac-obs
    history pace themselves with it."""
    seq = 0
    start = next_at = time.monotonic()
    while not stop.is_set() and next_at - start < max_duration_s:
        seq += 1
        yield seq
        next_at += interval_s
        delay = next_at - time.monotonic()
        if delay < 0:
            next_at, delay = time.monotonic(), 0.0
        stop.wait(delay)


class Observer:
    """Samples ``endpoints`` (service → health URL) every ``interval_s`` until stopped."""

    def __init__(
        self,
        *,
        endpoints: dict[str, str],
        interval_s: float = 0.1,
        timeout_s: float = 1.0,
        max_duration_s: float = 3600,
    ) -> None:
        self.endpoints = dict(endpoints)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.max_duration_s = max_duration_s
        self._raw: list[RawSample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def services(self) -> list[str]:
        return list(self.endpoints)

    def start(self) -> None:
        for name, url in self.endpoints.items():
            t = threading.Thread(
                target=self._loop, args=(name, url), daemon=True, name=f"observer-{name}"
            )
            t.start()
            self._threads.append(t)

    def _loop(self, name: str, url: str) -> None:
        start = next_at = time.monotonic()
        while not self._stop.is_set() and next_at - start < self.max_duration_s:
            mono = time.monotonic()
            utc = datetime.now(UTC)
            ok, status = probe_http(url, self.timeout_s)
            latency = (time.monotonic() - mono) * 1000
            with self._lock:
                self._raw.append(
                    RawSample(
                        mono=mono, utc=utc, service=name, ok=ok, status=status, latency_ms=latency
                    )
                )
            next_at += self.interval_s
            delay = next_at - time.monotonic()
            if delay < 0:  # a slow answer overran the slot: resume the grid from now
                next_at = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout_s + 1)

    def raw(self) -> list[RawSample]:
        with self._lock:
            return sorted(self._raw, key=lambda s: s["mono"])

    def samples(self, *, rel_to: float, since: float | None = None) -> list[Sample]:
        return [
            Sample(t=s["mono"] - rel_to, service=s["service"], ok=s["ok"])
            for s in self.raw()
            if since is None or s["mono"] >= since
        ]

    def latest(self) -> dict[str, bool]:
        out: dict[str, bool] = {}
        for s in self.raw()[-3 * len(self.endpoints) :]:
            out[s["service"]] = s["ok"]
        return out

    def write_csv(self, path: Path, rel_to: float | None) -> None:
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(TIMELINE_COLUMNS)
            for s in self.raw():
                rel = "" if rel_to is None else f"{s['mono'] - rel_to:.4f}"
                w.writerow(
                    [
                        utc_iso(s["utc"]),
                        rel,
                        s["service"],
                        int(s["ok"]),
                        s["status"],
                        f"{s['latency_ms']:.2f}",
                    ]
                )


def start_observation(drill: DrillContext, *, canary: bool, canary_asked: bool) -> dict[str, Any]:
    """Start the observer and (``canary``) the RPO canary, then hold a steady baseline of
    ``drill.warmup_s`` (plus a random part of one sampling interval, so the fault does not
    always land at the same point between two samples). In a dry run nothing starts: the
    platform records the canary's planned calls only."""
    if drill.dry_run:
        if canary:
            drill.start_canary()  # a dry run's plan: reads and connects nothing
        return {"dry_run": True}
    drill.phase("observing")
    drill.start_observer()
    if canary:
        drill.start_canary()
    elif canary_asked:
        drill.note(
            "canary not run: on AWS only a drill that asks for it (canary_on_aws) writes "
            "canary rows into the database"
        )
    assert drill.observer is not None
    warmup = float(drill.setting("drill.warmup_s")) + random.uniform(0, drill.observer.interval_s)
    end = time.monotonic() + warmup
    while time.monotonic() < end:  # a steady baseline before the fault
        drill.check_stop_conditions()
        time.sleep(0.05)
    return {
        "endpoints": drill.observer.endpoints,
        "canary": drill.canary is not None,
        "warmup_s": warmup,
    }


__all__ = [
    "all_answer",
    "start_observation",
    "Observer",
    "RawSample",
    "TIMELINE_COLUMNS",
    "paced",
    "probe_http",
    "request_json",
    "utc_iso",
]

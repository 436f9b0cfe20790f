"""Realistic MPAC traffic for a drill: portal logins and token checks, POS orders, QR payments.

Each service listens on its own address, so every request uses an absolute URL from
``MPAC_PORTAL_URL``, ``MPAC_SMARTTAB_URL`` and ``MPAC_PGW_URL``. Besides locust's own CSV
files, every process that sends requests (the standalone process, or each worker) appends
per-second figures to ``$MPAC_LOAD_OUT/seconds-<pid>.csv`` (default: the current folder):
``second`` (UTC epoch), ``name`` (request type or ``Aggregated``), ``requests``,
``failures``, ``p95_ms``; a second is written once it is over, and the rest at quit.

Example::

    MPAC_PORTAL_URL=http://127.0.0.1:18080 MPAC_SMARTTAB_URL=http://127.0.0.1:18081 \\
    MPAC_PGW_URL=http://127.0.0.1:18082 MPAC_LOAD_OUT=/tmp/load \\
        python -m locust -f experiments/load/locustfile.py --headless -u 6 -r 6 --run-time 30s
"""

from __future__ import annotations

import csv
import math
import os
import random
import time
import uuid
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, between, events, task
from locust.env import Environment
from locust.runners import MasterRunner

PORTAL = os.environ.get("MPAC_PORTAL_URL", "http://127.0.0.1:18080").rstrip("/")
SMARTTAB = os.environ.get("MPAC_SMARTTAB_URL", "http://127.0.0.1:18081").rstrip("/")
PGW = os.environ.get("MPAC_PGW_URL", "http://127.0.0.1:18082").rstrip("/")
#: Think time between a user's requests, "min,max" seconds (default 0.02,0.1: ~15 req/s a user).
WAIT_S = tuple(float(x) for x in os.environ.get("MPAC_LOAD_WAIT_S", "0.02,0.1").split(","))
RETRY_SHARE = 0.10  # share of orders that are a POS terminal's retry of an earlier key
AGGREGATED = "Aggregated"
SECONDS_COLUMNS = ("second", "name", "requests", "failures", "p95_ms")


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class PerSecondStats:
    """Requests, failures and latencies per wall-clock second and request name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._times: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self._failures: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def record(self, name: str, response_time: float | None, failed: bool) -> None:
        second = int(time.time())
        self._times[second][name].append(float(response_time or 0.0))
        if failed:
            self._failures[second][name] += 1

    def flush(self, *, final: bool = False) -> None:
        """Append every finished second (every second when ``final``) to the CSV file."""
        now = int(time.time())
        done = sorted(s for s in self._times if final or s < now)
        if not done:
            return
        rows = []
        for second in done:
            by_name, failures = self._times.pop(second), self._failures.pop(second, {})
            for name in sorted(by_name):
                rows.append(
                    (
                        second,
                        name,
                        len(by_name[name]),
                        failures.get(name, 0),
                        round(p95(by_name[name]), 1),
                    )
                )
            every = [t for times in by_name.values() for t in times]
            rows.append(
                (second, AGGREGATED, len(every), sum(failures.values()), round(p95(every), 1))
            )
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(SECONDS_COLUMNS)
            writer.writerows(rows)


_stats: PerSecondStats | None = None


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    global _stats
    if isinstance(environment.runner, MasterRunner):
        return  # the master sends no requests; each worker writes its own file
    out = Path(os.environ.get("MPAC_LOAD_OUT", "."))
    _stats = PerSecondStats(out / f"seconds-{os.getpid()}.csv")

    def flusher() -> None:
        while True:
            gevent.sleep(1.0)
            _stats.flush()

    gevent.spawn(flusher)


@events.request.add_listener
def _on_request(
    name: str, response_time: float | None, exception: BaseException | None, **_: Any
) -> None:
    if _stats is not None:
        _stats.record(name, response_time, exception is not None)


@events.quitting.add_listener
def _on_quitting(**_: Any) -> None:
    if _stats is not None:
        _stats.flush(final=True)


@events.quit.add_listener
def _on_quit(**_: Any) -> None:
    """After SIGTERM users stop only after ``quitting``: write their last requests too."""
    if _stats is not None:
        _stats.flush(final=True)


class _MpacUser(FastHttpUser):
    abstract = True
    wait_time = between(WAIT_S[0], WAIT_S[-1])
    network_timeout = 5.0  # a request that hangs during an outage counts as failed
    connection_timeout = 2.0


class PortalUser(_MpacUser):
    """A back-office user: logs in, then the portal verifies the token on every page."""

    host = PORTAL
    token: str | None = None

    def on_start(self) -> None:
        self.login()

    def login(self) -> None:
        self.token = None
        with self.client.post(
            f"{PORTAL}/login",
            json={"user": f"user-{uuid.uuid4().hex[:8]}"},
            name="portal /login",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                self.token = response.json()["token"]
            else:
                response.failure(f"HTTP {response.status_code}")

    @task(10)
    def verify(self) -> None:
        if self.token is None:
            self.login()
            return
        with self.client.get(
            f"{PORTAL}/verify",
            name="portal /verify",
            catch_response=True,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as response:
            if response.status_code == 401:
                self.token = None  # log in again on the next turn
                response.failure("HTTP 401")

    @task(1)
    def relogin(self) -> None:
        self.login()


class SmarttabUser(_MpacUser):
    """A POS terminal sending orders; a share of them retry an earlier key (timeout retry)."""

    host = SMARTTAB

    def on_start(self) -> None:
        self.sent: deque[tuple[str, int]] = deque(maxlen=50)

    @task
    def order(self) -> None:
        if self.sent and random.random() < RETRY_SHARE:
            key, amount = random.choice(self.sent)
        else:
            key, amount = f"pos-{uuid.uuid4().hex}", random.randint(100, 50_000)
            self.sent.append((key, amount))
        with self.client.post(
            f"{SMARTTAB}/orders",
            name="smarttab /orders",
            catch_response=True,
            json={"idempotency_key": key, "amount": amount},
        ) as response:
            if response.status_code in (200, 201):
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")


class PgwUser(_MpacUser):
    """A kiosk taking QR payments through the payment gateway."""

    host = PGW

    def on_start(self) -> None:
        self.client_id = f"kiosk-{uuid.uuid4().hex[:8]}"

    @task
    def qr_payment(self) -> None:
        body = {
            "payment_id": f"qr-{uuid.uuid4().hex}",
            "amount": random.randint(100, 20_000),
            "client": self.client_id,
        }
        with self.client.post(
            f"{PGW}/payments/qr", name="pgw /payments/qr", catch_response=True, json=body
        ) as response:
            if response.status_code in (200, 201):
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")

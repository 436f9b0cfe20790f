"""Realistic MPAC traffic for a drill: portal logins and token checks, POS orders, QR payments.

Each service listens on its own address, so every request uses an absolute URL: the
master's (or standalone process's) ``--mpac-portal-url``, ``--mpac-smarttab-url`` and
``--mpac-pgw-url`` (default: ``MPAC_PORTAL_URL``, ``MPAC_SMARTTAB_URL``, ``MPAC_PGW_URL``),
which locust sends to every worker with each spawn message; so does ``--mpac-plan``, the
request-rate plan (JSON ``{"portal": [users, rps], ...}``): each user then paces itself with
locust's ``constant_throughput``. Without a plan users think 0.02-0.1 s between requests.

Besides locust's own CSV files, every process that sends requests appends per-second
figures to ``$MPAC_LOAD_OUT/seconds-<pid>.csv``: ``second`` (UTC epoch), ``name`` (request
type or ``Aggregated``), ``requests``, ``failures``, ``p95_ms``; and every process (master
too) its CPU share each second to ``$MPAC_LOAD_OUT/cpu-<pid>.csv`` (``second``, ``role``,
``cpu_pct``, psutil). A worker without ``MPAC_LOAD_OUT`` (one on another machine, started
with ``locust --worker -f - ...``) sends both to the master as locust messages instead,
which writes them as ``seconds-<worker>.csv`` and ``cpu-<worker>.csv``. A second is written
once it is over, and the rest at quit.

Example::

    MPAC_PORTAL_URL=http://127.0.0.1:18080 MPAC_SMARTTAB_URL=http://127.0.0.1:18081 \\
    MPAC_PGW_URL=http://127.0.0.1:18082 MPAC_LOAD_OUT=/tmp/load \\
        python -m locust -f experiments/load/locustfile.py --headless -u 6 -r 6 --run-time 30s
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
import uuid
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import gevent
import psutil
from locust import FastHttpUser, between, constant_throughput, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

PORTAL = os.environ.get("MPAC_PORTAL_URL", "http://127.0.0.1:18080").rstrip("/")
SMARTTAB = os.environ.get("MPAC_SMARTTAB_URL", "http://127.0.0.1:18081").rstrip("/")
PGW = os.environ.get("MPAC_PGW_URL", "http://127.0.0.1:18082").rstrip("/")
#: Think time between a user's requests, "min,max" seconds (default 0.02,0.1: ~15 req/s a user).
WAIT_S = tuple(float(x) for x in os.environ.get("MPAC_LOAD_WAIT_S", "0.02,0.1").split(","))
RETRY_SHARE = 0.10  # share of orders that are a POS terminal's retry of an earlier key
AGGREGATED = "Aggregated"
SECONDS_COLUMNS = ("second", "name", "requests", "failures", "p95_ms")
CPU_COLUMNS = ("second", "role", "cpu_pct")
SECONDS_MESSAGE = "mpac_seconds"  # worker -> master: {"seconds": rows, "cpu": rows}


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class PerSecondStats:
    """Requests, failures and latencies per wall-clock second and request name."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._times: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self._failures: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def record(self, name: str, response_time: float | None, failed: bool) -> None:
        second = int(time.time())
        self._times[second][name].append(float(response_time or 0.0))
        if failed:
            self._failures[second][name] += 1

    def flush(self, *, final: bool = False) -> list[tuple[Any, ...]]:
        """Every finished second's rows (every second when ``final``), appended to the
        CSV file when there is one; returned for a worker to send to the master."""
        now = int(time.time())
        done = sorted(s for s in self._times if final or s < now)
        if not done:
            return []
        rows: list[tuple[Any, ...]] = []
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
        if self.path is not None:
            append_csv(self.path, SECONDS_COLUMNS, rows)
        return rows


def append_csv(path: Path, columns: tuple[str, ...], rows: list[Any]) -> None:
    """Append ``rows`` to a CSV file, writing the header when the file is new."""
    if not rows:
        return
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(columns)
        writer.writerows(rows)


class _Node:
    """This process's per-second figures: requests (not on a master) and its own CPU."""

    def __init__(self, environment: Environment) -> None:
        runner = environment.runner
        self.runner = runner
        self.role = (
            "master"
            if isinstance(runner, MasterRunner)
            else "worker"
            if isinstance(runner, WorkerRunner)
            else "standalone"
        )
        out = os.environ.get("MPAC_LOAD_OUT")
        self.out = Path(out) if out else None
        self.remote = self.out is None and self.role == "worker"  # report to the master
        if self.out is None and not self.remote:
            self.out = Path(".")
        pid = os.getpid()
        seconds = None if self.out is None else self.out / f"seconds-{pid}.csv"
        self.stats = None if self.role == "master" else PerSecondStats(seconds)
        self.cpu_path = None if self.out is None else self.out / f"cpu-{pid}.csv"
        self.process = psutil.Process(pid)
        self.process.cpu_percent()  # the first call only sets the baseline
        self.cpu_rows: list[tuple[Any, ...]] = []

    def tick(self, *, final: bool = False) -> None:
        """Once a second: this second's CPU share; then write or send what is finished."""
        if not final:
            second = int(time.time()) - 1  # the second just over
            self.cpu_rows.append((second, self.role, round(self.process.cpu_percent(), 1)))
        rows = self.stats.flush(final=final) if self.stats is not None else []
        cpu, self.cpu_rows = self.cpu_rows, []
        if self.remote:
            if rows or cpu:
                self.runner.send_message(SECONDS_MESSAGE, {"seconds": rows, "cpu": cpu})
        elif self.cpu_path is not None:
            append_csv(self.cpu_path, CPU_COLUMNS, cpu)


_node: _Node | None = None


def _on_worker_figures(environment: Environment, msg: Any, **_: Any) -> None:
    """On the master: a remote worker's finished seconds, into its own files."""
    out = Path(os.environ.get("MPAC_LOAD_OUT", "."))
    worker = "".join(c if c.isalnum() else "-" for c in str(msg.node_id))[-40:]
    append_csv(out / f"seconds-{worker}.csv", SECONDS_COLUMNS, msg.data.get("seconds") or [])
    cpu = [(s, f"worker {worker}", pct) for s, _, pct in msg.data.get("cpu") or []]
    append_csv(out / f"cpu-{worker}.csv", CPU_COLUMNS, cpu)


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument("--mpac-portal-url", default=PORTAL, help="portal base URL")
    parser.add_argument("--mpac-smarttab-url", default=SMARTTAB, help="smarttab base URL")
    parser.add_argument("--mpac-pgw-url", default=PGW, help="pgw base URL")
    parser.add_argument(
        "--mpac-plan", default="", help='rate plan, JSON {"portal": [users, rps], ...}'
    )


def _plan(environment: Environment) -> dict[str, list[float]]:
    raw = getattr(environment.parsed_options, "mpac_plan", "") or ""
    return json.loads(raw) if raw else {}


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    global _node
    _node = _Node(environment)
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(SECONDS_MESSAGE, _on_worker_figures)
    if environment.parsed_options is not None and not isinstance(environment.runner, WorkerRunner):
        plan = _plan(environment)  # the master decides how many users of each class
        for cls in (PortalUser, SmarttabUser, PgwUser):
            if plan:
                cls.fixed_count = int(plan.get(cls.service, [0, 0])[0])
    node = _node

    def ticker() -> None:
        while True:
            gevent.sleep(1.0)
            node.tick()

    gevent.spawn(ticker)


@events.request.add_listener
def _on_request(
    name: str, response_time: float | None, exception: BaseException | None, **_: Any
) -> None:
    if _node is not None and _node.stats is not None:
        _node.stats.record(name, response_time, exception is not None)


@events.quitting.add_listener
def _on_quitting(**_: Any) -> None:
    if _node is not None:
        _node.tick(final=True)


@events.quit.add_listener
def _on_quit(**_: Any) -> None:
    """After SIGTERM users stop only after ``quitting``: write their last requests too."""
    if _node is not None:
        _node.tick(final=True)


_think = between(WAIT_S[0], WAIT_S[-1])


class _MpacUser(FastHttpUser):
    abstract = True
    service = ""
    network_timeout = 5.0  # a request that hangs during an outage counts as failed
    connection_timeout = 2.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        opts = self.environment.parsed_options
        self.base = str(getattr(opts, f"mpac_{self.service}_url", "") or "").rstrip("/")
        users, rps = _plan(self.environment).get(self.service, [0, 0])
        # locust's constant-throughput pacing: each user runs rps/users tasks a second
        self._pace = constant_throughput(rps / users) if users and rps else _think

    def wait_time(self) -> float:
        return self._pace(self)


class PortalUser(_MpacUser):
    """A back-office user: logs in, then the portal verifies the token on every page."""

    service = "portal"
    host = PORTAL
    token: str | None = None

    def on_start(self) -> None:
        self.login()

    def login(self) -> None:
        self.token = None
        with self.client.post(
            f"{self.base}/login",
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
            f"{self.base}/verify",
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

    service = "smarttab"
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
            f"{self.base}/orders",
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

    service = "pgw"
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
            f"{self.base}/payments/qr", name="pgw /payments/qr", catch_response=True, json=body
        ) as response:
            if response.status_code in (200, 201):
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")

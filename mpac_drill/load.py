"""User traffic during a drill: locust in its own process(es), and what it measured.

``LoadRunner`` starts ``python -m locust`` headless (standalone, or a master and N workers)
in new sessions and stops it; locust is never imported here (gevent's monkey-patching
breaks boto3). ``summarize`` turns the per-second files the locustfile writes into the run
folder's ``load_per_second.csv`` and the run's totals.

Run-folder layout (``out_dir``)::

    load_per_second.csv          t_utc, name, requests, failures, p95_ms (+ "Aggregated")
    locust/stats_stats.csv       locust's own CSV files (--csv locust/stats --csv-full-history)
    locust/seconds-<pid>.csv     per-second figures of each locust process that sent requests
    locust/cpu-<pid>.csv         per-second CPU share of every locust process (master too)
    locust/locust.log            locust's output (locust-worker-<i>.log per worker)

Example::

    runner = LoadRunner(out_dir=run_dir, hosts={"portal": "http://127.0.0.1:18080",
                        "smarttab": "http://127.0.0.1:18081", "pgw": "http://127.0.0.1:18082"},
                        users=10, spawn_rate=10, run_time_s=120)
    runner.start()
    ...  # inject the fault, await recovery
    runner.stop()
    totals = summarize(run_dir)
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TypedDict

import psutil

from mpac_drill import EXPERIMENTS_DIR
from mpac_drill.config import Target
from mpac_drill.errors import HarnessError, UsageError
from mpac_drill.ports import free_port

logger = logging.getLogger("mpac_drill")

DEFAULT_LOCUSTFILE = EXPERIMENTS_DIR / "load" / "locustfile.py"
LOCUST_DIR = "locust"
PER_SECOND_FILE = "load_per_second.csv"
PER_SECOND_COLUMNS = ("t_utc", "name", "requests", "failures", "p95_ms")
AGGREGATED = "Aggregated"
HOST_ENV = {"portal": "MPAC_PORTAL_URL", "smarttab": "MPAC_SMARTTAB_URL", "pgw": "MPAC_PGW_URL"}
#: The drill's target name in each locust process's environment (foreign-load check).
TARGET_ENV = "MPAC_LOAD_TARGET"
#: What locust logs when users start: standalone ("Ramping to ...") and master ("Sending spawn
#: jobs ... to N ready workers", once every expected worker has connected).
_STARTED_MARKS = ("Ramping to", "Sending spawn jobs")


class LoadSummary(TypedDict):
    """The run's load totals (``measurements.load`` of ``result.json``)."""

    requests: int
    failures: int
    p95_ms: float | None


class LoadRunner:
    """locust as child process(es): ``start()``, ``stop()``, then ``summarize(out_dir)``."""

    def __init__(
        self,
        *,
        out_dir: Path,
        hosts: Mapping[str, str],
        users: int,
        spawn_rate: float,
        run_time_s: int,
        workers: int = 0,
        locustfile: Path = DEFAULT_LOCUSTFILE,
        master_port: int | None = None,
        start_timeout_s: float = 60.0,
        target_name: str | None = None,
        external_workers: int = 0,
        master_bind: str | None = None,
        workers_wait_s: float = 60.0,
        plan: Mapping[str, tuple[int, float]] | None = None,
    ) -> None:
        """
        :param out_dir: the run folder; locust's files go to ``out_dir/locust/``.
        :param hosts: base URL per service: keys ``portal``, ``smarttab``, ``pgw``.
        :param users: locust users (split over the three user classes).
        :param spawn_rate: users started per second.
        :param run_time_s: locust stops on its own after this long.
        :param workers: 0 for one process; N for a master and N worker processes.
        :param master_port: loopback port of the master (default: a free one).
        :param start_timeout_s: how long ``start()`` waits for the users to start.
        :param target_name: the drill's target, in each locust process's environment
            (``MPAC_LOAD_TARGET``) so another drill can name it (:func:`load_processes`).
        :param external_workers: N workers started by someone else (other machines, a
            Kubernetes Deployment) with :func:`worker_command`; none are started here.
        :param master_bind: ``host:port`` the master binds for external workers.
        :param workers_wait_s: how long the master waits for the external workers.
        :param plan: request-rate plan, service → (users, rps) (:func:`rate_plan`); the
            users are their sum, each paced by locust's ``constant_throughput``.
        """
        missing = sorted(set(HOST_ENV) - set(hosts))
        if missing:
            raise HarnessError(f"load: no host for {', '.join(missing)}")
        if users < 1 or spawn_rate <= 0 or run_time_s < 1 or workers < 0:
            raise HarnessError(
                "load: users, spawn_rate and run_time_s must be positive, workers >= 0"
            )
        if external_workers < 0 or (external_workers and workers):
            raise HarnessError("load: either local workers or external_workers, not both")
        if external_workers and not master_bind:
            raise HarnessError("load: external_workers needs load.master_bind (host:port)")
        if not Path(locustfile).is_file():
            raise HarnessError(f"load: locustfile {locustfile} not found")
        self.out_dir = Path(out_dir)
        self.hosts = {k: hosts[k].rstrip("/") for k in HOST_ENV}
        self.users, self.spawn_rate, self.run_time_s = users, spawn_rate, run_time_s
        self.workers, self.locustfile = workers, Path(locustfile)
        self.master_port, self.start_timeout_s = master_port, start_timeout_s
        self.target_name = target_name
        self.external_workers, self.workers_wait_s = external_workers, workers_wait_s
        self.bind = parse_bind(master_bind) if master_bind else None
        self.plan = {k: (int(u), float(r)) for k, (u, r) in (plan or {}).items()}
        if self.plan:
            self.users = sum(u for u, _ in self.plan.values())
        if external_workers:  # the master gives up first, with its own message
            self.start_timeout_s = max(start_timeout_s, workers_wait_s + 30)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    @property
    def locust_dir(self) -> Path:
        return self.out_dir / LOCUST_DIR

    @property
    def pids(self) -> list[int]:
        """Process ids of every locust process started (master or standalone first)."""
        return [proc.pid for proc in self._procs]

    @property
    def running(self) -> bool:
        """True while any locust process is alive."""
        return any(proc.poll() is None for proc in self._procs)

    def start(self) -> None:
        """Start locust and return once its users are starting.

        :raises HarnessError: already started, or locust exited or did not start users in
            ``start_timeout_s`` (the error quotes the end of its log).
        """
        if self._procs:
            raise HarnessError("load: already started")
        self.locust_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "MPAC_LOAD_OUT": str(self.locust_dir),
            "PYTHONUNBUFFERED": "1",
            TARGET_ENV: self.target_name or "",
            **{HOST_ENV[k]: url for k, url in self.hosts.items()},
        }
        base = [sys.executable, "-m", "locust", "-f", str(self.locustfile)]
        main = [
            *base,
            "--headless",
            "--users",
            str(self.users),
            "--spawn-rate",
            str(self.spawn_rate),
            "--run-time",
            f"{self.run_time_s}s",
            "--csv",
            str(self.locust_dir / "stats"),
            "--csv-full-history",
            "--only-summary",
            "--stop-timeout",
            "2",
            "--exit-code-on-error",
            "0",
            *(f"--mpac-{k}-url={url}" for k, url in self.hosts.items()),
        ]
        if self.plan:
            main.append("--mpac-plan=" + json.dumps({k: list(v) for k, v in self.plan.items()}))
        port = self.master_port or free_port()
        if self.external_workers and self.bind:
            host, port = self.bind
            main += [
                "--master",
                "--master-bind-host",
                host,
                "--master-bind-port",
                str(port),
                "--expect-workers",
                str(self.external_workers),
                "--expect-workers-max-wait",
                str(max(1, int(self.workers_wait_s))),
            ]
        elif self.workers:
            main += [
                "--master",
                "--master-bind-host",
                "127.0.0.1",
                "--master-bind-port",
                str(port),
                "--expect-workers",
                str(self.workers),
                "--expect-workers-max-wait",
                str(int(self.start_timeout_s)),
            ]
        log = self.locust_dir / "locust.log"
        self._spawn(main, env, log)
        for i in range(1, self.workers + 1):
            self._spawn(
                [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                env,
                self.locust_dir / f"locust-worker-{i}.log",
            )
        logger.info(
            "load: locust started (%d users, %d workers, %d s), pids %s",
            self.users,
            self.workers or self.external_workers,
            self.run_time_s,
            self.pids,
        )
        try:
            self._await_users(log)
        except HarnessError:
            self.stop()
            raise

    def _spawn(self, cmd: list[str], env: dict[str, str], log: Path) -> None:
        # die_with_parent: a harness killed with SIGKILL (or by the OOM killer) leaves no
        # orphan load hitting the target for the rest of --run-time
        cmd = [sys.executable, "-m", "mpac_drill.die_with_parent", str(os.getpid()), *cmd]
        handle = log.open("ab")
        self._logs.append(handle)
        self._procs.append(
            subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=self.out_dir,
                start_new_session=True,
            )
        )

    def _await_users(self, log: Path) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            dead = [proc for proc in self._procs if proc.poll() is not None]
            if dead and self.external_workers and "Gave up waiting for workers" in _text(log):
                raise HarnessError(
                    f"load: {self.external_workers} external locust worker(s) expected at "
                    f"{self.bind[0] if self.bind else '?'}:{self.bind[1] if self.bind else '?'}"
                    f", {_connected(log)} connected within {self.workers_wait_s:.0f} s "
                    "(start them with `mpac-drill load worker-command`)"
                )
            if dead:
                raise HarnessError(
                    f"load: locust exited at start (exit {dead[0].returncode}); {_tail(log)}"
                )
            text = log.read_text(errors="replace")
            if any(mark in text for mark in _STARTED_MARKS):
                return
            time.sleep(0.1)
        raise HarnessError(
            f"load: locust started no users within {self.start_timeout_s:.0f} s; {_tail(log)}"
        )

    def wait(self, timeout_s: float) -> bool:
        """Wait for locust to finish on its own (``run_time_s``); True if every process ended."""
        deadline = time.monotonic() + timeout_s
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
        return not self.running

    def stop(self, timeout_s: float = 10) -> None:
        """SIGTERM each process group, wait up to ``timeout_s``, SIGKILL what is left.

        Idempotent; does nothing when never started.
        """
        for proc in self._procs:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
        if not self.wait(timeout_s):
            for proc in self._procs:
                if proc.poll() is None:
                    logger.warning("load: locust pid %d ignored SIGTERM; killing it", proc.pid)
                    _signal_group(proc.pid, signal.SIGKILL)
            for proc in self._procs:
                proc.wait()
        self._stop_strays(timeout_s)
        for handle in self._logs:
            handle.close()
        self._logs = []

    def _stop_strays(self, timeout_s: float) -> None:
        """Stop locust processes of this run that were never recorded: an interrupt can
        land between ``Popen`` starting one and the list holding it."""
        stop_run_load(self.out_dir, timeout_s)


class LoadProcess(TypedDict):
    """A locust process of this project (``MPAC_LOAD_OUT`` in its environment)."""

    pid: int
    run_dir: str  # the run folder it writes into
    target: str  # the drill's target name ("" when not recorded)
    hosts: list[str]  # the base URLs it loads


def load_processes() -> list[LoadProcess]:
    """Every live locust process started by mpac-drill (any run, any checkout) whose
    environment this user may read: its run folder, target and hosts."""
    found: list[LoadProcess] = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid == os.getpid():
                continue
            cmd = " ".join(proc.info["cmdline"] or [])
            if "locust" not in cmd:
                continue
            env = proc.environ()
            out = env.get("MPAC_LOAD_OUT")
            if not out or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            found.append(
                LoadProcess(
                    pid=proc.pid,
                    run_dir=str(Path(out).parent),
                    target=env.get(TARGET_ENV, ""),
                    hosts=[env[v] for v in HOST_ENV.values() if env.get(v)],
                )
            )
    return found


def foreign_load(urls: list[str]) -> list[LoadProcess]:
    """The locust processes of mpac-drill loading any of ``urls`` (same host and port)."""
    mine = {_netloc(u) for u in urls if u}
    return [p for p in load_processes() if mine & {_netloc(h) for h in p["hosts"]}]


def _netloc(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def stop_run_load(run_dir: Path, timeout_s: float = 10) -> list[int]:
    """Stop every locust process writing into ``run_dir`` (its command line or its
    ``MPAC_LOAD_OUT`` names the run's ``locust/`` folder): SIGTERM to its group, SIGKILL
    after ``timeout_s``. Returns their pids."""
    mark = str(Path(run_dir) / LOCUST_DIR)
    strays = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid == os.getpid():
                continue
            if (
                mark in " ".join(proc.info["cmdline"] or [])
                or proc.environ().get("MPAC_LOAD_OUT") == mark
            ):
                strays.append(proc)
    for proc in strays:
        logger.warning("load: stopping unrecorded locust pid %d", proc.pid)
        _signal_group(proc.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(strays, timeout=timeout_s)
    for proc in alive:
        _signal_group(proc.pid, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=2)
    return [p.pid for p in strays]


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _text(log: Path) -> str:
    try:
        return log.read_text(errors="replace")
    except OSError:
        return ""


def _connected(log: Path) -> int:
    """How many workers the master's log last said were connected ("N of M connected")."""
    counts = re.findall(r"(\d+) of \d+ connected", _text(log))
    return int(counts[-1]) if counts else 0


def parse_bind(value: str) -> tuple[str, int]:
    """``host:port`` → (host, port); a usage error names the bad value."""
    host, sep, port = str(value).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"load.master_bind must be host:port (e.g. 0.0.0.0:5557), got {value!r}")
    return host, int(port)


def worker_command(master_host: str, master_port: int, *, processes: int = 1) -> str:
    """The one line that starts a locust worker for a drill's master, on any machine with
    locust installed: the locustfile and the hosts come from the master (``-f -``, locust's
    own download and spawn message); no URL, token or secret is on the line."""
    cmd = f"locust --worker -f - --master-host {master_host} --master-port {master_port}"
    return cmd + (f" --processes {processes}" if processes > 1 else "")


def check_rate_settings(target: Target) -> None:
    """Refuse a bad ``load.rps`` / ``load.mix`` of ``target`` in one line (a usage error,
    before anything runs); nothing to check when the load is set in users."""
    rps, mix = target.get("load.rps"), target.get("load.mix")
    if rps in (None, "", 0) and not mix:
        return
    if mix is not None and not isinstance(mix, dict):
        raise UsageError(f"load.mix must be a map of service: share, not {mix!r}")
    if isinstance(rps, bool) or not isinstance(rps, int | float) or not math.isfinite(rps):
        if rps in (None, "", 0):
            return
        raise UsageError(f"load.rps must be a number of requests per second, not {rps!r}")
    shares = mix or {"portal": 1, "smarttab": 1, "pgw": 1}
    try:
        rate_plan(float(rps), {str(k): float(v) for k, v in shares.items()})
    except (TypeError, ValueError):
        raise UsageError(f"load.mix shares must be numbers, not {mix!r}") from None


def rate_plan(
    rps: float, mix: Mapping[str, float], *, users: int = 0, user_rps_max: float = 10.0
) -> dict[str, tuple[int, float]]:
    """Service → (users, rps): ``rps`` split by the ``mix`` shares (normalised), with enough
    users that none must send more than ``user_rps_max`` a second (at least ``users`` in
    all, and one for every service with a share)."""
    unknown = sorted(set(mix) - set(HOST_ENV))
    if unknown:
        raise UsageError(f"load.mix: unknown service {', '.join(unknown)} (portal, smarttab, pgw)")
    if rps <= 0 or any(float(v) < 0 for v in mix.values()) or sum(mix.values()) <= 0:
        raise UsageError("load.rps must be > 0 and load.mix shares >= 0 with a positive sum")
    total = float(sum(mix.values()))
    plan: dict[str, tuple[int, float]] = {}
    for service, share in mix.items():
        if float(share) <= 0:
            continue
        part = rps * float(share) / total
        need = max(math.ceil(part / user_rps_max), round(users * float(share) / total), 1)
        plan[service] = (int(need), round(part, 3))
    return plan


def _tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return f"no log at {log}"
    return f"last lines of {log}:\n" + "\n".join(text) if text else f"{log} is empty"


# --- summary -------------------------------------------------------------------------------


def summarize(out_dir: Path) -> LoadSummary:
    """Merge ``locust/seconds-*.csv`` into ``load_per_second.csv`` and return the totals.

    Rows of the same second and name from several processes are summed; their p95 is the
    request-weighted mean of the processes' p95s (exact with one process). Each process
    writes an exact ``Aggregated`` row per second; one is derived when missing.

    Totals: ``requests`` and ``failures`` from the per-second files (they are written at
    quit; locust's ``stats_stats.csv`` is rewritten once a second, so it can miss the last
    second); ``p95_ms`` from the ``Aggregated`` 95% column of ``stats_stats.csv`` (the
    whole run's distribution), else the request-weighted mean of the per-second p95s.
    Without per-second files the counts come from ``stats_stats.csv`` too.
    """
    out_dir = Path(out_dir)
    merged: dict[tuple[int, str], list[tuple[int, int, float]]] = defaultdict(list)
    for path in sorted((out_dir / LOCUST_DIR).glob("seconds-*.csv")):
        for key, figures in _read_seconds(path).items():
            merged[key].append(figures)
    rows = sorted(
        ((second, name, *_merge(parts)) for (second, name), parts in merged.items()),
        key=lambda r: (r[0], r[1] == AGGREGATED, r[1]),
    )
    with (out_dir / PER_SECOND_FILE).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(PER_SECOND_COLUMNS)
        for second, name, requests, failures, p95 in rows:
            t_utc = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            writer.writerow((t_utc, name, requests, failures, _fmt(p95)))
    locust = _locust_totals(out_dir / LOCUST_DIR / "stats_stats.csv")
    agg = [(r[2], r[3], r[4] or 0.0) for r in rows if r[1] == AGGREGATED]
    if not agg:
        return locust or LoadSummary(requests=0, failures=0, p95_ms=None)
    requests, failures, p95 = _merge(agg)
    if locust is not None and locust["p95_ms"] is not None:
        p95 = locust["p95_ms"]
    return LoadSummary(requests=requests, failures=failures, p95_ms=p95)


def _read_seconds(path: Path) -> dict[tuple[int, str], tuple[int, int, float]]:
    """One process's rows by (second, name), with an ``Aggregated`` row for every second.

    A second written twice (a late request after the final flush) is merged.
    """
    parts: dict[tuple[int, str], list[tuple[int, int, float]]] = defaultdict(list)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                figures = (int(row["requests"]), int(row["failures"]), float(row["p95_ms"]))
                parts[(int(row["second"]), row["name"])].append(figures)
            except (KeyError, TypeError, ValueError):
                continue  # a line cut short when the process was killed
    rows = {key: _merged(figures) for key, figures in parts.items()}
    by_second: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    for (second, name), figures in rows.items():
        if name != AGGREGATED:
            by_second[second].append(figures)
    for second, named in by_second.items():
        if (second, AGGREGATED) not in rows:
            requests, failures, _ = _merged(named)
            rows[(second, AGGREGATED)] = (requests, failures, max(p[2] for p in named))
    return rows


def _merged(parts: list[tuple[int, int, float]]) -> tuple[int, int, float]:
    requests, failures, p95 = _merge(parts)
    return requests, failures, 0.0 if p95 is None else p95


def _merge(parts: list[tuple[int, int, float]]) -> tuple[int, int, float | None]:
    """Summed requests and failures; p95 as the request-weighted mean of the parts' p95."""
    requests = sum(p[0] for p in parts)
    failures = sum(p[1] for p in parts)
    if requests == 0:
        return 0, failures, None
    return requests, failures, round(sum(p[0] * p[2] for p in parts) / requests, 1)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _locust_totals(path: Path) -> LoadSummary | None:
    """Totals from the ``Aggregated`` row of locust's ``stats_stats.csv``, if readable."""
    try:
        with path.open(newline="") as handle:
            row = next((r for r in csv.DictReader(handle) if r.get("Name") == AGGREGATED), None)
    except OSError:
        return None
    if row is None:
        return None
    try:
        requests, failures = int(row["Request Count"]), int(row["Failure Count"])
    except (KeyError, TypeError, ValueError):
        return None
    try:
        p95: float | None = float(row["95%"])
    except (KeyError, TypeError, ValueError):
        p95 = None  # "N/A" when there were no requests
    if p95 is not None and not math.isfinite(p95):
        p95 = None
    return LoadSummary(requests=requests, failures=failures, p95_ms=p95 if requests else None)


__all__ = [
    "LoadProcess",
    "LoadRunner",
    "LoadSummary",
    "TARGET_ENV",
    "foreign_load",
    "parse_bind",
    "rate_plan",
    "worker_command",
    "load_processes",
    "stop_run_load",
    "summarize",
    "DEFAULT_LOCUSTFILE",
    "PER_SECOND_COLUMNS",
    "PER_SECOND_FILE",
    "LOCUST_DIR",
]

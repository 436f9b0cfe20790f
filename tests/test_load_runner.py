"""LoadRunner runs the real locustfile against a tiny local server; summarize() on known CSVs."""

from __future__ import annotations

import csv
import json
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mpac_drill.errors import HarnessError
from mpac_drill.load import LoadRunner, summarize


class _FakeMpac(BaseHTTPRequestHandler):
    """Answers like the three services; QR payments always fail (503) to count failures."""

    protocol_version = "HTTP/1.1"
    answers = {
        "/login": (200, {"token": "t", "jti": "j", "expires_in": 900}),
        "/verify": (200, {"ok": True}),
        "/orders": (201, {"order_id": 1, "replay": False}),
        "/payments/qr": (503, {"error": "database unavailable"}),
    }

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, body = self.answers.get(self.path, (404, {}))
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


def _port() -> int:
    for port in random.sample(range(25000, 26000), 1000):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 25000-25999")


@pytest.fixture
def fake_hosts() -> Iterator[dict[str, str]]:
    server = ThreadingHTTPServer(("127.0.0.1", _port()), _FakeMpac)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield {"portal": url, "smarttab": url, "pgw": url}
    server.shutdown()
    server.server_close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(
    "workers,stop_early",
    [(0, False), (2, True)],
    ids=["standalone-run-time", "master-2-workers-sigterm"],
)
def test_load_runner_run_writes_per_second_rows_and_stops(
    tmp_path: Path, fake_hosts: dict[str, str], workers: int, stop_early: bool
) -> None:
    runner = LoadRunner(
        out_dir=tmp_path,
        hosts=fake_hosts,
        users=3,
        spawn_rate=10,
        run_time_s=60 if stop_early else 4,
        workers=workers,
        master_port=_port() if workers else None,
    )
    runner.start()
    try:
        assert len(runner.pids) == 1 + workers and runner.running
        if stop_early:  # what a drill does: stop() long before --run-time
            time.sleep(4)
        else:
            assert runner.wait(30), "locust did not stop on its own after --run-time"
    finally:
        started = time.monotonic()
        runner.stop()
        assert time.monotonic() - started < 10, "locust ignored SIGTERM"
    assert not any(_alive(pid) for pid in runner.pids)
    runner.stop()  # idempotent

    seconds_files = sorted((tmp_path / "locust").glob("seconds-*.csv"))
    assert len(seconds_files) == max(1, workers)  # each worker writes its own file
    totals = summarize(tmp_path)
    rows = _read(tmp_path / "load_per_second.csv")
    assert list(rows[0]) == ["t_utc", "name", "requests", "failures", "p95_ms"]
    names = {row["name"] for row in rows}
    assert {
        "portal /login",
        "portal /verify",
        "smarttab /orders",
        "pgw /payments/qr",
        "Aggregated",
    } <= names
    assert len({row["t_utc"] for row in rows}) >= 2
    assert all(row["t_utc"].endswith("Z") for row in rows)
    failed = {row["name"] for row in rows if int(row["failures"]) > 0}
    assert failed <= {"pgw /payments/qr", "Aggregated"} and "pgw /payments/qr" in failed
    assert totals["requests"] > 0 and 0 < totals["failures"] < totals["requests"]
    assert totals["p95_ms"] is not None
    per_second = sum(int(row["requests"]) for row in rows if row["name"] == "Aggregated")
    assert per_second == totals["requests"]
    locust_stats = _read(tmp_path / "locust" / "stats_stats.csv")
    locust_count = next(int(r["Request Count"]) for r in locust_stats if r["Name"] == "Aggregated")
    assert 0 < locust_count <= totals["requests"]  # locust's file may miss the last second
    assert (tmp_path / "locust" / "stats_stats_history.csv").exists()


def test_load_runner_stop_never_started_is_noop(tmp_path: Path, fake_hosts: dict) -> None:
    runner = LoadRunner(out_dir=tmp_path, hosts=fake_hosts, users=1, spawn_rate=1, run_time_s=1)
    runner.stop()
    assert runner.pids == []


def test_load_runner_broken_locustfile_harness_error(tmp_path: Path, fake_hosts: dict) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise SystemExit('no locust here')\n")
    runner = LoadRunner(
        out_dir=tmp_path, hosts=fake_hosts, users=1, spawn_rate=1, run_time_s=5, locustfile=broken
    )
    with pytest.raises(HarnessError, match="exited at start"):
        runner.start()
    assert not runner.running


def test_load_runner_missing_host_harness_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no host for pgw"):
        LoadRunner(
            out_dir=tmp_path,
            hosts={"portal": "http://x", "smarttab": "http://y"},
            users=1,
            spawn_rate=1,
            run_time_s=1,
        )


def _write(path: Path, rows: list[tuple[object, ...]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("second", "name", "requests", "failures", "p95_ms"))
        writer.writerows(rows)


def test_summarize_two_workers_merged_known_numbers(tmp_path: Path) -> None:
    t0 = 1_800_000_000  # 2027-01-15T08:00:00Z
    _write(
        tmp_path / "locust" / "seconds-101.csv",
        [
            (t0, "smarttab /orders", 10, 1, 20.0),
            (t0, "portal /verify", 30, 0, 4.0),
            (t0, "Aggregated", 40, 1, 15.0),
            (t0 + 1, "smarttab /orders", 5, 0, 10.0),  # no Aggregated row: derived
        ],
    )
    _write(
        tmp_path / "locust" / "seconds-202.csv",
        [
            (t0, "smarttab /orders", 30, 3, 40.0),
            (t0, "Aggregated", 30, 3, 40.0),
            (t0 + 1, "portal /verify", 5, 5, 2.0),
            (t0 + 1, "Aggregated", 5, 5, 2.0),
            ("1800000002", "portal /ver"),  # a line cut short by a kill: skipped
        ],
    )
    totals = summarize(tmp_path)
    rows = [tuple(r.values()) for r in _read(tmp_path / "load_per_second.csv")]
    assert rows == [
        ("2027-01-15T08:00:00Z", "portal /verify", "30", "0", "4.0"),
        ("2027-01-15T08:00:00Z", "smarttab /orders", "40", "4", "35.0"),  # (10*20+30*40)/40
        ("2027-01-15T08:00:00Z", "Aggregated", "70", "4", "25.7"),  # (40*15+30*40)/70
        ("2027-01-15T08:00:01Z", "portal /verify", "5", "5", "2.0"),
        ("2027-01-15T08:00:01Z", "smarttab /orders", "5", "0", "10.0"),
        ("2027-01-15T08:00:01Z", "Aggregated", "10", "5", "6.0"),
    ]
    # No locust stats file: totals from the per-second Aggregated rows.
    assert totals == {"requests": 80, "failures": 9, "p95_ms": 23.2}  # (70*25.7+10*6)/80


def test_summarize_p95_from_locust_stats_counts_from_seconds(tmp_path: Path) -> None:
    _write(tmp_path / "locust" / "seconds-1.csv", [(1_800_000_000, "Aggregated", 130, 8, 9.0)])
    (tmp_path / "locust" / "stats_stats.csv").write_text(
        "Type,Name,Request Count,Failure Count,Median Response Time,95%,99%\n"
        "POST,smarttab /orders,120,7,11,30,44\n"
        ",Aggregated,125,7,11,31,45\n"
    )
    assert summarize(tmp_path) == {"requests": 130, "failures": 8, "p95_ms": 31.0}
    (tmp_path / "locust" / "seconds-1.csv").unlink()
    assert summarize(tmp_path) == {"requests": 125, "failures": 7, "p95_ms": 31.0}


def test_summarize_no_traffic_zero_totals(tmp_path: Path) -> None:
    (tmp_path / "locust").mkdir()
    (tmp_path / "locust" / "stats_stats.csv").write_text(
        "Type,Name,Request Count,Failure Count,95%\n,Aggregated,0,0,N/A\n"
    )
    assert summarize(tmp_path) == {"requests": 0, "failures": 0, "p95_ms": None}
    assert _read(tmp_path / "load_per_second.csv") == []

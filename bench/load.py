"""Benchmark: what one locust worker sends on this machine, how it scales with workers, and
how much load the sandbox's services take before their p95 doubles.

    .venv/bin/python bench/load.py                      # 1, 2, 4 workers, then the sandbox
    .venv/bin/python bench/load.py --workers 1 2 --seconds 8 --no-sandbox

Generator: locust (the drill's locustfile, master + N workers, each user unpaced) against a
tiny loopback HTTP server that answers every request at once in its own process, so the
generator is the limit, not the server. Printed: achieved rps, rps per worker and the
scaling ratio against one worker. Sandbox: rates of ``--rates`` offered with ``load.rps``
pacing against the running sandbox's services; the first rate whose p95 is twice the
lowest rate's is the sandbox's capacity. Each step is bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing import Process
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mpac_drill.load import LoadRunner, rate_plan, summarize  # noqa: E402
from mpac_drill.measure.load import check_generator  # noqa: E402
from mpac_drill.ports import free_port  # noqa: E402


class _Fast(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    body = json.dumps({"token": "t", "ok": True}).encode()

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(201 if self.path != "/verify" else 200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        try:
            self.wfile.write(self.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the generator stopped mid-answer: not a finding

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def _serve(port: int) -> None:
    ThreadingHTTPServer(("127.0.0.1", port), _Fast).serve_forever()


def _run(hosts: dict[str, str], seconds: int, *, workers: int, users: int, plan=None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        runner = LoadRunner(
            out_dir=Path(tmp),
            hosts=hosts,
            users=users,
            spawn_rate=users,
            run_time_s=seconds,
            workers=workers,
            plan=plan,
        )
        runner.start()
        runner.wait(seconds + 30)
        runner.stop()
        total = summarize(Path(tmp))
        offered = sum(r for _, r in plan.values()) if plan else None
        check = check_generator(Path(tmp), offered_rps=offered)
        return {**total, **check}


def bench_generator(worker_counts: list[int], seconds: int) -> None:
    port = free_port()
    server = Process(target=_serve, args=(port,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}"
    hosts = {"portal": url, "smarttab": url, "pgw": url}
    base = None
    print(f"generator vs a loopback server, {seconds} s each (unpaced users, 0.02-0.1 s think)")
    print(f"{'workers':>7} {'rps':>8} {'rps/worker':>10} {'scaling':>8} {'max cpu %':>9}")
    for n in worker_counts:
        r = _run(hosts, seconds, workers=n, users=60 * n)
        rps = r["rps_achieved"] or 0.0
        base = base or rps / n
        cpu = max(r["cpu_max_pct"].values(), default=0)
        print(f"{n:>7} {rps:>8.0f} {rps / n:>10.0f} {rps / n / base:>8.2f} {cpu:>9.0f}")
    server.terminate()


def bench_sandbox(rates: list[float], seconds: int) -> None:
    from mpac_drill.config import load_target
    from mpac_drill.sandbox import control

    services = control.view(load_target("sandbox")).endpoints["services"]
    hosts = {
        "portal": services["svc-portal"],
        "smarttab": services["svc-smarttab"],
        "pgw": services["pgw"],
    }
    mix = {"portal": 0.4, "smarttab": 0.3, "pgw": 0.3}
    print(f"sandbox services, {seconds} s a rate (paced, mix {mix})")
    print(f"{'offered':>8} {'achieved':>8} {'p95 ms':>7} {'saturated':>9}")
    first = None
    for rate in rates:
        plan = rate_plan(rate, mix)
        r = _run(hosts, seconds, workers=0, users=sum(u for u, _ in plan.values()), plan=plan)
        p95 = r["p95_ms"] or 0.0
        first = first or p95
        print(f"{rate:>8.0f} {r['rps_achieved'] or 0:>8.0f} {p95:>7.1f} {r['saturated']!s:>9}")
        if p95 >= 2 * first:
            print(f"capacity: p95 doubled ({first:.1f} -> {p95:.1f} ms) at {rate:.0f} rps")
            return
    print("capacity: p95 did not double up to the highest rate tried")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rates", type=float, nargs="+", default=[50, 100, 200, 400, 800])
    ap.add_argument("--no-sandbox", action="store_true")
    args = ap.parse_args()
    bench_generator(args.workers, args.seconds)
    if not args.no_sandbox:
        bench_sandbox(args.rates, args.seconds)


if __name__ == "__main__":
    main()

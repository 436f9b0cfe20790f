"""mpac-obs on the sandbox (runbook §1.6): its history through a redeploy, its dashboards.

:func:`start_history` pushes numbered log lines to the sandbox's mpac-obs every
``interval_s`` and logs each acknowledged push (like the RPO canary, but for the
observability store); :func:`measure_history` stops it after the redeploy, reads the stream
back and counts acknowledged lines missing (``rpo_s`` by
:func:`mpac_drill.measure.canary.compute_rpo`), then asks mpac-obs for each dashboard file
through Grafana's API (:func:`mpac_drill.grafana.check_dashboards`, the same check as on AWS).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mpac_drill.config import Target
from mpac_drill.grafana import check_dashboards, dashboard_files
from mpac_drill.measure.canary import Write, compute_rpo
from mpac_drill.measure.observer import paced, request_json

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext


class ObsHistory:
    """Numbered lines pushed to one mpac-obs stream, with the ledger of acknowledgements."""

    def __init__(self, *, url: str, stream: str, interval_s: float = 0.1) -> None:
        self.url = url.rstrip("/")
        self.stream = stream
        self.interval_s = interval_s
        self.ledger: list[Write] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="obs-history")
        self._thread.start()

    def _loop(self) -> None:
        for seq in paced(self._stop, self.interval_s, max_duration_s=3600):
            w = Write(seq=seq, sent_mono=time.monotonic(), sent_utc=datetime.now(UTC))
            status, _, _ = request_json(
                f"{self.url}/push", "POST", {"stream": self.stream, "line": f"drill line {seq}"}
            )
            if status == 201:
                w.ack_mono = time.monotonic()
            self.ledger.append(w)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)

    def read_back(self) -> set[int]:
        status, _, body = request_json(f"{self.url}/query?stream={self.stream}", timeout_s=5)
        if status != 200:
            raise RuntimeError(f"mpac-obs /query answered {status}")
        return {int(x["line"].rsplit(" ", 1)[1]) for x in body.get("lines", [])}


def missing_settings(target: Target) -> list[str]:
    """Nothing to fill in: the sandbox knows where its mpac-obs is."""
    return []


def check_target(target: Target) -> None:
    """The sandbox target always has what the obs drill needs."""


def start_history(ctx: DrillContext, interval_s: float = 0.1) -> dict[str, Any]:
    """Start pushing numbered lines to mpac-obs; undone by :func:`measure_history`."""
    if ctx.dry_run:
        return ctx.plan(
            f"push numbered log lines to mpac-obs every {interval_s:g} s", service="mpac-obs"
        )
    url = ctx.sandbox().endpoints["services"]["mpac-obs"]
    history = ObsHistory(url=url, stream=f"drill-{ctx.run_id.lower()[:50]}", interval_s=interval_s)
    history.start()
    ctx.handles.obs_history = history
    return {"started": True, "stream": history.stream}


def measure_history(ctx: DrillContext) -> dict[str, Any]:
    """Stop pushing, read the history back, check the dashboards; fill ``obs``."""
    if ctx.dry_run:
        return ctx.plan(
            "read the lines back; GET /api/dashboards/uid/<uid> for each of "
            f"{len(dashboard_files())} dashboard files",
            service="mpac-obs",
        )
    history: ObsHistory | None = ctx.handles.obs_history
    ctx.handles.obs_history = None
    if history is None:
        return {"measured": False}
    history.stop()
    present = history.read_back()
    for w in history.ledger:
        w.present = w.seq in present
    rpo = compute_rpo(history.ledger)
    ctx.measurements.update(
        acked_writes=rpo["acked_writes"], lost_writes=rpo["lost_writes"], rpo_s=rpo["rpo_s"]
    )
    dashboards = check_dashboards(history.url, dashboard_files(), timeout_s=5)
    obs = {
        "history_unit": "lines",
        "history_lines_acked": rpo["acked_writes"],
        "history_lines_lost": rpo["lost_writes"],
        **{k: v for k, v in dashboards.items() if k != "grafana_url"},
    }
    ctx.record.obs = obs
    return obs


__all__ = ["ObsHistory", "missing_settings", "check_target", "start_history", "measure_history"]

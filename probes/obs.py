"""mpac-obs checks (runbook 1.6): history survives the stack, dashboards come from git.

``start_history`` pushes numbered log lines to mpac-obs every ``interval_s`` and logs each
acknowledged push (like the RPO canary, but for the observability store); ``measure_history``
stops it after the redeploy, reads the stream back and counts acknowledged lines missing
(``rpo_s`` by :func:`probes.canary.compute_rpo`), then compares the dashboards mpac-obs
provisioned with the files in ``experiments/obs/dashboards``.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from chaoslib.types import Configuration, Secrets

from mpac_drill import EXPERIMENTS_DIR
from probes.canary import Write, compute_rpo

__all__ = ["start_history", "measure_history", "ObsHistory"]


def _call(url: str, method: str, body: dict | None = None, timeout_s: float = 1.0
          ) -> tuple[int, Any]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                      timeout=timeout_s)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json", "Connection": "close"})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else {}
    except (OSError, http.client.HTTPException, ValueError):
        return 0, {}
    finally:
        conn.close()


class ObsHistory:
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
        seq = 0
        next_at = time.monotonic()
        deadline = next_at + 3600
        while not self._stop.is_set() and time.monotonic() < deadline:
            seq += 1
            w = Write(seq=seq, sent_mono=time.monotonic(), sent_utc=datetime.now(UTC))
            status, _ = _call(f"{self.url}/push", "POST",
                              {"stream": self.stream, "line": f"drill line {seq}"})
            if status == 201:
                w.ack_mono = time.monotonic()
            self.ledger.append(w)
            next_at += self.interval_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)

    def read_back(self) -> set[int]:
        status, body = _call(f"{self.url}/query?stream={self.stream}", "GET", timeout_s=5)
        if status != 200:
            raise RuntimeError(f"mpac-obs /query answered {status}")
        return {int(x["line"].rsplit(" ", 1)[1]) for x in body.get("lines", [])}


def start_history(
    interval_s: float = 0.1,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Start pushing numbered lines to mpac-obs (sandbox only).

    ::

        - type: action
          name: start-history
          provider: {type: python, module: probes.obs, func: start_history}
    """
    from mpac_drill.drill.context import current

    ctx = current(configuration)
    if ctx.dry_run or not ctx.is_sandbox:
        ctx.note("mpac-obs history checks run on the sandbox only")
        return {"started": False}
    url = ctx.sandbox().endpoints["services"]["mpac-obs"]
    history = ObsHistory(url=url, stream=f"drill-{ctx.run_id.lower()[:50]}",
                         interval_s=interval_s)
    history.start()
    ctx.extras["_obs_history"] = history
    return {"started": True, "stream": history.stream}


def measure_history(
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Stop pushing, read the history back, and check the provisioned dashboards.

    ::

        - type: probe
          name: measure-history
          provider: {type: python, module: probes.obs, func: measure_history}
    """
    from mpac_drill.drill.context import current
    from mpac_drill.sandbox.obs import provision

    ctx = current(configuration)
    history: ObsHistory | None = ctx.extras.pop("_obs_history", None)
    if history is None:
        return {"measured": False}
    history.stop()
    present = history.read_back()
    for w in history.ledger:
        w.present = w.seq in present
    rpo = compute_rpo(history.ledger)
    ctx.measurements.update(acked_writes=rpo["acked_writes"], lost_writes=rpo["lost_writes"],
                            rpo_s=rpo["rpo_s"])
    expected = provision(EXPERIMENTS_DIR / "obs" / "dashboards")
    status, body = _call(f"{history.url}/dashboards", "GET", timeout_s=5)
    got = {(d["uid"], d["sha256"]) for d in body.get("dashboards", [])} if status == 200 else set()
    missing = [d["uid"] for d in expected if (d["uid"], d["sha256"]) not in got]
    obs = {"history_lines_acked": rpo["acked_writes"], "history_lines_lost": rpo["lost_writes"],
           "dashboards_expected": len(expected), "dashboards_provisioned": len(got),
           "dashboards_missing": len(missing), "missing_uids": missing}
    ctx.extras["obs"] = obs
    return obs

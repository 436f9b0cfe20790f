"""The sandbox's "mpac-obs": observability whose history lives in a bucket, not in the task.

Runbook §1.6: historical data is in S3 (Loki, Tempo) and a redeployed OBS box re-attaches
the same buckets; Grafana dashboards live in git and are provisioned on restart. Here each
task appends log lines and annotations to ``$MPAC_OBS_BUCKET/<stream>.jsonl`` (the bucket
folder outlives every task) and, at start, provisions the dashboards found in
``$MPAC_OBS_DASHBOARDS`` (``experiments/obs/dashboards/*.json``).

Endpoints: ``GET /health`` (bucket writable, dashboards provisioned), ``POST /push``
``{"stream", "line"}``, ``GET /query?stream=NAME`` (every line, oldest first),
``GET /dashboards`` (uid, title, sha256 of the file it came from).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mpac_drill.errors import SandboxError

_STREAM = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def provision(dashboards_dir: Path) -> list[dict[str, Any]]:
    """Read every dashboard file (as Grafana's file provisioner does)."""
    out = []
    for path in sorted(dashboards_dir.glob("*.json")):
        raw = path.read_bytes()
        doc = json.loads(raw)
        out.append({"uid": doc["uid"], "title": doc["title"], "file": path.name,
                    "sha256": hashlib.sha256(raw).hexdigest(),
                    "panels": len(doc.get("panels", []))})
    return out


def create_obs_app(bucket: Path | None = None, dashboards_dir: Path | None = None) -> Starlette:
    bucket = Path(bucket or os.environ.get("MPAC_OBS_BUCKET", ""))
    dashboards_dir = Path(dashboards_dir or os.environ.get("MPAC_OBS_DASHBOARDS", ""))
    if not str(bucket) or not dashboards_dir.is_dir():
        raise SandboxError("mpac-obs needs MPAC_OBS_BUCKET and MPAC_OBS_DASHBOARDS")
    bucket.mkdir(parents=True, exist_ok=True)
    dashboards = provision(dashboards_dir)
    started = time.time()

    async def health(request: Request) -> JSONResponse:
        probe = bucket / ".health"
        try:
            probe.write_text(str(time.time()))
            ok = bool(dashboards)
        except OSError:
            ok = False
        return JSONResponse({"ok": ok, "service": "mpac-obs", "dashboards": len(dashboards),
                             "up_s": round(time.time() - started, 3)},
                            status_code=200 if ok else 503)

    async def push(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            stream, line = str(body["stream"]), str(body["line"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "expected {stream, line}"}, status_code=400)
        if not _STREAM.match(stream):
            return JSONResponse({"error": "bad stream name"}, status_code=400)
        record = json.dumps({"ts": time.time(), "line": line[:2000]})
        with (bucket / f"{stream}.jsonl").open("a") as fh:
            fh.write(record + "\n")
            fh.flush()
            os.fsync(fh.fileno())  # acknowledged means durable in the bucket
        return JSONResponse({"stored": True}, status_code=201)

    async def query(request: Request) -> JSONResponse:
        stream = request.query_params.get("stream", "")
        if not _STREAM.match(stream):
            return JSONResponse({"error": "bad stream name"}, status_code=400)
        path = bucket / f"{stream}.jsonl"
        lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
        return JSONResponse({"stream": stream, "lines": lines})

    async def list_dashboards(request: Request) -> JSONResponse:
        return JSONResponse({"dashboards": dashboards})

    return Starlette(routes=[
        Route("/health", health, methods=["GET"]),
        Route("/push", push, methods=["POST"]),
        Route("/query", query, methods=["GET"]),
        Route("/dashboards", list_dashboards, methods=["GET"]),
    ])


__all__ = ["create_obs_app", "provision"]

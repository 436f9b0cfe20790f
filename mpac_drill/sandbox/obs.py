"""The sandbox's "mpac-obs": observability whose history lives in a bucket, not in the task.

Runbook §1.6: historical data is in S3 (Loki, Tempo) and a redeployed OBS box re-attaches
the same buckets; Grafana dashboards live in git and are provisioned on restart. Here each
task appends log lines and annotations to ``$MPAC_OBS_BUCKET/<stream>.jsonl`` (the bucket
folder outlives every task) and, at start, provisions the dashboards found in
``$MPAC_OBS_DASHBOARDS`` (``experiments/obs/dashboards/*.json``).

Endpoints: ``GET /health`` (bucket writable, dashboards provisioned), ``POST /push``
``{"stream", "line"}``, ``GET /query?stream=NAME`` (every line, oldest first),
``GET /dashboards`` (uid, title, sha256 of the file it came from), and the two calls of
Grafana's HTTP API the drill makes, in Grafana's shape: ``GET /api/dashboards/uid/{uid}``
(``{"dashboard": <the file's JSON>, "meta": {"provisioned": true, ...}}``, 404
``{"message": "Dashboard not found"}``) and ``GET /api/search?type=dash-db``. With an API
token (``api_token`` or ``$MPAC_OBS_API_TOKEN``) the ``/api`` calls need
``Authorization: Bearer <token>``, as Grafana's do.

``GET /api/cloudwatch/alarms`` is the alarm list panel of mpac-obs (Grafana's CloudWatch data
source reads alarms when the panel is viewed, it stores none): every alarm of the sandbox's
"CloudWatch" (``$MPAC_OBS_CLOUDWATCH``, the daemon's ``state.json``) with its state, when it
last changed and why. Unreachable data source: 502, as Grafana answers a failed proxy call.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mpac_drill.errors import SandboxError
from mpac_drill.grafana import dashboard_files
from mpac_drill.timefmt import iso

_STREAM = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_SLUG = re.compile(r"[^a-z0-9]+")


def provision(dashboards_dir: Path) -> list[dict[str, Any]]:
    """Read every dashboard file (as Grafana's file provisioner does)."""
    return [dict(d) for d in dashboard_files(dashboards_dir)]


def _slug(title: str) -> str:
    return _SLUG.sub("-", title.lower()).strip("-")


def _grafana_api(
    dashboards: list[dict[str, Any]],
    dashboards_dir: Path,
    started: float,
    api_token: str,
    cloudwatch: Path | None = None,
) -> list[Route]:
    """``/api/health``, ``/api/dashboards/uid/{uid}`` and ``/api/search`` over the
    provisioned files."""
    stamp = iso(datetime.fromtimestamp(started, UTC), timespec="seconds")
    docs: dict[str, tuple[int, dict[str, Any], dict[str, Any]]] = {}
    for i, d in enumerate(dashboards, 1):
        doc = json.loads((dashboards_dir / d["file"]).read_bytes())
        doc.update(id=i, version=doc.get("version") or 1)
        docs[d["uid"]] = (i, doc, d)

    def refused(request: Request) -> JSONResponse | None:
        if not api_token:
            return None
        given = request.headers.get("authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {api_token}".encode()):
            return None
        return JSONResponse({"message": "Unauthorized"}, status_code=401)

    async def dashboard_by_uid(request: Request) -> JSONResponse:
        if (denied := refused(request)) is not None:
            return denied
        found = docs.get(request.path_params["uid"])
        if found is None:
            return JSONResponse({"message": "Dashboard not found"}, status_code=404)
        _, doc, d = found
        slug = _slug(d["title"])
        meta = {
            "type": "db",
            "canSave": False,
            "canEdit": True,
            "canAdmin": False,
            "canStar": True,
            "canDelete": False,
            "slug": slug,
            "url": f"/d/{d['uid']}/{slug}",
            "expires": "0001-01-01T00:00:00Z",
            "created": stamp,
            "updated": stamp,
            "updatedBy": "Anonymous",
            "createdBy": "Anonymous",
            "version": doc["version"],
            "hasAcl": False,
            "isFolder": False,
            "folderId": 0,
            "folderUid": "",
            "folderTitle": "General",
            "folderUrl": "",
            "provisioned": True,
            "provisionedExternalId": d["file"],
        }
        return JSONResponse({"dashboard": doc, "meta": meta})

    async def search(request: Request) -> JSONResponse:
        if (denied := refused(request)) is not None:
            return denied
        q = request.query_params
        if q.get("type", "dash-db") != "dash-db":
            return JSONResponse([])  # no folders here
        words, tags = q.get("query", "").lower(), set(q.getlist("tag"))
        uids = set(q.getlist("dashboardUIDs"))
        hits = []
        for uid, (i, doc, d) in docs.items():
            if (
                (words and words not in d["title"].lower())
                or (uids and uid not in uids)
                or (tags and not tags <= set(doc.get("tags", [])))
            ):
                continue
            slug = _slug(d["title"])
            hits.append(
                {
                    "id": i,
                    "uid": uid,
                    "title": d["title"],
                    "uri": f"db/{slug}",
                    "url": f"/d/{uid}/{slug}",
                    "slug": "",
                    "type": "dash-db",
                    "tags": list(doc.get("tags", [])),
                    "isStarred": False,
                    "sortMeta": 0,
                }
            )
        hits.sort(key=lambda h: str(h["title"]).lower())
        try:
            limit = max(1, int(q.get("limit", "1000")))
        except ValueError:
            return JSONResponse({"message": "bad limit"}, status_code=400)
        return JSONResponse(hits[:limit])

    async def api_health(request: Request) -> JSONResponse:
        """Grafana's ``GET /api/health``: no authentication, the database's state."""
        return JSONResponse({"commit": "sandbox", "database": "ok", "version": "sandbox"})

    async def alarms(request: Request) -> JSONResponse:
        """The CloudWatch alarms as the data source reads them now."""
        if (denied := refused(request)) is not None:
            return denied
        try:
            state = json.loads(cloudwatch.read_text()) if cloudwatch else None
            found = (state or {}).get("detection") or {}
            listed = found["alarms"]
        except (OSError, ValueError, KeyError, TypeError):
            return JSONResponse({"message": "CloudWatch data source unreachable"}, 502)
        return JSONResponse(
            {
                "alarms": [
                    {
                        "name": a["name"],
                        "namespace": a["namespace"],
                        "metric": a["metric"],
                        "state": a["state"],
                        "state_updated_at": (
                            iso(datetime.fromtimestamp(a["state_updated_at"], UTC))
                            if a.get("state_updated_at") is not None
                            else None
                        ),
                        "reason": a.get("reason", ""),
                    }
                    for a in listed
                ],
            }
        )

    return [
        Route("/api/cloudwatch/alarms", alarms, methods=["GET"]),
        Route("/api/health", api_health, methods=["GET"]),
        Route("/api/dashboards/uid/{uid}", dashboard_by_uid, methods=["GET"]),
        Route("/api/search", search, methods=["GET"]),
    ]


def create_obs_app(
    bucket: Path | None = None,
    dashboards_dir: Path | None = None,
    api_token: str | None = None,
    cloudwatch: Path | None = None,
) -> Starlette:
    bucket = Path(bucket or os.environ.get("MPAC_OBS_BUCKET", ""))
    cw = cloudwatch or (
        Path(os.environ["MPAC_OBS_CLOUDWATCH"]) if os.environ.get("MPAC_OBS_CLOUDWATCH") else None
    )
    dashboards_dir = Path(dashboards_dir or os.environ.get("MPAC_OBS_DASHBOARDS", ""))
    if not str(bucket) or not dashboards_dir.is_dir():
        raise SandboxError("mpac-obs needs MPAC_OBS_BUCKET and MPAC_OBS_DASHBOARDS")
    bucket.mkdir(parents=True, exist_ok=True)
    dashboards = provision(dashboards_dir)
    started = time.time()
    token = api_token if api_token is not None else os.environ.get("MPAC_OBS_API_TOKEN", "")

    async def health(request: Request) -> JSONResponse:
        probe = bucket / ".health"
        try:
            probe.write_text(str(time.time()))
            ok = bool(dashboards)
        except OSError:
            ok = False
        return JSONResponse(
            {
                "ok": ok,
                "service": "mpac-obs",
                "dashboards": len(dashboards),
                "up_s": round(time.time() - started, 3),
            },
            status_code=200 if ok else 503,
        )

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

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/push", push, methods=["POST"]),
            Route("/query", query, methods=["GET"]),
            Route("/dashboards", list_dashboards, methods=["GET"]),
            *_grafana_api(dashboards, dashboards_dir, started, token, cw),
        ]
    )


__all__ = ["create_obs_app", "provision"]

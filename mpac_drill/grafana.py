"""Grafana's HTTP API, read only: are the repo's dashboards provisioned (runbook §1.6)?

Runbook §1.6: "Grafana dashboards are in git, automatically provisioned on restart". The
dashboards of this repo are the files ``experiments/obs/dashboards/*.json``; after mpac-obs
is redeployed, :func:`check_dashboards` asks Grafana for each of them
(``GET {grafana_url}/api/dashboards/uid/{uid}``) and compares what it answers with the file.
The sandbox's mpac-obs answers the same API in the same shape, so one check serves the
sandbox and a real Grafana. Standard library only (``http.client``), every request bounded
by a timeout. The API token, when there is one, is sent as ``Authorization: Bearer`` and is
never logged, returned or written.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import ssl
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import quote, urlsplit

from chaoslib.exceptions import ActivityFailed

from mpac_drill import EXPERIMENTS_DIR

logger = logging.getLogger("mpac_drill")

#: Where the repo keeps its dashboards (runbook: ``mpac-obs/grafana/dashboards/``).
DASHBOARDS_DIR = EXPERIMENTS_DIR / "obs" / "dashboards"
_API = "/api/dashboards/uid/"


class DashboardFile(TypedDict):
    """One dashboard file of the repo, as Grafana's file provisioner reads it."""

    uid: str
    title: str
    file: str
    sha256: str
    panels: int


class DashboardCheck(TypedDict):
    uid: str
    title: str
    file: str
    provisioned: bool  # Grafana answered it, with the file's title and panel count
    http_status: int  # 0: no answer
    detail: str  # "ok", "not found", "title differs: ...", ...
    provisioned_from_file: bool | None  # Grafana's meta.provisioned, when it said


class DashboardsResult(TypedDict):
    grafana_url: str
    dashboards_expected: int
    dashboards_provisioned: int
    dashboards_missing: int
    missing_uids: list[str]
    dashboards: list[DashboardCheck]


def dashboard_files(directory: Path = DASHBOARDS_DIR) -> list[DashboardFile]:
    """Every ``*.json`` dashboard in ``directory``, sorted by file name."""
    out = []
    for path in sorted(Path(directory).glob("*.json")):
        raw = path.read_bytes()
        doc = json.loads(raw)
        out.append(
            DashboardFile(
                uid=str(doc["uid"]),
                title=str(doc["title"]),
                file=path.name,
                sha256=hashlib.sha256(raw).hexdigest(),
                panels=len(doc.get("panels", [])),
            )
        )
    return out


def dashboard_urls(grafana_url: str, expected: list[DashboardFile]) -> list[str]:
    """The GETs :func:`check_dashboards` makes, in order (for a dry run's plan)."""
    base = grafana_url.rstrip("/")
    return [f"{base}{_API}{quote(d['uid'], safe='')}" for d in expected]


def check_dashboards(
    grafana_url: str,
    expected: list[DashboardFile] | None = None,
    *,
    token: str | None = None,
    timeout_s: float = 5.0,
) -> DashboardsResult:
    """Ask Grafana for each expected dashboard and compare it with its file.

    A dashboard counts as provisioned when ``GET /api/dashboards/uid/{uid}`` answers 200
    with the file's title and number of top-level panels. Not found, a different title or
    panel count, a 5xx or no answer at all count it as missing (``detail`` says which).

    :param grafana_url: Grafana's base URL (``https://grafana.example.com``), or the
        sandbox's mpac-obs.
    :param expected: the dashboards to find; default the repo's files.
    :param token: a Grafana API token (service account token); never logged.
    :param timeout_s: per request, connecting and reading.
    :raises ActivityFailed: when Grafana refuses the credentials (401, 403): the drill
        cannot tell whether the dashboards are there.
    """
    expected = dashboard_files() if expected is None else expected
    checks = [
        _check_one(url, want, token, timeout_s)
        for url, want in zip(dashboard_urls(grafana_url, expected), expected, strict=True)
    ]
    missing = [c["uid"] for c in checks if not c["provisioned"]]
    return DashboardsResult(
        grafana_url=grafana_url,
        dashboards_expected=len(expected),
        dashboards_provisioned=len(checks) - len(missing),
        dashboards_missing=len(missing),
        missing_uids=missing,
        dashboards=checks,
    )


def _check_one(
    url: str, want: DashboardFile, token: str | None, timeout_s: float
) -> DashboardCheck:
    status, body = _get_json(url, token, timeout_s)
    if status in (401, 403):
        raise ActivityFailed(
            f"Grafana refused GET {url} ({status}): check obs.grafana_token_ssm_parameter"
        )
    check = DashboardCheck(
        uid=want["uid"],
        title=want["title"],
        file=want["file"],
        provisioned=False,
        http_status=status,
        detail="ok",
        provisioned_from_file=None,
    )
    dashboard = body.get("dashboard") if isinstance(body, dict) else None
    if status != 200 or not isinstance(dashboard, dict):
        check["detail"] = (
            "no answer"
            if status == 0
            else "not found"
            if status == 404
            else f"HTTP {status}"
            if status != 200
            else "not a dashboard"
        )
        return check
    meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
    if isinstance(meta.get("provisioned"), bool):
        check["provisioned_from_file"] = meta["provisioned"]
    panels = dashboard.get("panels")
    got_panels = len(panels) if isinstance(panels, list) else 0
    if dashboard.get("title") != want["title"]:
        check["detail"] = f"title differs: {str(dashboard.get('title'))[:80]!r}"
    elif got_panels != want["panels"]:
        check["detail"] = f"panel count differs: {got_panels}, file has {want['panels']}"
    else:
        check["provisioned"] = True
    return check


def grafana_health(grafana_url: str, timeout_s: float = 5.0) -> str | None:
    """Ask Grafana's ``GET /api/health`` (no token needed): ``None`` when Grafana answers
    and its database is ok, else one line saying what was wrong."""
    url = f"{grafana_url.rstrip('/')}/api/health"
    status, body = _get_json(url, None, timeout_s)
    if status == 0:
        return f"no answer from GET {url}"
    if status != 200:
        return f"GET {url} answered {status}"
    database = body.get("database") if isinstance(body, dict) else None
    if database != "ok":
        return f"GET {url}: database {database!r}"
    return None


def _get_json(url: str, token: str | None, timeout_s: float) -> tuple[int, Any]:
    """``(status, parsed body)``; ``(0, None)`` when nothing usable came back."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            host, parts.port, timeout=timeout_s, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout_s)
    headers = {"Accept": "application/json", "Connection": "close", "User-Agent": "mpac-drill"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(
            "GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers
        )
        resp = conn.getresponse()
        raw = resp.read(8 * 1024 * 1024)
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, None
    except (OSError, http.client.HTTPException) as exc:
        logger.warning("Grafana GET %s: no answer (%s)", url, exc.__class__.__name__)
        return 0, None
    finally:
        conn.close()


__all__ = [
    "DASHBOARDS_DIR",
    "DashboardFile",
    "DashboardCheck",
    "DashboardsResult",
    "dashboard_files",
    "dashboard_urls",
    "check_dashboards",
    "grafana_health",
]

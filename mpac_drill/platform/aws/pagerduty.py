"""PagerDuty on AWS, read-only: the pages the scenario's alarms caused, and their
acknowledgement (runbook "Detection" lines → §3.2 detect → acknowledge).

Optional target section ``pagerduty``: ``token_ssm_parameter`` (an SSM SecureString holding
a REST API v2 token, read with decryption through :func:`mpac_drill.aws.client` and kept in
this process's memory only), ``service_id`` (the PagerDuty service the alarms' SNS topic
routes to), ``api_url`` (default PagerDuty's; tests point it at a local server) and
``ca_bundle`` (a CA file for a private ``api_url``: the client accepts only ``https://``).

Read with PagerDuty's maintained client (``pagerduty.RestApiV2Client``), restricted to GET:
a reading is one ``GET /incidents`` (``since`` the injection, ``service_ids[]`` the service,
one page of at most ``pagerduty.max_incidents``) plus one ``GET /incidents/{id}/log_entries``
per incident whose acknowledgement is not yet known (``trigger_log_entry`` → paged,
``acknowledge_log_entry`` → acknowledged). It is paced with the CloudWatch readings
(``detection.poll_interval_s``) and bounded by ``detection.bound_s``. Errors name the call
and its HTTP status, never the client's message (which carries a fragment of the key).
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from typing import Any

from chaoslib.exceptions import ActivityFailed

from mpac_drill.aws import DryRun, DryRunCall, client
from mpac_drill.config import Target
from mpac_drill.measure.detection import IncidentReading

DEFAULT_API_URL = "https://api.pagerduty.com"
#: incidents read per reading (one page of GET /incidents)
DEFAULT_MAX_INCIDENTS = 25


def configured(target: Target) -> bool:
    """Whether the target names PagerDuty (both the token's parameter and the service)."""
    return bool(target.get("pagerduty.token_ssm_parameter")) and bool(
        target.get("pagerduty.service_id")
    )


def api_url(target: Target) -> str:
    return str(target.get("pagerduty.api_url") or DEFAULT_API_URL).rstrip("/")


def calls_per_reading() -> str:
    return "1 GET /incidents + 1 GET /incidents/{id}/log_entries per unacknowledged incident"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _read_only_client_class() -> type:
    """``RestApiV2Client`` that refuses any method but GET before sending anything."""
    import pagerduty

    class ReadOnlyClient(pagerduty.RestApiV2Client):
        @property
        def permitted_methods(self) -> tuple[str, ...]:
            return ("GET",)

    return ReadOnlyClient


class PagerDutyReader:
    """Reads one service's incidents from the injection on; the token stays in memory."""

    def __init__(self, target: Target, dry_run: DryRun | None = None) -> None:
        self.target = target
        self.dry_run = dry_run
        self.service_id = str(target.get("pagerduty.service_id") or "")
        self.max_incidents = int(target.get("pagerduty.max_incidents") or DEFAULT_MAX_INCIDENTS)
        self._client: Any = None
        #: incident id → its reading once acknowledged (its log is not read again)
        self._settled: dict[str, IncidentReading] = {}

    # ------------------------------------------------------------ the token and the client

    def _api(self) -> Any:
        if self._client is None:
            name = str(self.target.require("pagerduty.token_ssm_parameter"))
            found = client("ssm", self.target).get_parameter(Name=name, WithDecryption=True)
            token = str(found["Parameter"]["Value"])
            kw: dict[str, Any] = {}
            ca = self.target.get("pagerduty.ca_bundle")
            if ca:
                kw["verify"] = ssl.create_default_context(cafile=str(ca))
            made = _read_only_client_class()(token, base_url=api_url(self.target), **kw)
            made.timeout = 10.0
            made.max_network_attempts = 1
            made.sleep_timer = 0.5
            made.retry = {429: 2, 500: 1, 502: 1, 503: 1, 504: 1}  # never without limit
            self._client = made
        return self._client

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        import pagerduty

        try:
            body = self._api().jget(path, params=params)
        except pagerduty.HttpError as exc:
            status = getattr(exc.response, "status_code", "?")
            raise ActivityFailed(
                f"pagerduty GET {path} at {api_url(self.target)} failed: HTTP {status}"
            ) from None
        except pagerduty.Error:
            raise ActivityFailed(
                f"pagerduty GET {path} at {api_url(self.target)} failed: no answer"
            ) from None
        if not isinstance(body, dict):
            raise ActivityFailed(f"pagerduty GET {path}: the answer is not a JSON object")
        return body

    # ------------------------------------------------------------ a reading

    def _plan(self, since: float) -> tuple[list[IncidentReading], int]:
        """A dry run: the SSM read and the GETs are recorded, nothing is sent."""
        assert self.dry_run is not None
        name = str(self.target.get("pagerduty.token_ssm_parameter"))
        client("ssm", self.target, dry_run=self.dry_run).get_parameter(
            Name=name, WithDecryption=True
        )
        self.dry_run.calls.append(
            DryRunCall(
                service="pagerduty",
                operation="GET /incidents",
                region=api_url(self.target),
                params={
                    "since": _iso(since) if since > 0 else "the injection",
                    "service_ids[]": [self.service_id],
                    "limit": self.max_incidents,
                },
            )
        )
        self.dry_run.calls.append(
            DryRunCall(
                service="pagerduty",
                operation="GET /incidents/{id}/log_entries",
                region=api_url(self.target),
                params={"per": "unacknowledged incident"},
            )
        )
        return [], 1

    def read(self, since: float, until: float) -> tuple[list[IncidentReading], int]:
        """Incidents of the service created from ``since`` (the injection) to ``until`` (its
        bound) with their trigger and acknowledge times, and the number of GETs made."""
        if self.dry_run is not None:
            return self._plan(since)
        body = self._get(
            "/incidents",
            {
                "since": _iso(since),
                "until": _iso(until + 60),
                "service_ids[]": [self.service_id],
                "sort_by": "created_at:asc",
                "time_zone": "UTC",
                "limit": self.max_incidents,
                "offset": 0,
            },
        )
        calls = 1
        out: list[IncidentReading] = []
        for inc in list(body.get("incidents") or [])[: self.max_incidents]:
            iid = str(inc.get("id") or "")
            created = _epoch(inc.get("created_at"))
            if not iid or created is None:
                continue
            service = (inc.get("service") or {}).get("id")
            if service and self.service_id and service != self.service_id:
                continue  # a server that ignored service_ids[]
            if iid in self._settled:
                out.append(self._settled[iid])
                continue
            log = self._get(
                f"/incidents/{iid}/log_entries", {"time_zone": "UTC", "limit": 100, "offset": 0}
            )
            calls += 1
            triggered, acked = created, None
            for entry in log.get("log_entries") or []:
                at = _epoch(entry.get("created_at"))
                if at is None:
                    continue
                if entry.get("type") == "trigger_log_entry":
                    triggered = min(triggered, at)
                elif entry.get("type") == "acknowledge_log_entry" and (acked is None or at < acked):
                    acked = at
            reading: IncidentReading = {
                "id": iid,
                "title": str(inc.get("title") or inc.get("summary") or ""),
                "triggered_at": triggered,
                "acknowledged_at": acked,
            }
            if acked is not None:
                self._settled[iid] = reading
            out.append(reading)
        return out, calls


__all__ = ["DEFAULT_API_URL", "PagerDutyReader", "api_url", "calls_per_reading", "configured"]

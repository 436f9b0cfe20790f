"""A local PagerDuty REST API v2, on loopback over HTTPS (the maintained client accepts only
``https://`` base URLs), answering the documented shapes the drill reads:

- ``GET /incidents`` (``since``, ``until``, ``service_ids[]``, ``limit``, ``offset``):
  ``{"incidents": [...], "limit", "offset", "more", "total"}``, each incident with ``id``,
  ``type: "incident"``, ``title``, ``created_at`` (ISO 8601, whole seconds, UTC),
  ``status`` and ``service`` (a ``service_reference``);
- ``GET /incidents/{id}/log_entries``: ``{"log_entries": [...], ...}`` whose entries have
  ``type`` (``trigger_log_entry``, ``notify_log_entry``, ``acknowledge_log_entry``, ...) and
  ``created_at``.

Requests without ``Authorization: Token token=<token>`` get 401; anything but GET is
recorded (a test asserts there is none) and refused with 405.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (the certificate is its own CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pagerduty.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "pd-cert.pem", folder / "pd-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class FakePagerDuty:
    token: str
    incidents: list[dict[str, Any]] = field(default_factory=list)
    log_entries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    ca_file: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_incident(
        self,
        iid: str,
        title: str,
        service_id: str,
        triggered_at: float,
        acknowledged_at: float | None = None,
    ) -> None:
        """An incident triggered at ``triggered_at`` (its log: trigger, notify, and an
        acknowledgement at ``acknowledged_at`` if given)."""
        with self.lock:
            self.incidents.append(
                {
                    "id": iid,
                    "type": "incident",
                    "summary": f"[#{len(self.incidents) + 1}] {title}",
                    "self": f"{self.url}/incidents/{iid}",
                    "html_url": f"https://example.pagerduty.com/incidents/{iid}",
                    "incident_number": len(self.incidents) + 1,
                    "title": title,
                    "created_at": iso(triggered_at),
                    "status": "acknowledged" if acknowledged_at else "triggered",
                    "urgency": "high",
                    "incident_key": f"key-{iid}",
                    "service": {
                        "id": service_id,
                        "type": "service_reference",
                        "summary": "mpac-smartpos",
                        "self": f"{self.url}/services/{service_id}",
                    },
                }
            )
            entries = [
                {"id": f"{iid}-T", "type": "trigger_log_entry", "created_at": iso(triggered_at)},
                {"id": f"{iid}-N", "type": "notify_log_entry", "created_at": iso(triggered_at)},
            ]
            if acknowledged_at is not None:
                entries.append(
                    {
                        "id": f"{iid}-A",
                        "type": "acknowledge_log_entry",
                        "created_at": iso(acknowledged_at),
                        "agent": {"id": "PUSER1", "type": "user_reference"},
                    }
                )
            self.log_entries[iid] = [
                {
                    **e,
                    "summary": e["type"].replace("_log_entry", ""),
                    "self": f"{self.url}/log_entries/{e['id']}",
                    "incident": {"id": iid, "type": "incident_reference"},
                }
                for e in entries
            ]

    # ------------------------------------------------------------ answers

    def answer(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, Any]:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        with self.lock:
            self.requests.append(
                {"method": method, "path": parts.path, "query": query, "headers": headers}
            )
        if method != "GET":
            return 405, {"error": {"message": "read-only test server", "code": 2000}}
        if headers.get("authorization") != f"Token token={self.token}":
            return 401, {"error": {"message": "Unauthorized", "code": 2006}}
        limit = int(query.get("limit", ["25"])[0])
        offset = int(query.get("offset", ["0"])[0])
        if parts.path == "/incidents":
            since = _epoch(query["since"][0]) if "since" in query else 0.0
            until = _epoch(query["until"][0]) if "until" in query else float("inf")
            services = set(query.get("service_ids[]", []))
            with self.lock:
                found = [
                    i
                    for i in self.incidents
                    if since <= _epoch(i["created_at"]) < until
                    and (not services or i["service"]["id"] in services)
                ]
            page = found[offset : offset + limit]
            return 200, {
                "incidents": page,
                "limit": limit,
                "offset": offset,
                "more": offset + limit < len(found),
                "total": None,
            }
        bits = parts.path.strip("/").split("/")
        if len(bits) == 3 and bits[0] == "incidents" and bits[2] == "log_entries":
            with self.lock:
                entries = self.log_entries.get(bits[1])
            if entries is None:
                return 404, {"error": {"message": "Not Found", "code": 2100}}
            return 200, {
                "log_entries": entries[offset : offset + limit],
                "limit": limit,
                "offset": offset,
                "more": offset + limit < len(entries),
                "total": None,
            }
        return 404, {"error": {"message": "Not Found", "code": 2100}}


def start(fake: FakePagerDuty, folder: Path) -> ThreadingHTTPServer:
    cert, key = self_signed(folder)

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body = fake.answer(self.command, self.path, headers)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _reply

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fake.url = f"https://127.0.0.1:{server.server_address[1]}"
    fake.ca_file = str(cert)
    return server

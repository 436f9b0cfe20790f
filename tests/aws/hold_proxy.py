"""A loopback HTTP proxy in front of the moto server that holds one AWS action.

The harness-death tests need the harness killed *between* two AWS calls (after the
restore, before the rollback's delete). Polling moto and killing races the harness: its
delete can already be in flight when the test looks. Here the harness talks to moto
through this proxy; the first request for ``hold`` (e.g. ``DeleteDBInstance``) is never
forwarded: :attr:`Hold.seen` is set and the request waits until the proxy stops, so killing
the harness then is exactly "the harness died before the delete reached AWS". Every other
request is forwarded as is. Not a test module.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Hold:
    url: str
    seen: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    held: list[str] = field(default_factory=list)


def _action(path: str, body: bytes, headers: dict[str, str]) -> str:
    """The AWS action of a query-protocol (``Action=``) or JSON-protocol (``X-Amz-Target``)
    request."""
    target = headers.get("x-amz-target", "")
    if target:
        return target.rsplit(".", 1)[-1]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    with contextlib.suppress(UnicodeDecodeError):
        query.update(urllib.parse.parse_qs(body.decode()))
    return (query.get("Action") or [""])[0]


@contextlib.contextmanager
def holding(upstream: str, hold: str) -> Iterator[Hold]:
    """``with holding(moto_url, "DeleteDBInstance") as h``: point the target at ``h.url``."""
    up = urllib.parse.urlsplit(upstream)
    state: Hold

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            if _action(self.path, body, headers) == hold and not state.held:
                state.held.append(self.path)
                state.seen.set()
                state.release.wait(120)
                self.send_error(503, "held by the test proxy")
                return
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            try:
                conn.request(self.command, self.path, body, dict(self.headers.items()))
                resp = conn.getresponse()
                data = resp.read()
            finally:
                conn.close()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Hold(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="hold-proxy")
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()

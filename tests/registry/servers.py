"""Real HTTP servers on loopback ports, in threads, that record every request.

`LoopbackServer(app)` answers with `app(method, path, headers)`. Apps here: the
in-memory FakeRegistry behind a real socket (`registry_app`), a blob storage
serving bytes by digest (`storage_app`) and a relay to a real registry
(`relay_app`) — the storage host a registry redirects blob GETs to, which must
never see the registry's credentials.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Mapping, Tuple

import httpx

from tests.registry.fake_registry import FakeRegistry

Answer = Tuple[int, Dict[str, str], bytes]
App = Callable[[str, str, Dict[str, str]], Answer]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: Dict[str, str]  # names lower-case


class LoopbackServer:
    def __init__(self, app: App, bind: str = "127.0.0.1") -> None:
        self.seen: List[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real registries

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                server._handle(self, "GET", app)

            def do_HEAD(self) -> None:  # noqa: N802
                server._handle(self, "HEAD", app)

        self.server = ThreadingHTTPServer((bind, 0), Handler)
        self.port = self.server.server_address[1]
        self.host = f"{bind}:{self.port}"
        self.url = f"http://{self.host}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def requests(self, contains: str = "", method: str = "") -> List[Seen]:
        return [s for s in self.seen if contains in s.path and (not method or s.method == method)]

    def _handle(self, handler: BaseHTTPRequestHandler, method: str, app: App) -> None:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        self.seen.append(Seen(method, handler.path, headers))
        status, out, body = app(method, handler.path, headers)
        handler.send_response(status)
        for name, value in out.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                handler.send_header(name, value)
        length = out.get("content-length", str(len(body))) if method == "HEAD" else str(len(body))
        handler.send_header("Content-Length", length)
        handler.end_headers()
        if method != "HEAD":
            handler.wfile.write(body)


def registry_app(fake: FakeRegistry) -> App:
    """The in-memory registry behind a real socket (plain HTTP)."""

    def app(method: str, path: str, headers: Dict[str, str]) -> Answer:
        url = f"http://{headers['host']}{path}"
        answer = fake.send(method, url, httpx.Headers(headers))
        return answer.status_code, dict(answer.headers), answer.content

    return app


def storage_app(blobs: Mapping[str, bytes]) -> App:
    """Blob storage: GET .../<digest> (any path, any query) answers the blob."""

    def app(method: str, path: str, headers: Dict[str, str]) -> Answer:
        found = blobs.get(path.split("?", 1)[0].rsplit("/", 1)[-1])
        if found is None:
            return 404, {}, b""
        return 200, {"content-type": "application/octet-stream"}, found

    return app


def relay_app(upstream: str) -> App:
    """Storage in front of a real registry (host:port): relays the path, no credentials."""

    def app(method: str, path: str, headers: Dict[str, str]) -> Answer:
        conn = http.client.HTTPConnection(upstream, timeout=30)
        try:
            conn.request(method, path.split("?", 1)[0])
            answer = conn.getresponse()
            body = answer.read()
            kept = {k: v for k, v in answer.getheaders() if k.lower() == "content-type"}
            return answer.status, kept, body
        finally:
            conn.close()

    return app

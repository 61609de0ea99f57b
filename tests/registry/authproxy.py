"""A registry front in a thread: demands Bearer tokens, relays to a real registry.

The token server lives on the same port at /token and wants HTTP Basic
credentials. Every request is recorded, so tests can prove which calls the
client made (and that it never fetched a layer). With `storage` (a base URL),
blob GETs are answered with a 307 there, as registries send them to S3 or a CDN.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional, Tuple

_RELAYED = ("content-type", "docker-content-digest", "content-length", "location")


class TokenAuthProxy:
    def __init__(
        self,
        upstream: str,
        user: str = "",
        password: str = "",
        bind: str = "127.0.0.1",
        require_token: bool = True,
        token_field: str = "token",
        storage: str = "",
    ) -> None:
        self.upstream = upstream
        self.storage = storage
        self.user, self.password = user, password
        self.require_token = require_token
        self.token_field = token_field
        self.token = secrets.token_hex(16)
        self.requests: List[Tuple[str, str, str]] = []  # (method, path, authorization)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                proxy._handle(self, "GET")

            def do_HEAD(self) -> None:  # noqa: N802
                proxy._handle(self, "HEAD")

        self.server = ThreadingHTTPServer((bind, 0), Handler)
        self.host = f"{bind}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TokenAuthProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def paths(self, contains: str = "") -> List[str]:
        return [path for _, path, _ in self.requests if contains in path]

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        auth = handler.headers.get("Authorization", "")
        self.requests.append((method, handler.path, auth))
        if handler.path.startswith("/token"):
            self._token(handler, auth)
            return
        if self.require_token and auth != f"Bearer {self.token}":
            match = re.match(r"^/v2/(.+)/(?:manifests|blobs)/", handler.path)
            scope = f"repository:{match.group(1)}:pull" if match else ""
            challenge = f'Bearer realm="http://{self.host}/token",service="fake-registry"'
            if scope:
                challenge += f',scope="{scope}"'
            self._reply(handler, 401, {"WWW-Authenticate": challenge}, b'{"errors":[]}')
            return
        if self.storage and method == "GET" and "/blobs/" in handler.path:
            location = f"{self.storage}{handler.path}?X-Amz-Signature=s1gned"
            self._reply(handler, 307, {"Location": location}, b"")
            return
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            accept = handler.headers.get("Accept", "")
            conn.request(method, handler.path, headers={"Accept": accept} if accept else {})
            answer = conn.getresponse()
            body = answer.read()
            headers = {k: v for k, v in answer.getheaders() if k.lower() in _RELAYED}
            self._reply(handler, answer.status, headers, body, head=method == "HEAD")
        finally:
            conn.close()

    def _token(self, handler: BaseHTTPRequestHandler, auth: str) -> None:
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if self.user and auth != expected:
            self._reply(handler, 401, {}, b'{"details":"bad credentials"}')
            return
        body = json.dumps({self.token_field: self.token, "expires_in": 300}).encode()
        self._reply(handler, 200, {"Content-Type": "application/json"}, body)

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler,
        status: int,
        headers: dict[str, str],
        body: bytes,
        head: bool = False,
    ) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            if key.lower() != "content-length":
                handler.send_header(key, value)
        handler.send_header("Content-Length", headers.get("Content-Length", str(len(body))))
        handler.end_headers()
        if not head:
            handler.wfile.write(body)


def basic_auth_config(user: str, password: str, registry: str) -> str:
    """A Docker config.json granting `user:password` for `registry`."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {registry: {"auth": token}}})


def find(requests: List[Tuple[str, str, str]], pattern: str) -> Optional[Tuple[str, str, str]]:
    return next((r for r in requests if re.search(pattern, r[1])), None)

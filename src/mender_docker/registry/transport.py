"""The one I/O boundary of the registry client: send a request, get a response.

Everything above it (auth challenges, redirects, digests, platforms) is logic
tested with a fake transport; `HttpTransport` is the only code that opens
sockets. It never follows redirects itself: the client does, so that it can
drop credentials when a redirect leaves the registry host.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.parse
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple

from mender_docker.errors import RegistryError

# Manifests, configs and token answers are small; anything larger is not what
# we asked for, and reading it would be the layer download we promise to avoid.
MAX_BODY = 8 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)  # keys lower-case
    body: bytes = b""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


class Transport:
    """Interface: one method. Implementations raise RegistryError when unreachable."""

    def send(self, method: str, url: str, headers: Mapping[str, str]) -> Response:
        raise NotImplementedError


class HttpTransport(Transport):
    """http.client over plain HTTP or verified HTTPS, with a timeout on every request.

    Connections are kept alive and reused per host: resolving an image takes
    a few requests, and over a real network each new (TLS) connection costs
    round trips.
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, max_body: int = MAX_BODY) -> None:
        self.timeout = timeout
        self.max_body = max_body
        self._ssl: Optional[ssl.SSLContext] = None  # loading CA certificates takes time
        self._idle: Dict[Tuple[str, str], http.client.HTTPConnection] = {}
        self.connections_opened = 0

    def close(self) -> None:
        for connection in self._idle.values():
            connection.close()
        self._idle.clear()

    def _connect(self, scheme: str, host: str, port: Optional[int]) -> http.client.HTTPConnection:
        self.connections_opened += 1
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._ssl)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def send(self, method: str, url: str, headers: Mapping[str, str]) -> Response:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise RegistryError(f"unsupported URL scheme in {url!r}")
        key = (parts.scheme, parts.netloc)
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        try:
            while True:
                connection = self._idle.pop(key, None)
                reused = connection is not None
                if connection is None:
                    connection = self._connect(parts.scheme, parts.hostname or "", parts.port)
                try:
                    return self._exchange(connection, key, method, target, headers, parts.netloc)
                except (
                    http.client.RemoteDisconnected,
                    http.client.CannotSendRequest,
                    http.client.ResponseNotReady,
                    ConnectionResetError,
                    BrokenPipeError,
                ):
                    connection.close()
                    if not reused:
                        raise
                    # An idle kept-alive connection was closed or left mid-exchange: open a new one.
        except ssl.SSLError as exc:
            raise RegistryError(
                f"registry {parts.netloc}: TLS failed ({exc.reason or exc});"
                " mark it with --insecure-registry if it speaks plain HTTP"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            why = (
                "timed out"
                if isinstance(exc, (TimeoutError, socket.timeout))
                else str(exc) or type(exc).__name__
            )
            raise RegistryError(f"registry {parts.netloc} is unreachable: {why}") from None

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        key: Tuple[str, str],
        method: str,
        target: str,
        headers: Mapping[str, str],
        netloc: str,
    ) -> Response:
        keep = False
        try:
            connection.request(method, target, headers=dict(headers))
            answer = connection.getresponse()
            body = answer.read(self.max_body + 1)  # b"" for HEAD, and completes it
            if len(body) > self.max_body:
                raise RegistryError(
                    f"{netloc}: response to {method} {target} is larger than {self.max_body} bytes"
                )
            got: Dict[str, str] = {}
            for name, value in answer.getheaders():
                # Several WWW-Authenticate lines: keep the first (the one we can use).
                got.setdefault(name.lower(), value)
            # Reuse only a connection whose response was read to its end.
            keep = not answer.will_close and answer.isclosed()
            return Response(answer.status, got, body)
        finally:
            if keep:
                self._idle[key] = connection
            else:
                connection.close()

"""The registry client's one request path: an httpx client, configured once.

Every request the workstation makes to a registry — manifests, config blobs,
layer downloads, token requests — goes through one `HttpTransport`, with one
timeout (`DEFAULT_TIMEOUT`), one redirect limit (`MAX_REDIRECTS`) and one
User-Agent (`USER_AGENT`). Responses stream: `send` reads a small body (at most
`MAX_BODY` bytes), `stream` hands the open response to its caller, which reads a
layer chunk by chunk to disk.

httpx follows redirects and drops the `Authorization` header when a redirect
leaves the origin (scheme, host and port): registries redirect blob GETs to
storage (S3, a CDN) whose URLs carry their own signatures, and those hosts must
never see registry credentials. The registry auth flow (`auth.RegistryAuth`, an
`httpx.Auth`) is handed to `send`/`stream` and answers 401 challenges in the
same request. httpx errors become one-line `RegistryError`s here.

Below it, the network is an httpx transport (`Transport`): by default httpx's
own (sockets; TLS verified against the system's CA store, made on the first
HTTPS request); tests plug an in-memory registry in its place.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Mapping, Optional

import httpx

from mender_docker.errors import RegistryError

# Manifests, configs and token answers are small; anything larger is not what
# we asked for, and reading it would be the layer download we promise to avoid.
MAX_BODY = 8 * 1024 * 1024
# Seconds, for each of: connecting, each read (so a layer download may take as
# long as it needs while bytes keep coming), each write, waiting for a pooled
# connection.
DEFAULT_TIMEOUT = 30.0
# Redirects one request may follow. httpx counts the earlier steps of an auth
# flow (the 401 and the token answer) among them: a request that first had to
# get a token can follow 3 more, and registries redirect a blob once.
MAX_REDIRECTS = 5
USER_AGENT = "mender-docker-gen"

# The network below the client: httpx's HTTPTransport, or a test's fake registry.
Transport = httpx.BaseTransport


@dataclass(frozen=True)
class Response:
    """A small response read whole (manifests, configs, token answers)."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)  # keys lower-case
    body: bytes = b""
    url: str = ""  # where it came from, after redirects

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


class Stream:
    """An open response: status and headers now, the body as it arrives."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.url = str(response.url)

    def header(self, name: str) -> str:
        return str(self._response.headers.get(name, ""))

    def chunks(self) -> Iterator[bytes]:
        """The body's bytes as they arrive (a RegistryError if the connection fails)."""
        response = self._response
        # We ask for no Content-Encoding: the raw bytes are the body, read without
        # httpx's decoding layer (a quarter faster). A server that encodes anyway is
        # decoded; a response already in memory (a test's transport) is read as it is.
        decode = (
            response.headers.get("content-encoding", "identity") != "identity"
            or response.is_stream_consumed
        )
        try:
            yield from response.iter_bytes() if decode else response.iter_raw()
        except httpx.HTTPError as exc:
            where = _netloc(self.url)
            raise RegistryError(f"download from {where} interrupted: {_why(exc)}") from None

    def read(self, limit: int = MAX_BODY) -> bytes:
        """The whole body, refused if larger than `limit` bytes (without reading it all)."""
        declared = self._response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(self._response, limit)
        body = bytearray()
        for chunk in self.chunks():
            body += chunk
            if len(body) > limit:
                raise _too_large(self._response, limit)
        return bytes(body)

    def whole(self, limit: int = MAX_BODY) -> Response:
        body = self.read(limit)
        headers = {name.lower(): value for name, value in self._response.headers.items()}
        return Response(self.status, headers, body, self.url)


class HttpTransport:
    """The one httpx.Client of a registry client; safe to share between threads.

    Connections are kept alive and reused per host: resolving an image takes a
    few requests, and over a real network each new (TLS) connection costs round
    trips. `network` replaces httpx's own transport (tests: a fake registry).
    """

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        network: Optional[Transport] = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self.timeout = timeout
        self.max_body = max_body
        self.connections_opened = 0  # TCP connections made (httpx's own network only)
        self._lock = threading.Lock()
        self._client = httpx.Client(
            transport=network or _Network(),
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            # Layers are gzip already; manifests are small: no Content-Encoding, the
            # bytes we hash are the bytes the registry stores.
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            # No proxies, .netrc or SSL_CERT_FILE from the environment, as before httpx.
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        url: str,
        headers: Optional[Mapping[str, str]] = None,
        auth: Optional[httpx.Auth] = None,
    ) -> Iterator[Stream]:
        """Send one request (auth flow and redirects included); the response streams."""
        request = self._client.build_request(
            method, url, headers=dict(headers or {}), extensions={"trace": self._trace}
        )
        try:
            response = self._client.send(request, auth=auth or _NO_AUTH, stream=True)
        except httpx.TooManyRedirects as exc:
            raise RegistryError(
                f"registry {_netloc(url)}: too many redirects for {_failed_url(exc, url)}"
            ) from None
        except httpx.HTTPError as exc:
            raise _unreachable(exc, url) from None
        try:
            yield Stream(response)
        finally:
            response.close()

    def send(
        self,
        method: str,
        url: str,
        headers: Optional[Mapping[str, str]] = None,
        auth: Optional[httpx.Auth] = None,
        limit: Optional[int] = None,
    ) -> Response:
        """Send one request and read its (small) response whole."""
        with self.stream(method, url, headers, auth) as answer:
            return answer.whole(self.max_body if limit is None else limit)

    def _trace(self, event: str, info: Dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            with self._lock:
                self.connections_opened += 1


class _Network(httpx.BaseTransport):
    """httpx's network transport, the TLS one made on the first HTTPS request
    (loading the system's CA certificates takes time a plain-HTTP registry need
    not spend)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_scheme: Dict[str, httpx.HTTPTransport] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        scheme = request.url.scheme
        with self._lock:
            transport = self._by_scheme.get(scheme)
            if transport is None:
                # Verified TLS with the system's CA store (not certifi's bundle), as
                # ssl.create_default_context() gives. Plain HTTP needs no CA store:
                # its context (verifying, with no CA) is never used.
                context = (
                    ssl.create_default_context()
                    if scheme == "https"
                    else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                )
                transport = self._by_scheme[scheme] = httpx.HTTPTransport(verify=context)
        return transport.handle_request(request)

    def close(self) -> None:
        with self._lock:
            for transport in self._by_scheme.values():
                transport.close()
            self._by_scheme.clear()


_NO_AUTH = httpx.Auth()  # the base class sends the request as it is


def _netloc(url: str) -> str:
    return httpx.URL(url).netloc.decode("ascii")


def _failed_url(exc: httpx.HTTPError, fallback: str) -> str:
    try:
        return str(exc.request.url)
    except RuntimeError:  # no request attached
        return fallback


def _why(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return str(exc) or type(exc).__name__


def _unreachable(exc: httpx.HTTPError, url: str) -> RegistryError:
    where = _netloc(_failed_url(exc, url))
    cause: Optional[BaseException] = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return RegistryError(
                f"registry {where}: TLS failed ({cause.reason or cause});"
                " mark it with --insecure-registry if it speaks plain HTTP"
            )
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.UnsupportedProtocol):
        return RegistryError(f"unsupported URL scheme in {_failed_url(exc, url)!r}")
    return RegistryError(f"registry {where} is unreachable: {_why(exc)}")


def _too_large(response: httpx.Response, limit: int) -> RegistryError:
    request = response.request
    return RegistryError(
        f"{request.url.netloc.decode('ascii')}: response to {request.method}"
        f" {request.url.raw_path.decode('ascii')} is larger than {limit} bytes"
    )

"""Registry authentication: challenges, credentials, tokens, and the auth flow.

Supported: anonymous access, `Basic` challenges, and the `Bearer` token flow
(GET the realm with service and scope, with Basic credentials if we have
some; the answer carries `token` or `access_token`). `RegistryAuth` is that
flow for one repository, as an `httpx.Auth`: it does no I/O of its own but
yields the requests to send (the retried request, the token request) to the
client's one transport (transport.py), which sends them, following redirects.

Credentials are found as docker (cli/config/configfile) finds them, in the
Docker config file (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`)
under the registry's key: `host[:port]`, or `https://index.docker.io/v1/` for
Docker Hub. First match wins:

1. `credHelpers[key]`: that credential helper (an empty name there means "no
   helper for this registry", so `auths`, even with a `credsStore`);
2. `credsStore`: the default credential helper;
3. `auths.<key>`: `auth` = base64("user:password"), or `username`/`password`.

A helper is the program `docker-credential-<name>` on PATH, run as
`docker-credential-<name> get` (see credential_helper.py). When a helper is
configured its answer is final, as in docker: if it has no credentials
("credentials not found in native keychain") the registry is tried
anonymously, and `auths` is not consulted. Helpers run only when a registry
asks for credentials (HTTP 401), so public images never need them. Identity
tokens (helper Username `<token>`) are not supported: a clear error says so.
`DOCKER_AUTH_CONFIG` (docker 28) is not read.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Generator, List, Mapping, Optional, Tuple

import httpx

from mender_docker.errors import RegistryError
from mender_docker.registry.credential_helper import HELPER_TIMEOUT, get_credentials

_PARAM = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')
HUB_SERVER = "https://index.docker.io/v1/"  # docker's key for Docker Hub credentials
_HUB_DOMAINS = ("docker.io", "index.docker.io")
_HUB_KEYS = (HUB_SERVER, "index.docker.io", "docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic", lower-case
    params: Mapping[str, str]


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def parse_challenge(header: str) -> Optional[Challenge]:
    """Parse one WWW-Authenticate value; None if empty or unparseable."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params: Dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if not match or match.end() == pos:
            break
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare or ""
        params[match.group(1).lower()] = value
        pos = match.end()
    return Challenge(scheme.lower(), params)


def token_url(challenge: Challenge, scope: str) -> str:
    """The URL to ask a Bearer realm for a token for `scope`."""
    realm = challenge.params.get("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise RegistryError(f"token realm {realm!r} is not an http(s) URL")
    query = []
    if challenge.params.get("service"):
        query.append(("service", challenge.params["service"]))
    query.append(("scope", challenge.params.get("scope") or scope))
    separator = "&" if "?" in realm else "?"
    return realm + separator + urllib.parse.urlencode(query)


def parse_token(body: bytes, realm: str) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    token = None
    if isinstance(answer, dict):
        token = answer.get("token") or answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise RegistryError(f"token server {realm} answered without a token")
    return token


class CredentialSource:
    """The credentials of one client, looked up once per registry (a credential
    helper is a process, maybe a cloud call), and the hint that ends a refusal."""

    def __init__(self, environ: Optional[Mapping[str, str]] = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._lock = threading.Lock()
        self._locks: Dict[str, threading.Lock] = {}  # one per registry: a slow helper
        self._found: Dict[str, Optional[Credentials]] = {}  # blocks only its registry

    def get(self, registry: str, domain: str) -> Optional[Credentials]:
        with self._lock:
            lock = self._locks.setdefault(registry, threading.Lock())
        with lock:
            if registry not in self._found:
                self._found[registry] = load_credentials(registry, domain, self._environ)
            return self._found[registry]

    def hint(self, registry: str, domain: str) -> str:
        """The end of a refusal: where the credentials came from, or that there were none."""
        helper = configured_helper(domain, self._environ)
        if helper is not None:
            source = f"credential helper docker-credential-{helper}"
            if self.get(registry, domain) is None:
                return f"; {source} has no credentials for it (docker login)"
            return f"; the credentials from {source} were refused"
        if self.get(registry, domain) is None:
            return "; no credentials for it in the Docker config (docker login)"
        return "; the credentials in the Docker config were refused"


class RegistryAuth(httpx.Auth):
    """The auth flow for one repository of one registry; keeps its Authorization.

    A request goes out with the Authorization we have (none at first). On a 401
    from the registry's own origin, a Basic challenge is answered with the
    credentials, a Bearer one with a token for `repository:<repo>:pull` from
    the challenge's realm (asked with the credentials, if any); the request is
    then sent once more. A 401 or 403 after that is a RegistryError that says
    where the credentials came from. Redirects are not this flow's business:
    httpx follows them and drops the Authorization when they leave the origin.
    """

    def __init__(
        self, registry: str, domain: str, repository: str, credentials: CredentialSource
    ) -> None:
        self.registry, self.domain, self.repository = registry, domain, repository
        self.credentials = credentials
        self.authorization: Optional[str] = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.authorization:
            request.headers["Authorization"] = self.authorization
        response = yield request
        if response.status_code == 401 and _origin(response.request.url) == _origin(request.url):
            challenges = response.headers.get_list("www-authenticate")
            self.authorization = yield from self._authorize(request, challenges)
            request.headers["Authorization"] = self.authorization
            response = yield request
        if response.status_code in (401, 403):
            raise RegistryError(
                f"registry {self.registry} refused access to {self.repository}"
                f" (HTTP {response.status_code}){self._hint()}"
            )

    def _authorize(
        self, request: httpx.Request, challenges: List[str]
    ) -> Generator[httpx.Request, httpx.Response, str]:
        # Several WWW-Authenticate lines: the first is the one registries mean.
        challenge = parse_challenge(challenges[0] if challenges else "")
        if challenge is None:
            raise RegistryError(f"registry {self.registry} refused access (HTTP 401, no challenge)")
        if challenge.scheme not in ("basic", "bearer"):
            raise RegistryError(
                f"registry {self.registry}: unsupported auth scheme {challenge.scheme!r}"
            )
        credentials = self.credentials.get(self.registry, self.domain)
        if challenge.scheme == "basic":
            if credentials is None:
                raise RegistryError(f"registry {self.registry} requires a login{self._hint()}")
            return credentials.basic_header()
        url = token_url(challenge, f"repository:{self.repository}:pull")
        headers = {"Accept": "application/json"}
        if credentials is not None:
            headers["Authorization"] = credentials.basic_header()
        reply = yield _token_request(request, url, headers)
        body = _read_small(reply)
        if reply.status_code in (401, 403):
            raise RegistryError(
                f"registry {self.registry}: token server refused the credentials"
                f" (HTTP {reply.status_code}){self._hint()}"
            )
        if reply.status_code != 200:
            raise RegistryError(
                f"registry {self.registry}: token server answered HTTP {reply.status_code}"
            )
        return "Bearer " + parse_token(body, challenge.params.get("realm", ""))

    def _hint(self) -> str:
        return self.credentials.hint(self.registry, self.domain)


TOKEN_MAX = 1024 * 1024  # a token answer is a few KiB


def _token_request(request: httpx.Request, url: str, headers: Mapping[str, str]) -> httpx.Request:
    """A GET of the realm, with the client's own headers (User-Agent...) and
    extensions (timeout...) from the request that was challenged."""
    inherited = {
        name: value
        for name, value in request.headers.items()
        if name.lower() not in ("host", "authorization", "accept")
    }
    return httpx.Request(
        "GET", url, headers={**inherited, **headers}, extensions=dict(request.extensions)
    )


def _read_small(response: httpx.Response) -> bytes:
    """The token answer, read whole (httpx keeps it: the flow's responses end in
    the request's history), refused when it announces more than TOKEN_MAX."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > TOKEN_MAX:
        raise RegistryError(f"token server {response.url.host}: answer is too large")
    return response.read()


def _origin(url: httpx.URL) -> Tuple[str, str, Optional[int]]:
    return url.scheme, url.host, url.port


def docker_config_path(environ: Optional[Mapping[str, str]] = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    return Path(env.get("HOME") or Path.home()) / ".docker" / "config.json"


def server_address(domain: str) -> str:
    """The key docker files a registry's credentials under, and hands its helpers."""
    return HUB_SERVER if domain in _HUB_DOMAINS else domain


def load_credentials(
    registry: str,
    domain: str,
    environ: Optional[Mapping[str, str]] = None,
    timeout: float = HELPER_TIMEOUT,
) -> Optional[Credentials]:
    """Credentials for `registry` from the Docker config or its credential helper, or None.

    `environ` gives DOCKER_CONFIG/HOME, and PATH and the environment for a helper;
    `timeout` bounds a helper's run (seconds).
    """
    path, config = _read_config(environ)
    server = server_address(domain)
    helper = _configured_helper(config, server, path)
    if helper is not None:
        answer = get_credentials(helper, server, registry, environ, timeout)
        return None if answer is None else Credentials(answer.username, answer.secret)
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return None
    wanted = {registry, domain}
    if domain in _HUB_DOMAINS:
        wanted.update(_HUB_KEYS)
    for key, entry in auths.items():
        if _config_host(key) in wanted and isinstance(entry, dict):
            return _decode_entry(entry, key, path)
    return None


def configured_helper(domain: str, environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The name of the credential helper docker would ask for `domain`, or None."""
    path, config = _read_config(environ)
    return _configured_helper(config, server_address(domain), path)


def _read_config(environ: Optional[Mapping[str, str]]) -> Tuple[Path, Dict[str, Any]]:
    path = docker_config_path(environ)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return path, {}
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read Docker config {path}: {exc}") from None
    return path, config if isinstance(config, dict) else {}


def _configured_helper(config: Mapping[str, Any], server: str, path: Path) -> Optional[str]:
    """docker's getConfiguredCredentialStore: credHelpers[server], else credsStore."""
    helpers = config.get("credHelpers")
    if helpers is not None and not isinstance(helpers, dict):
        raise RegistryError(f"Docker config {path}: credHelpers is not an object")
    if helpers and server in helpers:
        name, field = helpers[server], f"credHelpers.{server}"
    else:
        name, field = config.get("credsStore"), "credsStore"
    if name is None:
        return None
    if not isinstance(name, str):
        raise RegistryError(f"Docker config {path}: {field} is not a string")
    return name or None


def _config_host(key: str) -> str:
    """Config keys may be "host:port", "https://host/v1/" or "http://host"."""
    if "://" in key:
        netloc = urllib.parse.urlsplit(key).netloc
        return "docker.io" if netloc == "index.docker.io" else netloc
    return key.split("/", 1)[0]


def _decode_entry(entry: Mapping[str, object], key: str, path: Path) -> Optional[Credentials]:
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            user, sep, password = base64.b64decode(auth).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise RegistryError(
                f"Docker config {path}: auths.{key}.auth is not base64 user:password"
            )
        return Credentials(user, password)
    name, secret = entry.get("username"), entry.get("password")
    if isinstance(name, str) and isinstance(secret, str):
        return Credentials(name, secret)
    return None

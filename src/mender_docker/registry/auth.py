"""Registry authentication as logic without I/O: challenges, credentials, tokens.

Supported: anonymous access, `Basic` challenges, and the `Bearer` token flow
(GET the realm with service and scope, with Basic credentials if we have
some; the answer carries `token` or `access_token`). Credentials come from the
Docker config file (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`),
`auths.<host>.auth` = base64("user:password"). Credential helpers
(`credsStore`, `credHelpers`) are not run: such registries are tried
anonymously, and a refusal says so.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional

from mender_docker.errors import RegistryError

_PARAM = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')
_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


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


def docker_config_path(environ: Optional[Mapping[str, str]] = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    return Path(env.get("HOME") or Path.home()) / ".docker" / "config.json"


def load_credentials(
    registry: str, domain: str, environ: Optional[Mapping[str, str]] = None
) -> Optional[Credentials]:
    """Credentials for `registry` from the Docker config file, or None."""
    path = docker_config_path(environ)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read Docker config {path}: {exc}") from None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return None
    wanted = {registry, domain}
    if domain in ("docker.io", "index.docker.io"):
        wanted.update(_HUB_KEYS)
    for key, entry in auths.items():
        if _config_host(key) in wanted and isinstance(entry, dict):
            return _decode_entry(entry, key, path)
    return None


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

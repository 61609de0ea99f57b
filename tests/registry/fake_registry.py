"""An in-memory registry in place of the network: an httpx transport.

For fast tests of the client's logic (auth flows, redirects, fallbacks,
platform choice): the client's one transport (httpx.Client, its redirects and
the auth flow) runs as in production, only the bytes never reach a socket.
The same behaviours are proven on a real docker-registry in test_client_real.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import httpx

from mender_docker.registry import Transport
from tests.registry.ocipush import OCI_CONFIG, OCI_LAYER, layer

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Call:
    method: str
    url: str
    headers: Mapping[str, str]  # httpx.Headers: names case-insensitive
    extensions: Mapping[str, Any] = field(default_factory=dict)  # httpx's: "timeout"...


def reply(
    status: int, headers: Optional[Mapping[str, str]] = None, body: bytes = b""
) -> httpx.Response:
    return httpx.Response(status, headers=dict(headers or {}), content=body)


@dataclass
class FakeRegistry(Transport):
    host: str = "reg.example"
    auth: Optional[str] = None  # None, "basic" or "bearer"
    user: str = "u"
    password: str = "p"
    head_allowed: bool = True
    digest_header: bool = True
    redirect_blobs: bool = False  # blobs answered by a 307 to storage_url
    storage_url: str = "https://storage.example"  # another host (or a path of this one)
    manifests: Dict[Tuple[str, str], Tuple[bytes, str]] = field(default_factory=dict)
    blobs: Dict[str, bytes] = field(default_factory=dict)
    calls: List[Call] = field(default_factory=list)
    tamper: bool = False  # serve manifests with a byte changed

    token: str = "tok-123"
    realm_scheme: str = "https"  # "http" when served on a loopback socket (servers.py)

    # -- building content -------------------------------------------------------

    def add_manifest(
        self, repo: str, tag: Optional[str], manifest: Mapping[str, Any]
    ) -> Tuple[str, int]:
        data = json.dumps(manifest).encode()
        digest = digest_of(data)
        self.manifests[(repo, digest)] = (data, str(manifest["mediaType"]))
        if tag:
            self.manifests[(repo, tag)] = (data, str(manifest["mediaType"]))
        return digest, len(data)

    def add_image(
        self,
        repo: str,
        tag: Optional[str],
        layer_sizes: List[int],
        platform: Tuple[str, str, str] = ("linux", "amd64", ""),
    ) -> Tuple[str, int, int]:
        """Returns (manifest digest, manifest size, image size)."""
        config: Dict[str, Any] = {"os": platform[0], "architecture": platform[1]}
        if platform[2]:
            config["variant"] = platform[2]
        config_data = json.dumps(config).encode()
        self.blobs[digest_of(config_data)] = config_data
        layers = [
            {"mediaType": "x", "digest": "sha256:" + f"{i:064x}", "size": size}
            for i, size in enumerate(layer_sizes)
        ]
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "c",
                "digest": digest_of(config_data),
                "size": len(config_data),
            },
            "layers": layers,
        }
        digest, size = self.add_manifest(repo, tag, manifest)
        return digest, size, len(config_data) + sum(layer_sizes)

    def add_layered_image(
        self,
        repo: str,
        tag: Optional[str],
        layers: List[Mapping[str, bytes]],
        platform: Tuple[str, str] = ("linux", "amd64"),
    ) -> Tuple[str, str, List[bytes]]:
        """An image with real gzip layers and diff_ids, as the exporter needs.
        Returns (manifest digest, config digest, layer blobs)."""
        made = [layer(files) for files in layers]
        config = {
            "os": platform[0],
            "architecture": platform[1],
            "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in made]},
        }
        config_data = json.dumps(config).encode()
        self.blobs[digest_of(config_data)] = config_data
        for data, _ in made:
            self.blobs[digest_of(data)] = data
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": digest_of(config_data),
                "size": len(config_data),
            },
            "layers": [
                {"mediaType": OCI_LAYER, "digest": digest_of(data), "size": len(data)}
                for data, _ in made
            ],
        }
        digest, _ = self.add_manifest(repo, tag, manifest)
        return digest, digest_of(config_data), [data for data, _ in made]

    # -- the Transport -----------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.send(request.method, str(request.url), request.headers, request.extensions)

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        extensions: Optional[Mapping[str, Any]] = None,
    ) -> httpx.Response:
        self.calls.append(Call(method, url, headers, dict(extensions or {})))
        parts = urllib.parse.urlsplit(url)
        if url.startswith(self.storage_url + "/"):
            return reply(200, {}, self.blobs.get(parts.path.rsplit("/", 1)[-1], b""))
        if parts.path == "/token":
            expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            if headers.get("Authorization") != expected:
                return reply(401)
            return reply(200, {}, json.dumps({"access_token": self.token}).encode())
        denied = self._denied(headers)
        if denied is not None:
            return denied
        path = parts.path[len("/v2/") :]
        if "/manifests/" in path:
            repo, ref = path.split("/manifests/")
            found = self.manifests.get((repo, ref))
            if found is None:
                return reply(404, {}, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            if method == "HEAD" and not self.head_allowed:
                return reply(405)
            data, media = found
            answer: Dict[str, str] = {"content-type": media}
            if self.digest_header:
                answer["docker-content-digest"] = digest_of(data)
            if self.tamper:
                data = data.replace(b"schemaVersion", b"schemaversion")
            return reply(200, answer, b"" if method == "HEAD" else data)
        if "/blobs/" in path:
            digest = path.split("/blobs/")[1]
            if digest not in self.blobs:
                return reply(404)
            if self.redirect_blobs:
                location = f"{self.storage_url}/blob/{digest}"
                return reply(307, {"location": location})
            return reply(200, {}, self.blobs[digest])
        return reply(404)

    def _denied(self, headers: Mapping[str, str]) -> Optional[httpx.Response]:
        given = headers.get("Authorization", "")
        if self.auth == "bearer" and given != f"Bearer {self.token}":
            realm = f"{self.realm_scheme}://{self.host}/token"
            challenge = f'Bearer realm="{realm}",service="{self.host}"'
            return reply(401, {"www-authenticate": challenge})
        if self.auth == "basic":
            expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            if given != expected:
                return reply(401, {"www-authenticate": 'Basic realm="r"'})
        return None

    def calls_to(self, contains: str, method: Optional[str] = None) -> List[Call]:
        return [
            c for c in self.calls if contains in c.url and (method is None or c.method == method)
        ]

    def paths(self, method: Optional[str] = None) -> List[str]:
        return [
            urllib.parse.urlsplit(c.url).path
            for c in self.calls
            if method is None or c.method == method
        ]


def index(children: List[Tuple[str, int, Dict[str, str]]]) -> Dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": s, "platform": p}
            for d, s, p in children
        ],
    }

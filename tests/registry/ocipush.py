"""Push images to a real registry over its HTTP API, without Docker.

Used to build what `docker push` cannot easily make here: multi-arch indexes
with fake foreign platforms. Layers are real gzip tars, configs carry the
right diff_ids, so a daemon could pull the amd64 image.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import tarfile
import urllib.parse
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _request(
    host: str, method: str, path: str, body: bytes = b"", headers: Optional[Dict[str, str]] = None
) -> Tuple[int, Dict[str, str], bytes]:
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        answer = conn.getresponse()
        data = answer.read()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, data
    finally:
        conn.close()


def _auth(auth: str) -> Dict[str, str]:
    return {"Authorization": auth} if auth else {}


def push_blob(host: str, repo: str, data: bytes, auth: str = "") -> str:
    digest = sha256(data)
    status, headers, body = _request(host, "POST", f"/v2/{repo}/blobs/uploads/", b"", _auth(auth))
    assert status == 202, (status, body)
    location = urllib.parse.urlsplit(headers["location"])
    query = location.query + ("&" if location.query else "") + f"digest={digest}"
    status, _, body = _request(
        host,
        "PUT",
        f"{location.path}?{query}",
        data,
        {"Content-Type": "application/octet-stream", **_auth(auth)},
    )
    assert status == 201, (status, body)
    return digest


def push_manifest(
    host: str, repo: str, ref: str, manifest: Mapping[str, Any], auth: str = ""
) -> Tuple[str, int]:
    """PUT a manifest or index under a tag (or its digest); return (digest, size)."""
    data = json.dumps(manifest, separators=(",", ":")).encode()
    status, headers, body = _request(
        host,
        "PUT",
        f"/v2/{repo}/manifests/{ref}",
        data,
        {"Content-Type": manifest["mediaType"], **_auth(auth)},
    )
    assert status == 201, (status, body)
    assert headers["docker-content-digest"] == sha256(data)
    return sha256(data), len(data)


def layer(files: Mapping[str, bytes]) -> Tuple[bytes, str]:
    """A gzip'd tar layer and its diff_id (sha256 of the uncompressed tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(content))
    plain = raw.getvalue()
    return gzip.compress(plain, mtime=0), sha256(plain)


@dataclass(frozen=True)
class Pushed:
    digest: str  # manifest digest
    size: int  # manifest size in bytes
    media_type: str
    image_size: int  # config + layers, compressed
    config_digest: str


def push_image(
    host: str,
    repo: str,
    tag: Optional[str],
    layers: Sequence[Mapping[str, bytes]],
    os: str = "linux",
    architecture: str = "amd64",
    variant: str = "",
    docker_types: bool = False,
    auth: str = "",
) -> Pushed:
    """Push config + layers + manifest; tag it if `tag` is given."""
    blobs: List[Tuple[bytes, str]] = [layer(files) for files in layers]
    config: Dict[str, Any] = {
        "architecture": architecture,
        "os": os,
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in blobs]},
    }
    if variant:
        config["variant"] = variant
    config_data = json.dumps(config, sort_keys=True).encode()
    config_digest = push_blob(host, repo, config_data, auth)
    layer_descs = []
    for data, _ in blobs:
        digest = push_blob(host, repo, data, auth)
        layer_descs.append(
            {
                "mediaType": DOCKER_LAYER if docker_types else OCI_LAYER,
                "digest": digest,
                "size": len(data),
            }
        )
    media_type = DOCKER_MANIFEST if docker_types else OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": DOCKER_CONFIG if docker_types else OCI_CONFIG,
            "digest": config_digest,
            "size": len(config_data),
        },
        "layers": layer_descs,
    }
    target = tag or sha256(_canonical(manifest))
    digest, size = push_manifest(host, repo, target, manifest, auth)
    total = len(config_data) + sum(len(data) for data, _ in blobs)
    return Pushed(digest, size, media_type, total, config_digest)


def _canonical(manifest: Mapping[str, Any]) -> bytes:
    return json.dumps(manifest, separators=(",", ":")).encode()


def push_index(
    host: str, repo: str, tag: str, children: Sequence[Tuple[Pushed, Dict[str, str]]]
) -> Tuple[str, int]:
    """Push an OCI index over already pushed manifests with their platforms."""
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": child.media_type,
                "digest": child.digest,
                "size": child.size,
                "platform": platform,
            }
            for child, platform in children
        ],
    }
    return push_manifest(host, repo, tag, index)

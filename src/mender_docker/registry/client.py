"""Resolve image references to digests by asking the registry, never a daemon.

Only manifests (and, to check a single-platform image's platform, its small
config blob) are fetched: layers are never downloaded. Every request goes
through the one transport (transport.py: httpx, which follows redirects) with
the repository's auth flow (auth.py's RegistryAuth). The exporter (export.py)
downloads whole images through the same client: `top_manifest`, `manifest`,
`config_blob` and `open_blob` are its API.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import threading
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from mender_docker.errors import RegistryError
from mender_docker.registry.auth import CredentialSource, RegistryAuth
from mender_docker.registry.platform import (
    Platform,
    entry_platform,
    host_platform,
    parse_platform,
)
from mender_docker.registry.reference import Reference, parse_reference
from mender_docker.registry.transport import HttpTransport, Response, Stream, Transport

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join(INDEX_TYPES + MANIFEST_TYPES)
INSECURE_ENV = "MENDER_DOCKER_INSECURE_REGISTRIES"


@dataclass(frozen=True)
class ResolvedImage:
    """An image reference pinned by digest, ready for the artifact's meta-data."""

    reference: str  # what the user asked for
    pinned: str  # "<name as typed>@sha256:<hex>"
    digest: str
    size: int  # compressed bytes: config + layers of the chosen (or host/largest) platform
    media_type: str
    platform: Optional[str] = None  # set when a platform was asked for


def is_insecure(registry: str, insecure: Iterable[str] = ()) -> bool:
    """Plain HTTP for loopback registries and for those the user marked insecure."""
    marked = {entry.strip() for entry in insecure if entry.strip()}
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    if registry in marked or host in marked:
        return True
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_from_env(environ: Optional[Mapping[str, str]] = None) -> Tuple[str, ...]:
    env = os.environ if environ is None else environ
    return tuple(item.strip() for item in env.get(INSECURE_ENV, "").split(",") if item.strip())


class RegistryClient:
    """Speaks the registry HTTP API v2 through one `HttpTransport`.

    `transport` is that HttpTransport, or the network below one (an httpx
    transport, e.g. a test's fake registry), or None for httpx's network.
    Safe to share between threads (gen.py resolves images concurrently).
    """

    def __init__(
        self,
        transport: Union[HttpTransport, Transport, None] = None,
        insecure: Iterable[str] = (),
        environ: Optional[Mapping[str, str]] = None,
    ) -> None:
        if not isinstance(transport, HttpTransport):
            transport = HttpTransport(network=transport)
        self.transport = transport
        self._environ = os.environ if environ is None else environ
        self._insecure = tuple(insecure) + insecure_from_env(self._environ)
        self._credentials = CredentialSource(self._environ)
        self._lock = threading.Lock()
        self._auths: Dict[Tuple[str, str], RegistryAuth] = {}

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public -----------------------------------------------------------------

    def resolve(self, reference: str, platform: Optional[str] = None) -> ResolvedImage:
        ref = parse_reference(reference)
        wanted = parse_platform(platform) if platform else None
        digest, media_type, manifest = self.top_manifest(ref)
        if media_type in INDEX_TYPES:
            return self._resolve_index(ref, reference, wanted, digest, media_type, manifest)
        if wanted is not None:
            config = self.config_blob(ref, config_digest(manifest, ref), ref)
            check_platform(config, wanted, ref)
        return ResolvedImage(
            reference=reference,
            pinned=ref.pinned(digest),
            digest=digest,
            size=image_size(manifest, str(ref)),
            media_type=media_type,
            platform=str(wanted) if wanted else None,
        )

    # -- manifests ----------------------------------------------------------------

    def top_manifest(self, ref: Reference) -> Tuple[str, str, Dict[str, Any]]:
        """HEAD for the digest (cheap, not rate-limited on Docker Hub), then GET
        the manifest by that digest, verified, for sizes and platforms."""
        digest, media_type, manifest, _ = self.top_manifest_raw(ref)
        return digest, media_type, manifest

    def top_manifest_raw(self, ref: Reference) -> Tuple[str, str, Dict[str, Any], bytes]:
        """top_manifest, and the bytes served (their sha256 is the digest)."""
        head = self._fetch(ref, "HEAD", f"manifests/{ref.target}", ACCEPT)
        if head.status == 404:
            self._check_found(ref, head)
        # Some registries refuse HEAD or omit the header: then GET by tag.
        digest = head.header("docker-content-digest") if head.status == 200 else ""
        if ref.digest and digest and digest != ref.digest:
            raise RegistryError(f"{ref}: registry answered with another digest {digest}")
        digest = ref.digest or (digest if digest.startswith("sha256:") else "")
        return self.manifest_raw(ref, digest or ref.target, ref)

    def manifest(
        self, ref: Reference, target: str, shown: object
    ) -> Tuple[str, str, Dict[str, Any]]:
        """GET a manifest (by tag or digest), verified: (digest, media type, content)."""
        digest, media_type, manifest, _ = self.manifest_raw(ref, target, shown)
        return digest, media_type, manifest

    def manifest_raw(
        self, ref: Reference, target: str, shown: object
    ) -> Tuple[str, str, Dict[str, Any], bytes]:
        """manifest, and the bytes served (an offline artifact carries them)."""
        answer = self._fetch(ref, "GET", f"manifests/{target}", ACCEPT)
        self._check_found(ref, answer, shown)
        computed = "sha256:" + hashlib.sha256(answer.body).hexdigest()
        if target.startswith("sha256:") and computed != target:
            raise RegistryError(
                f"{shown}: manifest from {ref.registry} does not match digest {target}"
            )
        manifest = _json_object(answer.body, f"{shown}: manifest")
        media_type = manifest.get("mediaType") or answer.header("content-type").split(";")[0]
        if media_type not in INDEX_TYPES + MANIFEST_TYPES:
            if "manifests" in manifest:
                media_type = OCI_INDEX
            elif "layers" in manifest and "config" in manifest:
                media_type = OCI_MANIFEST
            else:
                raise RegistryError(
                    f"{shown}: unsupported manifest type {media_type or 'unknown'!r}"
                    " (schema 1 images are not supported)"
                )
        # The digest of a manifest is the sha256 of the bytes served.
        return computed, media_type, manifest, answer.body

    def _resolve_index(
        self,
        ref: Reference,
        reference: str,
        wanted: Optional[Platform],
        digest: str,
        media_type: str,
        index: Dict[str, Any],
    ) -> ResolvedImage:
        entries = _index_entries(index, reference)
        if wanted is not None:
            chosen = _pick(entries, wanted)
            if chosen is None:
                have = ", ".join(str(p) for p, _ in entries) or "none"
                raise RegistryError(
                    f"{reference}: no image for platform {wanted} (available: {have})"
                )
            child_digest, child_type, child = self.manifest(ref, chosen, reference)
            _require_manifest(child_type, reference, wanted)
            return ResolvedImage(
                reference=reference,
                pinned=ref.pinned(child_digest),
                digest=child_digest,
                size=image_size(child, reference),
                media_type=child_type,
                platform=str(wanted),
            )
        # No platform asked: pin the index (the device picks its own platform),
        # size it for this host's platform if listed, else for the largest one.
        host = _pick(entries, host_platform())
        candidates = [host] if host else [d for _, d in entries]
        sizes: List[int] = []
        for child_ref in candidates:
            _, child_type, child = self.manifest(ref, child_ref, reference)
            _require_manifest(child_type, reference, None)
            sizes.append(image_size(child, reference))
        return ResolvedImage(
            reference=reference,
            pinned=ref.pinned(digest),
            digest=digest,
            size=max(sizes) if sizes else 0,
            media_type=media_type,
        )

    # -- blobs ------------------------------------------------------------------------

    def config_blob(
        self, ref: Reference, digest: str, shown: object, limit: Optional[int] = None
    ) -> bytes:
        """An image's config blob, read whole and verified against its digest."""
        answer = self._fetch(ref, "GET", f"blobs/{digest}", "*/*", limit)
        self._check_found(ref, answer, f"{shown} (config {digest})")
        if "sha256:" + hashlib.sha256(answer.body).hexdigest() != digest:
            raise RegistryError(f"{shown}: config blob does not match digest {digest}")
        return answer.body

    @contextlib.contextmanager
    def open_blob(self, ref: Reference, digest: str, shown: str) -> Iterator[Stream]:
        """GET a blob as a stream (a layer); the caller verifies what it reads."""
        url = self._base(ref) + f"blobs/{digest}"
        with self.transport.stream("GET", url, {"Accept": "*/*"}, self._auth(ref)) as answer:
            if answer.status != 200:
                self._check_found(ref, Response(answer.status), shown)
            yield answer

    # -- HTTP, auth ------------------------------------------------------------------

    def _base(self, ref: Reference) -> str:
        scheme = "http" if is_insecure(ref.registry, self._insecure) else "https"
        return f"{scheme}://{ref.registry}/v2/{ref.repository}/"

    def _auth(self, ref: Reference) -> RegistryAuth:
        """The repository's auth flow: a token's scope is one repository."""
        key = (ref.registry, ref.repository)
        with self._lock:
            if key not in self._auths:
                self._auths[key] = RegistryAuth(
                    ref.registry, ref.domain, ref.repository, self._credentials
                )
            return self._auths[key]

    def _fetch(
        self, ref: Reference, method: str, path: str, accept: str, limit: Optional[int] = None
    ) -> Response:
        url = self._base(ref) + path
        return self.transport.send(method, url, {"Accept": accept}, self._auth(ref), limit)

    def _check_found(self, ref: Reference, answer: Response, shown: object = None) -> None:
        if answer.status == 200:
            return
        what = shown or ref
        if answer.status == 404:
            if ref.digest or (isinstance(shown, str) and "sha256:" in shown):
                raise RegistryError(f"image {what} not found on registry {ref.registry}")
            raise RegistryError(
                f"image {what} not found on registry {ref.registry}"
                f" (no repository {ref.repository} or no tag {ref.tag or 'latest'})"
            )
        raise RegistryError(f"registry {ref.registry} answered HTTP {answer.status} for {what}")


def config_digest(manifest: Mapping[str, Any], shown: object) -> str:
    config = manifest.get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise RegistryError(f"{shown}: manifest has no config digest")
    return digest


def check_platform(config: bytes, wanted: Platform, shown: object) -> None:
    """Refuse an image whose config names another platform than `wanted`."""
    blob = _json_object(config, f"{shown}: image config")
    os_name, arch = str(blob.get("os", "")), str(blob.get("architecture", ""))
    variant = str(blob.get("variant", "") or "")
    if not wanted.matches(os_name, arch, variant):
        actual = Platform(os_name, arch, variant)
        raise RegistryError(f"{shown}: image is for platform {actual}, not {wanted}")


def image_size(manifest: Mapping[str, Any], shown: str) -> int:
    """Compressed size of an image: its config plus its layers."""
    try:
        total = int(manifest["config"]["size"])
        total += sum(int(layer["size"]) for layer in manifest["layers"])
    except (KeyError, TypeError, ValueError):
        raise RegistryError(f"{shown}: manifest lacks config/layer sizes") from None
    return total


def resolve(
    reference: str,
    platform: Optional[str] = None,
    insecure: Iterable[str] = (),
    transport: Union[HttpTransport, Transport, None] = None,
) -> ResolvedImage:
    """Pin one image reference by digest, asking only the registry."""
    client = RegistryClient(transport, insecure)
    try:
        return client.resolve(reference, platform)
    finally:
        if not isinstance(transport, HttpTransport):  # ours to close
            client.close()


def _json_object(body: bytes, what: str) -> Dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise RegistryError(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise RegistryError(f"{what} is not a JSON object")
    return value


def _index_entries(index: Mapping[str, Any], shown: str) -> List[Tuple[Platform, str]]:
    manifests = index.get("manifests")
    if not isinstance(manifests, list):
        raise RegistryError(f"{shown}: image index has no manifest list")
    out: List[Tuple[Platform, str]] = []
    for entry in manifests:
        if not isinstance(entry, dict):
            continue
        found = entry_platform(entry)
        digest = entry.get("digest")
        if found is not None and isinstance(digest, str) and digest.startswith("sha256:"):
            out.append((found, digest))
    return out


def _pick(entries: List[Tuple[Platform, str]], wanted: Platform) -> Optional[str]:
    """Exact match first (variant included), then Docker's looser match."""
    for found, digest in entries:
        if found == wanted:
            return digest
    for found, digest in entries:
        if wanted.matches(found.os, found.architecture, found.variant):
            return digest
    return None


def _require_manifest(media_type: str, shown: str, wanted: Optional[Platform]) -> None:
    if media_type not in MANIFEST_TYPES:
        where = f" for {wanted}" if wanted else ""
        raise RegistryError(f"{shown}: index entry{where} is not an image manifest ({media_type})")

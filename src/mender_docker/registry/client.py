"""Resolve image references to digests by asking the registry, never a daemon.

Only manifests (and, to check a single-platform image's platform, its small
config blob) are fetched: layers are never downloaded. Auth challenges and
redirects are handled here, above the one-method transport.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from mender_docker.errors import RegistryError
from mender_docker.registry.auth import (
    Credentials,
    configured_helper,
    load_credentials,
    parse_challenge,
    parse_token,
    token_url,
)
from mender_docker.registry.platform import (
    Platform,
    entry_platform,
    host_platform,
    parse_platform,
)
from mender_docker.registry.reference import Reference, parse_reference
from mender_docker.registry.transport import HttpTransport, Response, Transport

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join(INDEX_TYPES + MANIFEST_TYPES)
INSECURE_ENV = "MENDER_DOCKER_INSECURE_REGISTRIES"
USER_AGENT = "mender-docker-gen"
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 5


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
    """Speaks the registry HTTP API v2 through a `Transport`."""

    def __init__(
        self,
        transport: Optional[Transport] = None,
        insecure: Iterable[str] = (),
        environ: Optional[Mapping[str, str]] = None,
    ) -> None:
        self._transport = transport or HttpTransport()
        self._environ = os.environ if environ is None else environ
        self._insecure = tuple(insecure) + insecure_from_env(self._environ)
        self._authorization: Dict[Tuple[str, str], str] = {}
        # A credential helper (a process, maybe a cloud call) runs once per registry.
        self._credentials_of: Dict[str, Optional[Credentials]] = {}

    # -- public -----------------------------------------------------------------

    def resolve(self, reference: str, platform: Optional[str] = None) -> ResolvedImage:
        ref = parse_reference(reference)
        wanted = parse_platform(platform) if platform else None
        digest, media_type, manifest = self._top_manifest(ref)
        if media_type in INDEX_TYPES:
            return self._resolve_index(ref, reference, wanted, digest, media_type, manifest)
        if wanted is not None:
            self._check_config_platform(ref, manifest, wanted)
        return ResolvedImage(
            reference=reference,
            pinned=ref.pinned(digest),
            digest=digest,
            size=image_size(manifest, str(ref)),
            media_type=media_type,
            platform=str(wanted) if wanted else None,
        )

    # -- manifests ----------------------------------------------------------------

    def _top_manifest(self, ref: Reference) -> Tuple[str, str, Dict[str, Any]]:
        """HEAD for the digest (cheap, not rate-limited on Docker Hub), then GET
        the manifest by that digest, verified, for sizes and platforms."""
        head = self._fetch(ref, "HEAD", f"manifests/{ref.target}", ACCEPT)
        if head.status == 404:
            self._check_found(ref, head)
        # Some registries refuse HEAD or omit the header: then GET by tag.
        digest = head.header("docker-content-digest") if head.status == 200 else ""
        if ref.digest and digest and digest != ref.digest:
            raise RegistryError(f"{ref}: registry answered with another digest {digest}")
        digest = ref.digest or (digest if digest.startswith("sha256:") else "")
        return self._manifest(ref, digest or ref.target, ref)

    def _manifest(
        self, ref: Reference, target: str, shown: object
    ) -> Tuple[str, str, Dict[str, Any]]:
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
        return computed, media_type, manifest

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
            child_digest, child_type, child = self._manifest(ref, chosen, reference)
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
            _, child_type, child = self._manifest(ref, child_ref, reference)
            _require_manifest(child_type, reference, None)
            sizes.append(image_size(child, reference))
        return ResolvedImage(
            reference=reference,
            pinned=ref.pinned(digest),
            digest=digest,
            size=max(sizes) if sizes else 0,
            media_type=media_type,
        )

    def _check_config_platform(
        self, ref: Reference, manifest: Dict[str, Any], wanted: Platform
    ) -> None:
        config = manifest.get("config")
        digest = config.get("digest") if isinstance(config, dict) else None
        if not isinstance(digest, str) or not digest.startswith("sha256:"):
            raise RegistryError(f"{ref}: manifest has no config digest")
        answer = self._fetch(ref, "GET", f"blobs/{digest}", "*/*")
        self._check_found(ref, answer, f"{ref} (config {digest})")
        if "sha256:" + hashlib.sha256(answer.body).hexdigest() != digest:
            raise RegistryError(f"{ref}: config blob does not match digest {digest}")
        blob = _json_object(answer.body, f"{ref}: image config")
        os_name, arch = str(blob.get("os", "")), str(blob.get("architecture", ""))
        variant = str(blob.get("variant", "") or "")
        if not wanted.matches(os_name, arch, variant):
            actual = Platform(os_name, arch, variant)
            raise RegistryError(f"{ref}: image is for platform {actual}, not {wanted}")

    # -- HTTP, auth, redirects -------------------------------------------------------

    def _base(self, ref: Reference) -> str:
        scheme = "http" if is_insecure(ref.registry, self._insecure) else "https"
        return f"{scheme}://{ref.registry}/v2/{ref.repository}/"

    def _fetch(self, ref: Reference, method: str, path: str, accept: str) -> Response:
        url = self._base(ref) + path
        key = (ref.registry, ref.repository)
        answer = Response(0)
        for attempt in range(2):
            headers = {"Accept": accept, "User-Agent": USER_AGENT}
            if key in self._authorization:
                headers["Authorization"] = self._authorization[key]
            answer = self._send(method, url, headers)
            if answer.status != 401 or attempt == 1:
                break
            self._authorization[key] = self._authorize(ref, answer)
        if answer.status in (401, 403):
            raise RegistryError(
                f"registry {ref.registry} refused access to {ref.repository}"
                f" (HTTP {answer.status}){self._credentials_hint(ref)}"
            )
        return answer

    def _send(self, method: str, url: str, headers: Dict[str, str]) -> Response:
        origin = urllib.parse.urlsplit(url).netloc
        for _ in range(_MAX_REDIRECTS + 1):
            answer = self._transport.send(method, url, headers)
            location = answer.header("location")
            if answer.status not in _REDIRECTS or not location:
                return answer
            url = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(url).netloc != origin:
                # Blob storage behind a redirect must not see registry credentials.
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        raise RegistryError(f"registry {origin}: too many redirects for {url}")

    def _authorize(self, ref: Reference, answer: Response) -> str:
        challenge = parse_challenge(answer.header("www-authenticate"))
        credentials = self._credentials(ref)
        if challenge is None:
            raise RegistryError(f"registry {ref.registry} refused access (HTTP 401, no challenge)")
        if challenge.scheme == "basic":
            if credentials is None:
                raise RegistryError(
                    f"registry {ref.registry} requires a login{self._credentials_hint(ref)}"
                )
            return credentials.basic_header()
        if challenge.scheme != "bearer":
            raise RegistryError(
                f"registry {ref.registry}: unsupported auth scheme {challenge.scheme!r}"
            )
        url = token_url(challenge, f"repository:{ref.repository}:pull")
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if credentials is not None:
            headers["Authorization"] = credentials.basic_header()
        reply = self._send("GET", url, headers)
        if reply.status in (401, 403):
            raise RegistryError(
                f"registry {ref.registry}: token server refused the credentials"
                f" (HTTP {reply.status}){self._credentials_hint(ref)}"
            )
        if reply.status != 200:
            raise RegistryError(
                f"registry {ref.registry}: token server answered HTTP {reply.status}"
            )
        return "Bearer " + parse_token(reply.body, challenge.params.get("realm", ""))

    def _credentials(self, ref: Reference) -> Optional[Credentials]:
        if ref.registry not in self._credentials_of:
            found = load_credentials(ref.registry, ref.domain, self._environ)
            self._credentials_of[ref.registry] = found
        return self._credentials_of[ref.registry]

    def _credentials_hint(self, ref: Reference) -> str:
        helper = configured_helper(ref.domain, self._environ)
        if helper is not None:
            source = f"credential helper docker-credential-{helper}"
            if self._credentials(ref) is None:
                return f"; {source} has no credentials for it (docker login)"
            return f"; the credentials from {source} were refused"
        if self._credentials(ref) is None:
            return "; no credentials for it in the Docker config (docker login)"
        return "; the credentials in the Docker config were refused"

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
    transport: Optional[Transport] = None,
) -> ResolvedImage:
    """Pin one image reference by digest, asking only the registry."""
    return RegistryClient(transport, insecure).resolve(reference, platform)


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

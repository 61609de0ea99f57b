"""Fetch whole images for offline artifacts: config and layer blobs, no daemon.

`RegistryExporter(client).export(reference, platform, store, progress)`
downloads one image's config and layers through a `RegistryClient` (its one
transport: auth, redirects, timeouts) into a `BlobStore` (a temp directory, one
file per blob, so layers shared by several images are fetched and stored
once). The config is fetched once, verified, and is also what a `--platform`
check reads. Every blob is verified while it streams: the stored bytes
against their digest, and a layer's uncompressed bytes against the config's
`rootfs.diff_ids`, counting the uncompressed size the device will need.

`export_with_docker(reference, platform, store)` is the `--resolver docker`
way: `docker pull`, then `docker save` streamed into the same store. The
daemon keeps no registry manifest, only its digest (RepoDigests): the manifest
the payload must carry is fetched by that digest (`registry_manifests`, the
generator's registry client) and must name the config docker saved; an image
without one cannot be embedded.

Both report the bytes they fetch to an optional `progress` callback; drawing a
bar is the command line's business (cli/progress.py).

Delta artifacts (delta.py): an optional `omit(diff_ids)` callback says how many
of an image's first layers the device already has. The registry exporter does
not download those (the config is always fetched: it gives the diff IDs); it
records them as unfetched blobs (path "", the manifest's size) and the image's
`omitted` count. `layer_chain(reference, platform)` reads a base image's
diff IDs from its config, without any layer.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field, replace
from typing import IO, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from mender_docker.errors import RegistryError
from mender_docker.registry.client import (
    INDEX_TYPES,
    RegistryClient,
    _index_entries,
    _pick,
    _require_manifest,
    check_platform,
    config_digest,
)
from mender_docker.registry.docker_resolver import resolve_with_docker
from mender_docker.registry.platform import Platform, host_platform, parse_platform
from mender_docker.registry.reference import Reference, parse_reference

CHUNK = 1 << 20
MAX_CONFIG = 16 * 1024 * 1024
GZIP_TYPES = (
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar+gzip",
)
PLAIN_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar",
)
ZSTD_TYPES = ("application/vnd.oci.image.layer.v1.tar+zstd",)
# The layer file's suffix in the payload; `docker load` sniffs the compression itself.
SUFFIXES = {**{t: ".tar.gz" for t in GZIP_TYPES}, **{t: ".tar" for t in PLAIN_TYPES},
            **{t: ".tar.zst" for t in ZSTD_TYPES}}  # fmt: skip

Progress = Callable[[int], None]  # called with the number of bytes just fetched
# (pinned reference, image ID) -> (registry manifest, index or b""): see registry_manifests
ManifestSource = Callable[[str, str], Tuple[bytes, bytes]]
# Given an image's diff IDs: how many of its first layers the device already holds.
Omit = Callable[[Sequence[str]], int]


@dataclass(frozen=True)
class Blob:
    digest: str  # "sha256:<hex>" of the stored bytes
    path: str  # "" for a layer not fetched (on the device already: a delta's base layer)
    size: int  # stored bytes
    uncompressed: int  # bytes of the tar once decompressed (= size for configs)
    suffix: str  # ".json", ".tar", ".tar.gz", ".tar.zst"

    @property
    def file_name(self) -> str:
        return self.digest.split(":", 1)[1] + self.suffix


@dataclass(frozen=True)
class ExportedImage:
    reference: str  # as the user typed it
    pinned: str  # "<name>@sha256:<manifest digest>", the image actually exported
    config: Blob  # its digest is the image ID
    layers: Tuple[Blob, ...]
    diff_ids: Tuple[str, ...] = ()  # the config's rootfs.diff_ids, one per layer
    omitted: int = 0  # the first layers the device has already (a delta): not in the payload
    manifest: bytes = b""  # the registry manifest: its sha256 is the digest `pinned` names...
    index: bytes = b""  # ...or, when `pinned` names an image index, the index's

    @property
    def image_id(self) -> str:
        return self.config.digest

    @property
    def uncompressed_size(self) -> int:
        """What loading the image adds in the engine (roughly: the unpacked layers it
        brings; a delta's omitted layers are on the device already)."""
        return self.config.size + sum(layer.uncompressed for layer in self.layers[self.omitted :])

    @property
    def base_layers(self) -> Tuple[str, ...]:
        """The diff IDs of the omitted layers (meta-data `delta_layers`)."""
        return self.diff_ids[: self.omitted]


@dataclass
class BlobStore:
    """A directory of verified blobs, keyed by digest; each blob is stored once."""

    directory: str
    blobs: Dict[str, Blob] = field(default_factory=dict)

    def path_for(self, digest: str) -> str:
        return os.path.join(self.directory, digest.replace(":", "-"))

    def add(self, blob: Blob) -> Blob:
        return self.blobs.setdefault(blob.digest, blob)



def _suffix(ref: Reference, desc: Dict[str, Any]) -> str:
    """The payload file suffix of a layer, by its media type; unknown ones are refused."""
    media_type = desc["mediaType"]
    if media_type not in SUFFIXES:
        raise RegistryError(f"{ref}: layer {desc['digest']} has unsupported media type "
                            f"{media_type!r}")
    return SUFFIXES[media_type]

class _Decompressor:
    """Counts and hashes a layer's uncompressed bytes as its stored bytes pass."""

    def __init__(self, media_type: str, shown: str) -> None:
        self.hash = hashlib.sha256()
        self.size = 0
        self._gzip: Optional[Any] = None
        self._zstd: Optional[Any] = None
        if media_type in GZIP_TYPES:
            self._gzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif media_type in ZSTD_TYPES:
            try:
                import zstandard
            except ImportError:
                raise RegistryError(
                    f"{shown}: zstd layers need the 'zstandard' package (pip install zstandard)"
                ) from None
            self._zstd = zstandard.ZstdDecompressor().decompressobj()

    def feed(self, data: bytes) -> None:
        try:
            if self._gzip is not None:
                out = self._gzip.decompress(data)
                # a gzip file may hold several members back to back
                while self._gzip.eof and self._gzip.unused_data:
                    rest = self._gzip.unused_data
                    self._gzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    out += self._gzip.decompress(rest)
            elif self._zstd is not None:
                out = self._zstd.decompress(data)
            else:
                out = data
        except zlib.error as exc:
            raise RegistryError(f"layer is not valid gzip data: {exc}") from None
        self.hash.update(out)
        self.size += len(out)

    @property
    def diff_id(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class RegistryExporter:
    """Downloads whole images (config and layers) through a `RegistryClient`."""

    def __init__(
        self,
        client: Optional[RegistryClient] = None,
        insecure: Iterable[str] = (),
        environ: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.client = client or RegistryClient(insecure=insecure, environ=environ)

    def close(self) -> None:
        self.client.close()

    def export(
        self,
        reference: str,
        platform: Optional[str],
        store: BlobStore,
        progress: Optional[Progress] = None,
        omit: Optional[Omit] = None,
    ) -> ExportedImage:
        """One image into `store`; with `omit`, its first omit(diff_ids) layers are
        not downloaded (their blobs have path "")."""
        ref = parse_reference(reference)
        digest, manifest, wanted, raw = self._image_manifest(ref, reference, platform)
        config_desc = _descriptor(manifest.get("config"), reference, "config")
        layer_descs = manifest.get("layers")
        if not isinstance(layer_descs, list):
            raise RegistryError(f"{reference}: manifest lists no layers")
        config = self._config(ref, store, config_desc, reference, wanted)
        diff_ids = _diff_ids(config, reference)
        if len(diff_ids) != len(layer_descs):
            raise RegistryError(
                f"{reference}: manifest has {len(layer_descs)} layers, config {len(diff_ids)}"
            )
        omitted = _omitted(omit, diff_ids)
        layers = tuple(
            self._unfetched(ref, store, _descriptor(desc, reference, "layer"))
            if index < omitted
            else self._layer(ref, store, _descriptor(desc, reference, "layer"), diff_id, progress)
            for index, (desc, diff_id) in enumerate(zip(layer_descs, diff_ids))
        )
        return ExportedImage(
            reference, ref.pinned(digest), config, layers, tuple(diff_ids), omitted, raw
        )

    def layer_chain(self, reference: str, platform: Optional[str]) -> Tuple[str, ...]:
        """The diff IDs of an image (the platform chosen as `export` does), read from
        its config: manifests and the config only, no layer."""
        ref = parse_reference(reference)
        _, manifest, wanted, _ = self._image_manifest(ref, reference, platform)
        desc = _descriptor(manifest.get("config"), reference, "config")
        if desc["size"] > MAX_CONFIG:
            raise RegistryError(f"{reference}: image config of {desc['size']} bytes is too large")
        data = self.client.config_blob(ref, desc["digest"], reference, MAX_CONFIG)
        if wanted is not None:
            check_platform(data, wanted, ref)
        return tuple(parse_diff_ids(data, reference))

    def _image_manifest(
        self, ref: Reference, shown: str, platform: Optional[str]
    ) -> Tuple[str, Dict[str, Any], Optional[Platform], bytes]:
        """(digest, manifest) of the image to embed, the platform its config must
        still be checked against (None when an index entry was chosen for it), and
        the manifest's bytes (pinned to that digest, they need no index)."""
        digest, media_type, manifest, raw = self.client.top_manifest_raw(ref)
        wanted = parse_platform(platform) if platform else None
        if media_type in INDEX_TYPES:
            digest, manifest, raw = self._platform_manifest(ref, shown, manifest, wanted)
            wanted = None  # the index entry was chosen for its platform
        return digest, manifest, wanted, raw

    def _platform_manifest(
        self, ref: Reference, shown: str, index: Dict[str, Any], wanted: Optional[Platform]
    ) -> Tuple[str, Dict[str, Any], bytes]:
        """An offline artifact carries one platform: the one asked for, else this
        host's, else the first linux image of the index."""
        entries = _index_entries(index, shown)
        chosen = _pick(entries, wanted or host_platform())
        if chosen is None and wanted is None:
            chosen = next((d for p, d in entries if p.os == "linux"), None)
        if chosen is None:
            have = ", ".join(str(p) for p, _ in entries) or "none"
            raise RegistryError(
                f"{shown}: no image for platform {wanted or host_platform()} (available: {have});"
                " choose one with --platform"
            )
        digest, media_type, manifest, raw = self.client.manifest_raw(ref, chosen, shown)
        _require_manifest(media_type, shown, wanted)
        return digest, manifest, raw

    def _config(
        self,
        ref: Reference,
        store: BlobStore,
        desc: Dict[str, Any],
        shown: str,
        wanted: Optional[Platform],
    ) -> Blob:
        """The config blob, fetched once (and verified): the store keeps it, and a
        single-platform image's --platform is checked against it."""
        digest = desc["digest"]
        if desc["size"] > MAX_CONFIG:
            raise RegistryError(f"{shown}: image config of {desc['size']} bytes is too large")
        known = store.blobs.get(digest)
        if known is not None:
            if wanted is not None:
                with open(known.path, "rb") as handle:
                    check_platform(handle.read(), wanted, ref)
            return known
        data = self.client.config_blob(ref, digest, shown, MAX_CONFIG)
        if wanted is not None:
            check_platform(data, wanted, ref)
        path = store.path_for(digest)
        with open(path, "wb") as out:
            out.write(data)
        return store.add(Blob(digest, path, len(data), len(data), ".json"))

    @staticmethod
    def _unfetched(ref: Reference, store: BlobStore, desc: Dict[str, Any]) -> Blob:
        """A layer the device has already: not downloaded (unless an earlier image
        needed it whole); its size is the manifest's, for the full artifact's size."""
        known = store.blobs.get(desc["digest"])
        return known or Blob(desc["digest"], "", desc["size"], 0, _suffix(ref, desc))

    def _layer(
        self,
        ref: Reference,
        store: BlobStore,
        desc: Dict[str, Any],
        diff_id: str,
        progress: Optional[Progress],
    ) -> Blob:
        digest, media_type = desc["digest"], desc["mediaType"]
        known = store.blobs.get(digest)
        if known is not None:
            return known
        suffix = _suffix(ref, desc)
        path = store.path_for(digest)
        part = path + ".part"
        hasher = hashlib.sha256()
        inflate = _Decompressor(media_type, str(ref))
        size, expected = 0, desc["size"]
        try:
            with self.client.open_blob(ref, digest, f"{ref} (layer {digest})") as answer:
                with open(part, "wb") as out:
                    for chunk in answer.chunks():
                        size += len(chunk)
                        if size > expected:  # never store more than the manifest announced
                            break
                        hasher.update(chunk)
                        inflate.feed(chunk)
                        out.write(chunk)
                        if progress is not None:
                            progress(len(chunk))
            if "sha256:" + hasher.hexdigest() != digest or size != expected:
                raise RegistryError(f"{ref}: layer {digest} does not match its digest or size")
            if inflate.diff_id != diff_id:
                raise RegistryError(
                    f"{ref}: layer {digest} unpacks to {inflate.diff_id}, the config says {diff_id}"
                )
        except BaseException:
            if os.path.exists(part):
                os.unlink(part)
            raise
        os.replace(part, path)
        return store.add(Blob(digest, path, size, inflate.size, suffix))


def _descriptor(value: Any, shown: str, what: str) -> Dict[str, Any]:
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("digest"), str)
        or not value["digest"].startswith("sha256:")
        or len(value["digest"]) != 71
        or not all(c in "0123456789abcdef" for c in value["digest"][7:])
        or not isinstance(value.get("size"), int)
        or value["size"] < 0
    ):
        raise RegistryError(f"{shown}: manifest has a malformed {what} descriptor")
    if what == "layer" and not isinstance(value.get("mediaType"), str):
        raise RegistryError(f"{shown}: manifest has a layer without media type")
    return value


def _diff_ids(config: Blob, shown: str) -> List[str]:
    with open(config.path, "rb") as handle:
        return parse_diff_ids(handle.read(), shown)


def parse_diff_ids(raw: bytes, shown: str) -> List[str]:
    """An image config's rootfs.diff_ids: its layer chain."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise RegistryError(f"{shown}: image config is not valid JSON") from None
    rootfs = data.get("rootfs") if isinstance(data, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise RegistryError(f"{shown}: image config has no rootfs.diff_ids")
    return diff_ids


# -- --resolver docker: docker save ---------------------------------------------------


def export_with_docker(
    reference: str,
    platform: Optional[str],
    store: BlobStore,
    progress: Optional[Progress] = None,
    docker: str = "docker",
    omit: Optional[Omit] = None,
    manifests: Optional[ManifestSource] = None,
) -> ExportedImage:
    """`docker pull` (to pin the digest, as the original generator did), then
    `docker save`, streamed: its uncompressed layer tars go into the store.
    `docker save` writes every layer: `omit` only marks the first ones omitted.
    `manifests` gives the registry manifest (default: `registry_manifests`)."""
    resolved = resolve_with_docker(reference, platform, docker=docker)
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(  # noqa: S603 - argument list, no shell
                [docker, "save", resolved.pinned], stdout=subprocess.PIPE, stderr=errors
            )
        except OSError as exc:
            raise RegistryError(f"cannot run {docker} save: {exc}") from None
        assert proc.stdout is not None
        try:
            config, layers = _read_saved(proc.stdout, store, reference, progress)
        except (tarfile.TarError, OSError) as exc:
            proc.kill()
            raise RegistryError(
                f"docker save {resolved.pinned}: unreadable output: {exc}"
            ) from None
        finally:
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            errors.seek(0)
            lines = errors.read().decode("utf-8", "replace").strip().splitlines()
            raise RegistryError(f"docker save {resolved.pinned} failed: "
                                f"{lines[-1] if lines else f'exit code {code}'}")  # fmt: skip
    image = ExportedImage(reference, resolved.pinned, config, layers)
    diff_ids = tuple(_diff_ids(config, reference))
    if len(diff_ids) != len(layers):
        raise RegistryError(
            f"docker save {resolved.pinned}: {len(layers)} layers, its config lists {len(diff_ids)}"
        )
    manifest, index = (manifests or registry_manifests)(resolved.pinned, config.digest)
    return replace(image, diff_ids=diff_ids, omitted=_omitted(omit, diff_ids),
                   manifest=manifest, index=index)  # fmt: skip


def registry_manifests(
    pinned: str, image_id: str, client: Optional[RegistryClient] = None
) -> Tuple[bytes, bytes]:
    """The manifest bytes of `pinned` (a digest the daemon reports) from its registry,
    and the index's when that digest names one: (manifest, index or b""). The
    manifest must name `image_id` as its config; else one-line RegistryError."""
    own = client is None
    client = client or RegistryClient()
    try:
        ref = parse_reference(pinned)
        _, media_type, top, raw = client.manifest_raw(ref, pinned.rsplit("@", 1)[1], pinned)
        if media_type not in INDEX_TYPES:
            if config_digest(top, pinned) != image_id:
                raise RegistryError(f"it names config {config_digest(top, pinned)}, "
                                    f"docker saved image {image_id}")  # fmt: skip
            return raw, b""
        for _, child in _index_entries(top, pinned):
            _, child_type, manifest, child_raw = client.manifest_raw(ref, child, pinned)
            if child_type not in INDEX_TYPES and config_digest(manifest, pinned) == image_id:
                return child_raw, raw
        raise RegistryError(f"no manifest of its index names image {image_id}")
    except RegistryError as exc:
        raise RegistryError(
            f"--resolver docker: no registry manifest for {pinned} (an offline artifact "
            f"carries it to tie the image to its reference): {exc}"
        ) from None
    finally:
        if own:
            client.close()


def _omitted(omit: Optional[Omit], diff_ids: Sequence[str]) -> int:
    return min(max(omit(diff_ids), 0), len(diff_ids)) if omit is not None else 0


def _read_saved(
    stream: IO[bytes], store: BlobStore, shown: str, progress: Optional[Progress]
) -> Tuple[Blob, Tuple[Blob, ...]]:
    """Store every regular file of a `docker save` tar by its digest; then map
    manifest.json's config and layer paths to the stored blobs."""
    by_name: Dict[str, Blob] = {}
    manifest: Any = None
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for member in archive:
            if not member.isfile():
                continue
            source = archive.extractfile(member)
            assert source is not None
            if member.name == "manifest.json":
                manifest = json.loads(source.read(MAX_CONFIG))
                continue
            if not (member.name.endswith(".json") or member.name.endswith("layer.tar")):
                continue
            hasher = hashlib.sha256()
            temp = os.path.join(store.directory, f".saving-{os.getpid()}")
            with open(temp, "wb") as out:
                while True:
                    chunk = source.read(CHUNK)
                    if not chunk:
                        break
                    hasher.update(chunk)
                    out.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
            digest = "sha256:" + hasher.hexdigest()
            suffix = ".json" if member.name.endswith(".json") else ".tar"
            path = store.path_for(digest)
            os.replace(temp, path)
            by_name[member.name] = store.add(Blob(digest, path, member.size, member.size, suffix))
    if not isinstance(manifest, list) or len(manifest) != 1 or not isinstance(manifest[0], dict):
        raise RegistryError(f"docker save {shown}: expected one image in manifest.json")
    entry = manifest[0]
    try:
        config = by_name[entry["Config"]]
        layers = tuple(by_name[name] for name in entry["Layers"])
    except (KeyError, TypeError):
        raise RegistryError(f"docker save {shown}: manifest.json names missing files") from None
    return config, layers

"""The offline payload: images in the `docker load` layout, streamed into the artifact.

One payload file, `images.tar`, holds every image of the artifact:

    manifest.json               first, so the device can check it against the
                                signed header before the engine sees anything
    <config hex>.json           each image's config; its digest is the image ID
    <layer digest hex>.tar.gz   each layer exactly as the registry stores it
                                (or .tar / .tar.zst), once even if shared

manifest.json lists per image its Config, Layers and one RepoTag,
`spec.loaded_tag(pinned reference)` ("<repo>:sha256-<manifest hex>"): docker
cannot tag by digest, and the module finds the loaded image by that tag.
Each entry also carries the registry manifest, the exact text whose sha256 is
the reference's digest (`RegistryManifest`; `RegistryIndex` too when that
digest names an index): the device ties the image to its reference with them
(module/provenance.py). The engines ignore keys they do not know.
The tar is never written to disk: its size is known from the blob sizes, and
`PayloadFile.open` streams it from the blob store (deterministic bytes:
owner 0/0, mode 0644, mtime 0).

A delta artifact (delta.py) omits each image's first `omitted` layers, which
the device already has: their members stay, under the usual names, but empty
(podman wants every listed file; neither engine reads a layer whose chain it
has). A layer another image needs whole is written whole.
`payload_size(images, whole=True)` is the size the payload would have without
omissions, from the layer sizes of the manifests.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import IO, Any, Dict, List, Sequence, Tuple

from mender_docker.artifact import PayloadFile
from mender_docker.errors import GeneratorError
from mender_docker.registry.export import Blob, ExportedImage
from mender_docker.spec import loaded_tag

PAYLOAD_NAME = "images.tar"
BLOCK = 512
CHUNK = 1 << 20
MANIFEST = "manifest.json"


def docker_manifest(images: Sequence[ExportedImage]) -> bytes:
    """manifest.json of `docker save`, one entry per distinct pinned reference."""
    entries: List[Dict[str, Any]] = []
    seen = set()
    for image in images:
        if image.pinned in seen:
            continue
        seen.add(image.pinned)
        entry = {
            "Config": image.config.file_name,
            "RepoTags": [loaded_tag(image.pinned)],
            "Layers": [layer.file_name for layer in image.layers],
        }
        for key, raw in (("RegistryManifest", image.manifest), ("RegistryIndex", image.index)):
            if raw:
                entry[key] = _text(raw, image.pinned)
        entries.append(entry)
    return json.dumps(entries, separators=(",", ":")).encode()


def _text(raw: bytes, pinned: str) -> str:
    """Manifest bytes as a JSON string: exact, as JSON is UTF-8 (else refused)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise GeneratorError(f"{pinned}: the registry manifest is not UTF-8 text") from None


def members(images: Sequence[ExportedImage], whole: bool = False) -> List[Tuple[str, int, Any]]:
    """(name, size, content) in payload order; content is bytes or a Blob. An omitted
    layer no image needs whole is an empty member (`whole`: counted as if sent)."""
    out: List[Tuple[str, int, Any]] = []
    manifest = docker_manifest(images)
    out.append((MANIFEST, len(manifest), manifest))
    needed = {layer.file_name: layer for i in images for layer in i.layers[i.omitted :]}
    configs = {i.config.file_name for i in images}
    seen = set()
    for blob in [i.config for i in images] + [layer for i in images for layer in i.layers]:
        name = blob.file_name
        if name in seen:
            continue
        seen.add(name)
        if name in configs:
            out.append((name, blob.size, blob))
        elif name in needed:
            out.append((name, needed[name].size, needed[name]))
        else:  # omitted: on the device already
            out.append((name, blob.size if whole else 0, None if whole else b""))
    return out


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _padding(size: int) -> int:
    return -size % BLOCK


def payload_size(images: Sequence[ExportedImage], whole: bool = False) -> int:
    """The payload's bytes; `whole`: what they would be without a delta's omissions."""
    total = sum(BLOCK + size + _padding(size) for _, size, _ in members(images, whole))
    return total + 2 * BLOCK


class PayloadStream(io.RawIOBase):
    """Reads the payload tar, generated member by member from the blob store."""

    def __init__(self, images: Sequence[ExportedImage]) -> None:
        self._parts = iter(self._generate(members(images)))
        self._pending = b""

    @staticmethod
    def _generate(items: List[Tuple[str, int, Any]]) -> Any:
        for name, size, content in items:
            yield _header(name, size)
            if isinstance(content, bytes):
                yield content
            else:
                yield from _read_blob(content)
            yield b"\0" * _padding(size)
        yield b"\0" * (2 * BLOCK)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._parts)
            except StopIteration:
                return 0
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def _read_blob(blob: Blob) -> Any:
    with open(blob.path, "rb") as handle:
        left = blob.size
        while left:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                raise OSError(f"blob {blob.path} is shorter than {blob.size} bytes")
            left -= len(chunk)
            yield chunk


def payload_file(images: Sequence[ExportedImage]) -> PayloadFile:
    def opener() -> IO[bytes]:
        return io.BufferedReader(PayloadStream(images), CHUNK)

    return PayloadFile(name=PAYLOAD_NAME, size=payload_size(images), open=opener)

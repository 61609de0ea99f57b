"""Embedded images: check the payload tar against the signed header while it
streams into `docker load`, then verify what the engine loaded.

The payload (written by the generator, see mender_docker/offline.py) is a
`docker save` tar whose first member is manifest.json. Before a single byte
reaches the engine, manifest.json must list exactly the header's images: for
each pinned reference one entry tagged `spec.loaded_tag(ref)` whose Config is
`<hex>.json` with `sha256:<hex>` the header's image ID. Every later member
must be one of the files manifest.json names, each once; configs are hashed
and must match their name. The engine itself checks each layer against the
config's diff_ids, and an image's ID is the digest of its config: so what
loads is what the signed header describes. Anything else aborts the stream:
`docker load` then gets a broken tar and loads nothing.

`PayloadChecker.events()` hands out the tar member by member (header, data,
padding), so the caller can route each image's first layer to `docker
import` instead of `docker load` (see download.load_payload: it keeps the
engine from spooling that layer to its temp dir first).
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from typing import IO, Dict, Iterator, List, Optional, Set, Tuple

from mender_docker.module.errors import DeploymentError

BLOCK = 512
CHUNK = 1 << 20
MANIFEST = "manifest.json"
MAX_SMALL = 16 * 1024 * 1024  # manifest.json and configs are JSON, never this large
_FILE_RE = re.compile(r"^[0-9a-f]{64}(\.json|\.tar|\.tar\.gz|\.tar\.zst)$")


class PayloadError(DeploymentError):
    """The embedded images do not match the artifact's signed header."""


def _read_exact(source: IO[bytes], size: int, what: str) -> bytes:
    parts: List[bytes] = []
    left = size
    while left:
        chunk = source.read(min(left, CHUNK))
        if not chunk:
            raise PayloadError(f"payload is truncated ({what})")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def check_manifest(raw: bytes, expected: Dict[str, str]) -> Set[str]:
    """Validate manifest.json against {loaded tag: image ID}; return the file names
    it references (configs and layers)."""
    try:
        entries = json.loads(raw)
    except ValueError:
        raise PayloadError("payload manifest.json is not valid JSON") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise PayloadError("payload manifest.json is not a list of images")
    files: Set[str] = set()
    found: Dict[str, str] = {}
    for entry in entries:
        tags, config, layers = entry.get("RepoTags"), entry.get("Config"), entry.get("Layers")
        if not isinstance(tags, list) or len(tags) != 1 or not isinstance(tags[0], str):
            raise PayloadError("payload image without exactly one tag")
        tag = tags[0]
        if tag not in expected:
            raise PayloadError(f"payload image {tag} is not listed in the artifact header")
        if tag in found:
            raise PayloadError(f"payload lists image {tag} twice")
        if not isinstance(config, str) or not _FILE_RE.fullmatch(config):
            raise PayloadError(f"payload image {tag}: bad config name {config!r}")
        image_id = "sha256:" + config.split(".", 1)[0]
        if image_id != expected[tag]:
            raise PayloadError(
                f"payload image {tag} has ID {image_id}, the artifact header says {expected[tag]}"
            )
        if not isinstance(layers, list) or not all(
            isinstance(name, str) and _FILE_RE.fullmatch(name) for name in layers
        ):
            raise PayloadError(f"payload image {tag}: bad layer names")
        found[tag] = image_id
        files.add(config)
        files.update(layers)
    missing = sorted(set(expected) - set(found))
    if missing:
        raise PayloadError(f"header image(s) missing from the payload: {', '.join(missing)}")
    return files


class PayloadChecker:
    """Walks the payload tar as it streams, member by member.

    `events()` yields (kind, member name, bytes) with kind "header", "data",
    "pad" (possibly empty: every member ends with one) or "end" (end-of-archive
    blocks); the bytes of all events, in order, are the payload unchanged.
    PayloadError is raised before the offending bytes are yielded. After the
    first member, `manifest` holds manifest.json's entries."""

    def __init__(self, source: IO[bytes], expected: Dict[str, str]) -> None:
        self.source = source
        self.expected = expected
        self.manifest: List[Dict[str, object]] = []

    @property
    def base_layers(self) -> Set[str]:
        """Layer files that are only ever an image's first layer (no parent)."""
        first: Set[str] = set()
        upper: Set[str] = set()
        for entry in self.manifest:
            layers = entry.get("Layers")
            if isinstance(layers, list) and layers:
                first.add(str(layers[0]))
                upper.update(str(name) for name in layers[1:])
        return first - upper

    def events(self) -> Iterator[Tuple[str, str, bytes]]:
        source = self.source
        wanted: Optional[Set[str]] = None
        seen: Set[str] = set()
        while True:
            header = _read_exact(source, BLOCK, "tar header")
            if header == b"\0" * BLOCK:
                if wanted is None:
                    raise PayloadError("payload holds no images")
                missing = sorted(wanted - seen)
                if missing:
                    raise PayloadError(f"payload lacks file(s) {', '.join(missing)}")
                yield "end", "", header
                while True:  # the rest is tar padding: pass it on for a clean end
                    rest = source.read(CHUNK)
                    if not rest:
                        return
                    yield "end", "", rest
            try:
                info = tarfile.TarInfo.frombuf(header, "utf-8", "strict")
            except (tarfile.TarError, UnicodeDecodeError):
                raise PayloadError("payload is not a valid tar (bad header)") from None
            if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                raise PayloadError(f"payload member {info.name!r} is not a regular file")
            name, size = info.name, info.size
            pad = -size % BLOCK
            if wanted is None:
                if name != MANIFEST or size > MAX_SMALL:
                    raise PayloadError("payload does not start with manifest.json")
                body = _read_exact(source, size + pad, name)
                wanted = check_manifest(body[:size], self.expected)
                self.manifest = json.loads(body[:size])
                yield from (("header", name, header), ("data", name, body[:size]),
                            ("pad", name, body[size:]))  # fmt: skip
                continue
            if name not in wanted or name in seen:
                raise PayloadError(f"payload member {name!r} is not expected here")
            seen.add(name)
            if name.endswith(".json"):
                if size > MAX_SMALL:
                    raise PayloadError(f"payload config {name} is too large")
                body = _read_exact(source, size + pad, name)
                if hashlib.sha256(body[:size]).hexdigest() != name[:64]:
                    raise PayloadError(f"payload config {name} does not match its digest")
                yield from (("header", name, header), ("data", name, body[:size]),
                            ("pad", name, body[size:]))  # fmt: skip
                continue
            yield "header", name, header
            left = size
            while left:
                chunk = source.read(min(left, CHUNK))
                if not chunk:
                    raise PayloadError(f"payload is truncated (in {name})")
                left -= len(chunk)
                yield "data", name, chunk
            yield "pad", name, _read_exact(source, pad, name)


def verified_chunks(source: IO[bytes], expected: Dict[str, str]) -> Iterator[bytes]:
    """The payload's bytes unchanged, checked on the way (see PayloadChecker)."""
    for _, _, data in PayloadChecker(source, expected).events():
        yield data

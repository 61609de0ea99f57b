"""Embedded images tied to their references by the registry manifests the payload carries.

The signed header names each embedded image by a pinned reference
(`<repo>@sha256:<digest>`, found here through its loaded tag
`<repo>:sha256-<hex>`) and by its image ID (the config's digest). The image ID
alone says nothing about the reference: the generator puts into each
manifest.json entry the registry manifest, the exact text whose sha256 is the
reference's digest (`RegistryManifest`), and when that digest names an image
index, the index too (`RegistryIndex`). The checks, before a byte reaches the
engine:

- the manifest's sha256 is the reference's digest; or the index's is, and the
  index lists the manifest's digest;
- the manifest names the header's image ID as its config (the payload checker
  hashes the config file against that name);
- its layers are the entry's `Layers`, in order: each file is named by the
  manifest's digest for it (the blob as the registry stores it) or, an
  unpacked `.tar` from `docker save` (`--resolver docker`), by the config's
  diff ID at that place; their count is the config's diff IDs' (`check_config`).

The engine checks every layer it unpacks against the config's diff IDs, so
reference -> manifest -> config -> layers is one chain: what loads under a
reference is what its registry serves under it, offline as online.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List, Optional, Sequence

from mender_docker.module.errors import DeploymentError
from mender_docker.spec import LOADED_TAG_PREFIX

MANIFEST_KEY = "RegistryManifest"
INDEX_KEY = "RegistryIndex"


class ProvenanceError(DeploymentError):
    """An embedded image does not match the reference the header names."""


def reference_of(tag: str) -> str:
    """The pinned reference a loaded tag stands for: <repo>@sha256:<hex>."""
    repo, _, version = tag.rpartition(":")
    return f"{repo}@sha256:{version[len(LOADED_TAG_PREFIX):]}"


def _sha(text: bytes) -> str:
    return "sha256:" + hashlib.sha256(text).hexdigest()


def _json(text: bytes, what: str, image: str) -> Dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ProvenanceError(f"image {image}: the payload's {what} is not a JSON object")
    return value


def _digest(descriptor: Any) -> str:
    value = descriptor.get("digest") if isinstance(descriptor, dict) else None
    return value if isinstance(value, str) else ""


def check_entry(tag: str, entry: Dict[str, Any], image_id: str) -> Optional[List[str]]:
    """Check one manifest.json entry's registry manifest against the reference its
    tag stands for and the header's image ID; return the manifest's layer
    digests, or None when the entry carries no manifest (an older generator's)."""
    image = reference_of(tag)
    text, index = entry.get(MANIFEST_KEY), entry.get(INDEX_KEY)
    if text is None and index is None:
        return None
    if not isinstance(text, str) or not isinstance(index, (str, type(None))):
        raise ProvenanceError(f"image {image}: the payload's registry manifest is not text")
    raw = text.encode("utf-8")
    wanted = image.rsplit("@", 1)[1]
    if index is None and _sha(raw) != wanted:
        raise ProvenanceError(
            f"image {image}: the payload's registry manifest hashes to {_sha(raw)}, "
            "not to the reference's digest"
        )
    if index is not None:
        if _sha(index.encode("utf-8")) != wanted:
            raise ProvenanceError(
                f"image {image}: the payload's image index hashes to "
                f"{_sha(index.encode('utf-8'))}, not to the reference's digest"
            )
        listed = _json(index.encode("utf-8"), "image index", image).get("manifests")
        if not isinstance(listed, list) or _sha(raw) not in map(_digest, listed):
            raise ProvenanceError(
                f"image {image}: its index does not list the payload's manifest {_sha(raw)}"
            )
    manifest = _json(raw, "registry manifest", image)
    if "manifests" in manifest:
        raise ProvenanceError(f"image {image}: the payload's manifest is an index, not an image")
    config = _digest(manifest.get("config"))
    if config != image_id:
        raise ProvenanceError(
            f"image {image}: its registry manifest names config {config or 'none'}, "
            f"the payload's image is {image_id}"
        )
    layers = manifest.get("layers")
    digests = [_digest(d) for d in layers] if isinstance(layers, list) else []
    files = entry.get("Layers")
    if not isinstance(files, list) or len(files) != len(digests):
        count = len(files) if isinstance(files, list) else 0
        raise ProvenanceError(
            f"image {image}: its registry manifest names {len(digests)} layers, "
            f"the payload {count}"
        )
    return digests


def check_config(
    tag: str, files: Sequence[str], digests: Sequence[str], diff_ids: Sequence[str]
) -> None:
    """The entry's layer files against its manifest's layer `digests` and its
    config's `diff_ids` (see the module docstring)."""
    image = reference_of(tag)
    if len(diff_ids) != len(files):
        raise ProvenanceError(
            f"image {image}: its config lists {len(diff_ids)} layers, the payload {len(files)}"
        )
    for place, (name, digest, diff_id) in enumerate(zip(files, digests, diff_ids), 1):
        named = "sha256:" + name.split(".", 1)[0]
        if named == digest or (name.endswith(".tar") and named == diff_id):
            continue
        raise ProvenanceError(
            f"image {image}: payload layer {place} ({name}) is not the layer its "
            f"registry manifest names ({digest})"
        )

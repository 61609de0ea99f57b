"""The payload layout and the device's streaming check, without an engine.

Payloads are made by the generator's own code (offline.py) from blobs in a
temp dir; the checker (module/offline.py) must pass a good one through byte
for byte and stop before forwarding anything the header does not allow.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from mender_docker.offline import payload_file
from mender_docker.registry.export import Blob, ExportedImage
from mender_docker.spec import loaded_tag
from tests.offline.checking import run_check

REPO = "registry.example:5000/app"


def blob(tmp: Path, data: bytes, suffix: str) -> Blob:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = tmp / digest.replace(":", "-")
    path.write_bytes(data)
    return Blob(digest, str(path), len(data), len(data), suffix)


def registry_manifest(config: Blob, layers: Sequence[Blob]) -> bytes:
    """The registry manifest naming `config` and `layers` (the bytes a registry serves)."""
    def descriptor(item: Blob, media_type: str) -> Dict[str, object]:
        return {"mediaType": media_type, "digest": item.digest, "size": item.size}

    layer_type = "application/vnd.oci.image.layer.v1.tar+gzip"
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor(config, "application/vnd.oci.image.config.v1+json"),
        "layers": [descriptor(layer, layer_type) for layer in layers],
    }, indent=3).encode()  # fmt: skip


def image(tmp: Path, name: str, layers: Sequence[Blob]) -> ExportedImage:
    """An image as the registry exporter gives it: pinned to its manifest's digest.
    (The config's diff IDs here are the stored digests: the checker never unpacks.)"""
    diff_ids = [b.digest for b in layers]
    config = blob(tmp, json.dumps({"rootfs": {"diff_ids": diff_ids}, "n": name}).encode(), ".json")
    manifest = registry_manifest(config, layers)
    pinned = f"{REPO}-{name}@sha256:{hashlib.sha256(manifest).hexdigest()}"
    return ExportedImage(pinned, pinned, config, tuple(layers), tuple(diff_ids), 0, manifest)


def payload_bytes(images: Sequence[ExportedImage]) -> bytes:
    spec = payload_file(images)
    with spec.open() as stream:
        data = stream.read()
    assert len(data) == spec.size  # the size promised to the artifact writer is exact
    return data


def expected(images: Sequence[ExportedImage]) -> Dict[str, str]:
    return {loaded_tag(i.pinned): i.image_id for i in images}


@pytest.fixture
def two_images(tmp_path: Path) -> List[ExportedImage]:
    shared = blob(tmp_path, gzip.compress(b"base layer" * 1000, mtime=0), ".tar.gz")
    own = blob(tmp_path, gzip.compress(b"app layer", mtime=0), ".tar.gz")
    return [image(tmp_path, "one", [shared]), image(tmp_path, "two", [shared, own])]


def test_good_payload_passes_unchanged_and_is_a_docker_save_tar(
    two_images: List[ExportedImage],
) -> None:
    data = payload_bytes(two_images)
    forwarded, error = run_check(data, expected(two_images))
    assert error == ""
    assert forwarded == data
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        names = archive.getnames()
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert names[0] == "manifest.json"
    # the shared layer is stored once although both images list it
    assert len(names) == len(set(names)) == 1 + 2 + 2
    assert [m["RepoTags"] for m in manifest] == [[loaded_tag(i.pinned)] for i in two_images]
    assert manifest[1]["Layers"][0] == manifest[0]["Layers"][0]


def test_payload_is_deterministic(two_images: List[ExportedImage]) -> None:
    assert payload_bytes(two_images) == payload_bytes(two_images)


def test_image_not_in_header_is_refused_before_anything_is_forwarded(
    two_images: List[ExportedImage],
) -> None:
    want = expected(two_images[:1])
    forwarded, error = run_check(payload_bytes(two_images), want)
    assert "is not listed in the artifact header" in error
    assert forwarded == b""


def test_header_image_missing_from_payload(two_images: List[ExportedImage]) -> None:
    forwarded, error = run_check(payload_bytes(two_images[:1]), expected(two_images))
    assert "missing from the payload" in error
    assert forwarded == b""


def test_other_image_under_the_expected_tag_is_refused(
    two_images: List[ExportedImage],
) -> None:
    one, two = two_images
    swapped = ExportedImage(one.reference, one.pinned, two.config, two.layers)
    forwarded, error = run_check(payload_bytes([swapped]), expected([one]))
    assert f"has ID {two.image_id}, the artifact header says {one.image_id}" in error
    assert forwarded == b""


def test_config_not_matching_its_name_is_refused(
    tmp_path: Path, two_images: List[ExportedImage]
) -> None:
    one = two_images[0]
    Path(one.config.path).write_bytes(b"X" * one.config.size)  # same size, other bytes
    forwarded, error = run_check(payload_bytes([one]), expected([one]))
    assert "does not match its digest" in error
    assert forwarded == b""  # manifest.json and the configs are all checked before any goes on


def rebuild(data: bytes, change: str) -> bytes:
    """Re-pack a payload with one structural change."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as src, tarfile.open(
        fileobj=out, mode="w", format=tarfile.USTAR_FORMAT
    ) as dst:
        members = [(m, src.extractfile(m).read()) for m in src.getmembers()]  # type: ignore[union-attr]
        if change == "manifest-last":
            members = members[1:] + members[:1]
        for member, content in members:
            dst.addfile(member, io.BytesIO(content))
            if change == "duplicate" and member.name.endswith(".tar.gz"):
                dst.addfile(member, io.BytesIO(content))
        if change == "extra":
            info = tarfile.TarInfo("evil.json")
            info.size = 2
            dst.addfile(info, io.BytesIO(b"{}"))
        if change == "symlink":
            info = tarfile.TarInfo("link")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            dst.addfile(info)
    return out.getvalue()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("manifest-last", "does not start with manifest.json"),
        ("duplicate", "is not expected here"),
        ("extra", "'evil.json' is not expected here"),
        ("symlink", "'link' is not a regular file"),
    ],
)
def test_unexpected_structure_is_refused(
    two_images: List[ExportedImage], change: str, message: str
) -> None:
    _, error = run_check(rebuild(payload_bytes(two_images), change), expected(two_images))
    assert message in error


@pytest.mark.parametrize("cut", [100, 512 + 30, -1100])
def test_truncated_payload_is_refused(two_images: List[ExportedImage], cut: int) -> None:
    data = payload_bytes(two_images)
    _, error = run_check(data[:cut], expected(two_images))
    assert "truncated" in error or "lacks file" in error


def test_empty_payload_is_refused(two_images: List[ExportedImage]) -> None:
    _, error = run_check(b"", expected(two_images))
    assert "truncated" in error

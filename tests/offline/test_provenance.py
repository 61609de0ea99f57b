"""Embedded images tied to their references (issue 19, finding 4), without an engine.

Payloads are written by the generator's own code (offline.py) from crafted
images: the registry manifest each carries is made to lie in one way at a
time. The checker must refuse before a byte goes on; in Download, the
refusal comes before the journal changes, nothing reaches the engine, and the
client's pipe is read to its end.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pytest

from mender_docker.module.errors import DeploymentError
from mender_docker.registry.export import Blob, ExportedImage
from mender_docker.spec import loaded_tag
from tests.fakes.device import Device
from tests.fakes.engine import diff_id
from tests.module.test_streams import Client, within
from tests.offline.checking import run_check
from tests.offline.test_payload import blob, expected, payload_bytes, registry_manifest

REGISTRY = "registry.example:5000"
REPO = f"{REGISTRY}/shop"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(text: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(text)
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text.encode()))
    return out.getvalue()


def make_image(tmp: Path, name: str, *texts: str, manifest: Optional[bytes] = None,
               config_layers: Optional[Sequence[Blob]] = None) -> ExportedImage:  # fmt: skip
    """An image as the registry exporter gives it: gzipped layer blobs, a config
    whose diff IDs are the unpacked tars, pinned to its registry manifest's digest
    (`manifest` replaces the genuine one; `config_layers`: what it names)."""
    layers = tuple(blob(tmp, gzip.compress(layer_tar(t), mtime=0), ".tar.gz") for t in texts)
    diff_ids = [diff_id(Path(b.path).read_bytes()) for b in layers]
    config = blob(tmp, json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids},
                                   "name": name}).encode(), ".json")  # fmt: skip
    raw = manifest if manifest is not None else registry_manifest(config, config_layers or layers)
    pinned = f"{REPO}/{name}@{sha(raw)}"
    return ExportedImage(pinned, pinned, config, layers, tuple(diff_ids), 0, raw)


def index_of(*manifests: bytes) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(m),
         "size": len(m), "platform": {"os": "linux", "architecture": "amd64"}}
        for m in manifests]}).encode()  # fmt: skip


def pinned_to_index(image: ExportedImage, index: bytes) -> ExportedImage:
    """The same image, its reference naming `index` (a multi-arch reference)."""
    pinned = image.pinned.rsplit("@", 1)[0] + "@" + sha(index)
    return dataclasses.replace(image, reference=pinned, pinned=pinned, index=index)


def refused(images: Sequence[ExportedImage], message: str, **options: Any) -> None:
    forwarded, error = run_check(payload_bytes(images), expected(images), **options)
    assert message in error, error
    assert len(error.splitlines()) == 1
    assert forwarded == b"", "nothing goes on to the engine"


# -- the checker ----------------------------------------------------------------------------


def test_a_genuine_payload_passes_with_its_manifests(tmp_path: Path) -> None:
    web = make_image(tmp_path, "web", "base", "app")
    multi = make_image(tmp_path, "db", "base", "db")
    multi = pinned_to_index(multi, index_of(registry_manifest(web.config, web.layers),
                                            multi.manifest))  # fmt: skip
    data = payload_bytes([web, multi])
    forwarded, error = run_check(data, expected([web, multi]))
    assert (error, forwarded == data) == ("", True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        entries = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert sha(entries[0]["RegistryManifest"].encode()) == web.pinned.split("@")[1]
    assert sha(entries[1]["RegistryIndex"].encode()) == multi.pinned.split("@")[1]


def test_a_manifest_that_does_not_hash_to_the_digest_is_refused(tmp_path: Path) -> None:
    image = make_image(tmp_path, "web", "base", "app")
    other = make_image(tmp_path, "evil", "base", "rootkit")
    # the header's reference is the genuine one; the payload carries another image
    # with its own (genuine) manifest
    swapped = dataclasses.replace(other, reference=image.pinned, pinned=image.pinned)
    refused([swapped], f"image {image.pinned}: the payload's registry manifest hashes to "
                       f"{other.pinned.split('@')[1]}, not to the reference's digest")  # fmt: skip


def test_a_config_not_named_by_the_manifest_is_refused(tmp_path: Path) -> None:
    genuine = make_image(tmp_path, "web", "base", "app")
    evil = make_image(tmp_path, "evil", "base", "rootkit")
    # the reference's manifest (hashing right) with the intruder's config and layers
    lying = dataclasses.replace(evil, reference=genuine.pinned, pinned=genuine.pinned,
                                manifest=genuine.manifest)  # fmt: skip
    refused([lying], f"names config {genuine.image_id}, the payload's image is {evil.image_id}")


def test_a_layer_not_named_by_the_manifest_is_refused(tmp_path: Path) -> None:
    evil = make_image(tmp_path, "evil", "base", "rootkit")
    decoy = blob(tmp_path, gzip.compress(layer_tar("harmless"), mtime=0), ".tar.gz")
    # a manifest naming the right config but another second layer
    image = make_image(tmp_path, "evil", "base", "rootkit",
                       config_layers=(evil.layers[0], decoy))  # fmt: skip
    refused([image], f"payload layer 2 ({evil.layers[1].file_name}) is not the layer its "
                     f"registry manifest names ({decoy.digest})")  # fmt: skip


def test_a_manifest_with_another_layer_count_is_refused(tmp_path: Path) -> None:
    evil = make_image(tmp_path, "evil", "base", "rootkit")
    image = make_image(tmp_path, "evil", "base", "rootkit", config_layers=evil.layers[:1])
    refused([image], "its registry manifest names 1 layers, the payload 2")


def test_an_index_not_listing_the_manifest_is_refused(tmp_path: Path) -> None:
    genuine = make_image(tmp_path, "web", "base", "app")
    evil = make_image(tmp_path, "evil", "base", "rootkit")
    index = index_of(genuine.manifest)
    lying = pinned_to_index(evil, index)
    refused([lying], f"its index does not list the payload's manifest {evil.pinned.split('@')[1]}")
    # and an index that does not hash to the reference's digest
    other = dataclasses.replace(pinned_to_index(genuine, index), index=index_of(evil.manifest))
    refused([other], "the payload's image index hashes to")


def test_an_index_as_the_manifest_is_refused(tmp_path: Path) -> None:
    image = make_image(tmp_path, "web", "base")
    index = index_of(image.manifest)
    as_manifest = make_image(tmp_path, "web", "base", manifest=index)
    refused([as_manifest], "the payload's manifest is an index, not an image")
    assert as_manifest.pinned.endswith(sha(index)[7:])


def test_docker_saved_layers_are_named_by_their_diff_ids(tmp_path: Path) -> None:
    """`--resolver docker`: unpacked tars named by diff ID, the registry manifest
    naming the compressed blobs: tied through the config's diff IDs."""
    image = make_image(tmp_path, "web", "base", "app")
    plain = tuple(blob(tmp_path, gzip.decompress(Path(b.path).read_bytes()), ".tar")
                  for b in image.layers)  # fmt: skip
    assert [b.digest for b in plain] == list(image.diff_ids)
    saved = dataclasses.replace(image, layers=plain)
    assert run_check(payload_bytes([saved]), expected([saved]))[1] == ""
    # a .tar named by neither the manifest nor the config's diff IDs
    stranger = blob(tmp_path, layer_tar("stranger"), ".tar")
    refused([dataclasses.replace(saved, layers=(plain[0], stranger))],
            f"payload layer 2 ({stranger.file_name}) is not the layer")  # fmt: skip


def test_a_deltas_placeholders_are_named_by_the_manifest_too(tmp_path: Path) -> None:
    """A delta leaves out the first layers (empty members): the manifest still names
    every layer, so the check is the same; the chain is the engine's to hold."""
    image = dataclasses.replace(make_image(tmp_path, "web", "base", "app"), omitted=1)
    data = payload_bytes([image])
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert archive.getmember(image.layers[0].file_name).size == 0
    assert run_check(data, expected([image]), require_manifests=True) == (data, "")
    other = make_image(tmp_path, "web", "other base", "app", manifest=image.manifest)
    refused([dataclasses.replace(other, omitted=1)], "its registry manifest names config")


def test_an_older_generators_payload_is_accepted_unless_registries_are_restricted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = dataclasses.replace(make_image(tmp_path, "web", "base"), manifest=b"")
    data = payload_bytes([old])
    assert run_check(data, expected([old])) == (data, "")
    assert "carries no registry manifest" in capsys.readouterr().err
    refused([old], "the payload carries no registry manifest (an older generator's artifact): "
                   "refused under allowed_registries", require_manifests=True)  # fmt: skip


# -- in Download ----------------------------------------------------------------------------


def meta(images: Sequence[ExportedImage]) -> Dict[str, Any]:
    return {
        "containers": [i.pinned for i in images],
        "run_args": "",
        "names": [i.pinned.split("@")[0].rsplit("/", 1)[1] for i in images],
        "images_file": "images.tar",
        "image_ids": [i.image_id for i in images],
    }


def streamed(device: Device, artifact: str, images: Sequence[ExportedImage],
             header: Optional[Sequence[ExportedImage]] = None) -> Client:  # fmt: skip
    """A deployment whose header names `header` (else `images`) and whose client
    streams the payload of `images` through real FIFOs."""
    tree = device.new_deployment(artifact, meta(header or images))
    return Client(tree, [("images.tar", payload_bytes(images))])


@pytest.fixture
def running(tmp_path: Path) -> Device:
    """A device running release v1 from a genuine offline artifact."""
    (tmp_path / "device").mkdir()
    device = Device(tmp_path / "device", scope="managed", allowed_registries=REGISTRY)
    v1 = make_image(tmp_path, "web", "base", "app 1")
    client = streamed(device, "v1", [v1])
    within(device.run, "Download")
    assert client.done()
    device.run("ArtifactInstall", "ArtifactCommit", "Cleanup")
    assert device.engine.by_name("web").image_id == v1.image_id
    device.engine.calls.clear()
    return device


def lying_payloads(tmp: Path) -> Dict[str, List[ExportedImage]]:
    genuine = make_image(tmp, "web", "base", "app 2")
    evil = make_image(tmp, "evil", "base", "rootkit")
    decoy = blob(tmp, gzip.compress(layer_tar("decoy"), mtime=0), ".tar.gz")
    named = make_image(tmp, "web", "base", "rootkit", config_layers=(evil.layers[0], decoy))
    return {
        "another-image": [dataclasses.replace(evil, reference=genuine.pinned,
                                              pinned=genuine.pinned)],  # fmt: skip
        "config-not-named": [dataclasses.replace(evil, reference=genuine.pinned,
                                                 pinned=genuine.pinned,
                                                 manifest=genuine.manifest)],  # fmt: skip
        "layer-not-named": [named],
        "index-not-listing": [pinned_to_index(evil, index_of(genuine.manifest))],
        "no-manifest": [dataclasses.replace(genuine, manifest=b"")],
    }


REFUSALS = {
    "another-image": "not to the reference's digest",
    "config-not-named": "its registry manifest names config",
    "layer-not-named": "is not the layer its registry manifest names",
    "index-not-listing": "its index does not list the payload's manifest",
    "no-manifest": "refused under allowed_registries",
}


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_download_refuses_before_anything_changes(
    running: Device, tmp_path: Path, kind: str
) -> None:
    [image] = lying_payloads(tmp_path)[kind]
    journal = running.journal_text()
    client = streamed(running, "v2", [image])
    with pytest.raises(DeploymentError, match=REFUSALS[kind]):
        within(running.run, "Download")
    assert client.done() and client.consumed == {"images.tar": len(payload_bytes([image]))}
    assert running.engine.mutations() == []  # nothing loaded, removed or stopped
    assert running.journal_text() == journal  # the journal never heard of it
    assert running.engine.inspect_image(loaded_tag(image.pinned)) is None

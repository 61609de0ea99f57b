"""Offline artifacts on the real stack: generator -> mender client -> our module -> engine.

The images are removed from the engine and the registry is stopped before the
install, so every container can only run from the images inside the artifact.
Every test runs with dockerd on both clients; the happy path, a tampered payload
and a corrupted layer also run with podman on the 5.1 client (`podman load`).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import re
import tarfile
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from mender_docker.artifact import ArtifactSpec, read_artifact, write_artifact
from mender_docker.cli.gen import parse_options
from mender_docker.gen import as_resolved, build_metadata, build_spec, export_all
from mender_docker.offline import payload_file
from mender_docker.registry.export import Blob, BlobStore, ExportedImage
from mender_docker.spec import loaded_tag
from tests.offline.conftest import OfflineDevice, remove_images, transient_tags
from tests.podman.fixtures import stack_params
from tests.realstack import (
    ALL_STACKS,
    DEVICE_TYPE,
    DOCKER_STACKS,
    PODMAN_STACKS,
    ImageFactory,
    Registry,
    run,
    unique,
)

pytestmark = pytest.mark.real
on_podman_too = pytest.mark.parametrize("stack", stack_params(ALL_STACKS), indirect=True)


def image_id(ref: str) -> str:
    """The image's ID in dockerd (where the image factory builds), "" if absent."""
    proc = run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def gen_offline(work: Path, name: str, *images: str, extra: Tuple[str, ...] = ()) -> Path:
    out = work / f"{name}.mender"
    run(["mender-docker", "gen", "--embed-images", "-n", name, "-t", DEVICE_TYPE,
         "-o", str(out), *extra, *images])  # fmt: skip
    return out


def fresh_image(factory: ImageFactory, **kwargs: object) -> str:
    """Build and push an image, then drop it from dockerd: only the artifact has it
    (a podman store never had it: the image factory builds with docker)."""
    pinned = factory.http_service(unique("offline"), **kwargs)  # type: ignore[arg-type]
    remove_images(factory.tags[-1], pinned)
    assert image_id(pinned) == ""
    return pinned


def running(device: OfflineDevice) -> Dict[str, Dict[str, str]]:
    """name -> {id, image id, pinned image label, config image} of our running containers."""
    ids = device.engine.container_ids(device.managed_label, all_states=False)
    if not ids:
        return {}
    out = {}
    for item in json.loads(device.engine.run("container", "inspect", *ids).stdout):
        found = item["Image"]  # podman leaves out the sha256: of image IDs
        out[item["Name"].lstrip("/")] = {
            "id": item["Id"],
            "image_id": found if ":" in found else f"sha256:{found}",
            "pinned": item["Config"]["Labels"].get(f"{device.namespace}.image", ""),
            "config_image": item["Config"]["Image"],
        }
    return out


@on_podman_too
def test_offline_artifact_installs_with_the_registry_stopped(
    image_factory: ImageFactory, registry: Registry, offline_device: OfflineDevice, tmp_path: Path
) -> None:
    one, two = fresh_image(image_factory), fresh_image(image_factory, random_mb=2)
    artifact = gen_offline(tmp_path, "offline-v1", one, two)
    try:
        info = read_artifact(str(artifact))
        meta = info.meta_data
        assert meta is not None and meta["images_file"] == "images.tar"
        assert meta["containers"] == [one, two]
        # sizes are unpacked bytes: the 2 MiB random layer counts in full
        assert meta["image_sizes"][1] > 2 * 2**20 > meta["image_sizes"][0]
        # the reference tool reads it too
        assert "images.tar" in run(["mender-artifact", "read", str(artifact)]).stdout

        registry.stop()
        try:
            result = offline_device.device.install(artifact)
            assert result.returncode == 0, result.stderr[-3000:]
            result = offline_device.device.commit()
            assert result.returncode == 0, result.stderr[-3000:]
        finally:
            registry.start()

        containers = running(offline_device)
        assert len(containers) == 2
        by_pinned = {c["pinned"]: c for c in containers.values()}
        assert set(by_pinned) == {one, two}
        for ref, expected in zip(meta["containers"], meta["image_ids"]):
            assert by_pinned[ref]["image_id"] == expected
            # created from the image ID the signed header names: no tag to move, no
            # registry to pull it from again (issue 10)
            assert by_pinned[ref]["config_image"] == expected
            assert offline_device.engine.image_id(loaded_tag(ref)) == expected
        assert offline_device.device.show_artifact() == "offline-v1"
        # dockerd: each image's base layer went through `docker import`, and its tag
        # is gone; podman's load reads its input before it stores anything: no import
        imported = 0 if offline_device.engine.is_podman else 2
        assert len(transient_tags(offline_device.journal)) == imported
        assert offline_device.transient_left() == []
    finally:
        offline_device.remove_all()
        offline_device.remove_images(loaded_tag(one), loaded_tag(two))


TAMPERINGS = {
    # kind: what the module must say
    "swapped": r"has ID sha256:[0-9a-f]{64}, the artifact header says",
    "extra-image": r"is not listed in the artifact header",
    "missing-image": r"header image\(s\) missing from the payload",
    "no-payload": r"expected payload file images.tar, the artifact has none",
}


def tampered_artifact(work: Path, kind: str, wanted: str, intruder: str) -> Path:
    """An artifact whose header is what our generator writes for `wanted` (plus
    `intruder` for missing-image), re-packed by our writer with a payload that
    does not match it."""
    header_images = [wanted, intruder] if kind == "missing-image" else [wanted]
    options = parse_options(["--embed-images", "-n", f"bad-{kind}", "-t", DEVICE_TYPE,
                             *header_images])  # fmt: skip
    store_dir = work / f"blobs-{kind}"
    store_dir.mkdir()
    store = BlobStore(str(store_dir))
    real = export_all(options, store)
    other = export_all(parse_options(["--offline", "-n", "x", "-t", "d", intruder]), store)[0]
    payload: List[ExportedImage] = {
        "swapped": [ExportedImage(real[0].reference, real[0].pinned, other.config, other.layers)],
        "extra-image": [real[0], other],
        "missing-image": [real[0]],
        "no-payload": [],
    }[kind]
    meta = build_metadata(options, [as_resolved(i) for i in real], real)
    spec: ArtifactSpec = build_spec(options, meta)
    out = work / f"bad-{kind}.mender"
    files = [payload_file(payload)] if payload else []
    write_artifact(str(out), spec, files=files, compression="none")
    return out


@pytest.mark.parametrize(
    ("stack", "kind"),
    [
        *(
            pytest.param(s, kind, id=f"{s.id}-{kind}")
            for s in DOCKER_STACKS
            for kind in sorted(TAMPERINGS)
        ),
        *(pytest.param(s, "swapped", id=f"{s.id}-swapped") for s in PODMAN_STACKS),
    ],
    indirect=["stack"],
)
def test_tampered_payload_is_refused_and_previous_containers_keep_running(
    image_factory: ImageFactory,
    registry: Registry,
    offline_device: OfflineDevice,
    tmp_path: Path,
    kind: str,
) -> None:
    first, wanted, intruder = (fresh_image(image_factory) for _ in range(3))
    good = gen_offline(tmp_path, "good-v1", first)
    bad = tampered_artifact(tmp_path, kind, wanted, intruder)
    try:
        assert offline_device.device.install(good).returncode == 0
        assert offline_device.device.commit().returncode == 0
        before = running(offline_device)
        assert len(before) == 1

        registry.stop()
        try:
            result = offline_device.device.install(bad)
        finally:
            registry.start()
        assert result.returncode != 0
        assert re.search(TAMPERINGS[kind], result.stderr), result.stderr[-2000:]
        assert running(offline_device) == before  # same container, untouched
        for ref in (wanted, intruder):  # nothing of the bad artifact stays loaded
            assert offline_device.engine.image_id(loaded_tag(ref)) == ""
        assert offline_device.transient_left() == []
        assert offline_device.device.show_artifact() == "good-v1"
    finally:
        offline_device.remove_all()
        offline_device.remove_images(loaded_tag(first), loaded_tag(wanted), loaded_tag(intruder))


def corrupt_manifest_checksum(artifact: Path, payload: str) -> None:
    """Flip one hex digit of the payload's line in the artifact's manifest (same
    length, the tar stays valid): the client finds out only after streaming."""
    data = bytearray(artifact.read_bytes())
    match = re.search(rb"([0-9a-f]{64})  data/0000/" + re.escape(payload.encode()), data)
    assert match is not None
    at = match.start(1)
    data[at] = ord("0") if data[at] != ord("0") else ord("1")
    artifact.write_bytes(bytes(data))


def test_payload_failing_the_clients_checksum_leaves_no_image_behind(
    image_factory: ImageFactory, offline_device: OfflineDevice, tmp_path: Path
) -> None:
    first, second = fresh_image(image_factory), fresh_image(image_factory)
    good = gen_offline(tmp_path, "cs-v1", first)
    bad = gen_offline(tmp_path, "cs-v2", second)
    corrupt_manifest_checksum(bad, "images.tar")
    try:
        assert offline_device.device.install(good).returncode == 0
        assert offline_device.device.commit().returncode == 0
        before = running(offline_device)
        result = offline_device.device.install(bad)
        assert result.returncode != 0
        assert running(offline_device) == before
        # the module did load it during Download; Cleanup took it out again
        assert image_id(loaded_tag(second)) == ""
        assert "loading 1 embedded image" in result.stderr
    finally:
        offline_device.remove_all()
        remove_images(loaded_tag(first), loaded_tag(second))


def repacked(layer: Blob, work: Path) -> Blob:
    """The layer with one file more, gzipped again: a valid layer, but not the one
    the config's diff_ids name; it keeps its file name in the payload."""
    out = work / "repacked.tar.gz"
    with gzip.open(layer.path, "rb") as source, gzip.open(out, "wb") as target:
        with tarfile.open(fileobj=source, mode="r|") as old, tarfile.open(
            fileobj=target, mode="w|"
        ) as new:
            for member in old:
                new.addfile(member, old.extractfile(member) if member.isfile() else None)
            intruder = b"not what the header promised\n"
            info = tarfile.TarInfo("intruder")
            info.size = len(intruder)
            new.addfile(info, io.BytesIO(intruder))
    return dataclasses.replace(layer, path=str(out), size=out.stat().st_size)


@on_podman_too
@pytest.mark.parametrize("how", ["bit-flip", "re-packed"])
def test_corrupted_layer_is_refused_by_the_engine(
    image_factory: ImageFactory, offline_device: OfflineDevice, tmp_path: Path, how: str
) -> None:
    """Names and configs intact, one layer changed (artifact checksums recomputed):
    a flipped bit breaks its gzip stream; a re-packed layer is valid gzip and tar,
    and only the engine's check against the config's diff_ids refuses it. Nothing
    stays loaded either way."""
    pinned = fresh_image(image_factory)
    options = parse_options(["--embed-images", "-n", "layer-bad", "-t", DEVICE_TYPE, pinned])
    store_dir = tmp_path / "blobs"
    store_dir.mkdir()
    images = export_all(options, BlobStore(str(store_dir)))
    layer = images[0].layers[0]
    if how == "bit-flip":
        raw = bytearray(Path(layer.path).read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        Path(layer.path).write_bytes(bytes(raw))
    else:
        assert layer.suffix == ".tar.gz"
        bad_layer = repacked(layer, tmp_path)
        images = [dataclasses.replace(images[0], layers=(bad_layer, *images[0].layers[1:]))]
    spec = build_spec(options, build_metadata(options, [as_resolved(i) for i in images], images))
    out = tmp_path / "layer-bad.mender"
    write_artifact(str(out), spec, files=[payload_file(images)], compression="none")
    try:
        result = offline_device.device.install(out)
        assert result.returncode != 0
        if how == "re-packed":
            # podman checks each layer against the config's diff_ids as it copies it;
            # dockerd imported the base layer (no check there), but its load then wants
            # a layer with the config's diff_id, which is neither stored nor in its input
            said = (
                "Digest did not match"
                if offline_device.engine.is_podman
                else f"{layer.file_name}: no such file or directory"
            )
            assert said in result.stderr, result.stderr[-3000:]
        assert running(offline_device) == {}
        assert offline_device.engine.image_id(loaded_tag(pinned)) == ""
        assert offline_device.engine.image_id(images[0].image_id) == ""
        assert offline_device.transient_left() == []
    finally:
        offline_device.remove_all()
        offline_device.remove_images(loaded_tag(pinned))


def test_unchanged_offline_image_keeps_running_and_a_pulled_update_cleans_it_up(
    image_factory: ImageFactory, offline_device: OfflineDevice, tmp_path: Path
) -> None:
    """Loaded and pulled images share install, unchanged-detection and cleanup:
    the same image again (offline) leaves the container alone and skips the
    load; a later pulled deployment replaces it, and its cleanup removes the
    loaded image."""
    same = fresh_image(image_factory)
    v1 = gen_offline(tmp_path, "mix-v1", same)
    v2 = gen_offline(tmp_path, "mix-v2", same)
    newer = fresh_image(image_factory)
    v3 = tmp_path / "mix-v3.mender"
    run(["docker-artifact-gen", "-n", "mix-v3", "-t", DEVICE_TYPE, "-o", str(v3), newer])
    try:
        assert offline_device.device.install(v1).returncode == 0
        assert offline_device.device.commit().returncode == 0
        first = running(offline_device)
        result = offline_device.device.install(v2)
        assert result.returncode == 0, result.stderr[-2000:]
        assert offline_device.device.commit().returncode == 0
        assert running(offline_device) == first  # same container: unchanged
        assert "all embedded images are already loaded" in result.stderr

        result = offline_device.device.install(v3)  # pulled from the registry
        assert result.returncode == 0, result.stderr[-2000:]
        assert offline_device.device.commit().returncode == 0
        now = list(running(offline_device).values())
        assert [c["pinned"] for c in now] == [newer]
        assert now[0]["config_image"] == newer
        assert image_id(loaded_tag(same)) == ""  # the replaced loaded image is gone
    finally:
        offline_device.remove_all()
        remove_images(loaded_tag(same), newer)

"""Offline images tied to their references, on the real stack (issue 19, finding 4).

The device's policy allows only the test registry (`allowed_registries`). A
genuine offline artifact installs with the registry stopped. An artifact whose
signed header names the registry's image A by digest, with the image ID of the
image B it carries (the previous generator's check, image ID against the
header, passes), is refused in Download: B is never loaded, the running
release keeps running, the journal is not touched. An older generator's
artifact (no registry manifests) is refused under that policy too.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from mender_docker.artifact import ArtifactSpec, write_artifact
from mender_docker.cli.gen import parse_options
from mender_docker.gen import as_resolved, build_metadata, build_spec, export_all
from mender_docker.offline import payload_file
from mender_docker.registry.export import BlobStore, ExportedImage
from mender_docker.spec import loaded_tag
from tests.offline.conftest import OfflineDevice
from tests.offline.test_offline_real import fresh_image, gen_offline, running
from tests.podman.fixtures import stack_params
from tests.realstack import ALL_STACKS, DEVICE_TYPE, DOCKER_STACKS, ImageFactory, Registry

pytestmark = pytest.mark.real
on_podman_too = pytest.mark.parametrize("stack", stack_params(ALL_STACKS), indirect=True)


@pytest.fixture
def strict_device(offline_device: OfflineDevice, registry: Registry) -> OfflineDevice:
    """The offline device, its policy allowing images from the test registry only."""
    conf = Path(offline_device.device.env["MENDER_DOCKER_CONF"])
    conf.write_text(conf.read_text() + f"allowed_registries = {registry.host}\n")
    return offline_device


def lying_artifact(work: Path, kind: str, wanted: str, intruder: str) -> Path:
    """A header naming `wanted` by its registry digest; the payload: `intruder`
    with its own registry manifest and its image ID in the header ("another-image"),
    or `wanted` as the previous generator wrote it, with no manifest ("no-manifest")."""
    options = parse_options(["--embed-images", "-n", f"lying-{kind}", "-t", DEVICE_TYPE, wanted])
    store_dir = work / f"blobs-{kind}"
    store_dir.mkdir()
    store = BlobStore(str(store_dir))
    [real] = export_all(options, store)
    other = export_all(parse_options(["--offline", "-n", "x", "-t", "d", intruder]), store)[0]
    carried: ExportedImage = (
        dataclasses.replace(other, reference=real.reference, pinned=real.pinned)
        if kind == "another-image"
        else dataclasses.replace(real, manifest=b"")
    )
    meta = build_metadata(options, [as_resolved(carried)], [carried])
    assert meta.containers == (wanted,)  # registry A's digest, allowed by the policy
    spec: ArtifactSpec = build_spec(options, meta)
    out = work / f"lying-{kind}.mender"
    write_artifact(str(out), spec, files=[payload_file([carried])], compression="none")
    return out


@on_podman_too
def test_a_genuine_offline_artifact_installs_under_allowed_registries(
    image_factory: ImageFactory, registry: Registry, strict_device: OfflineDevice, tmp_path: Path
) -> None:
    pinned = fresh_image(image_factory)
    artifact = gen_offline(tmp_path, "genuine-v1", pinned)
    try:
        registry.stop()
        try:
            result = strict_device.device.install(artifact)
            assert result.returncode == 0, result.stderr[-3000:]
            assert strict_device.device.commit().returncode == 0
        finally:
            registry.start()
        assert "carries no registry manifest" not in result.stderr
        [container] = running(strict_device).values()
        assert container["pinned"] == pinned  # the label records a proven reference
        assert strict_device.device.show_artifact() == "genuine-v1"
    finally:
        strict_device.remove_all()
        strict_device.remove_images(loaded_tag(pinned))


REFUSALS = {
    "another-image": r"image {wanted}: the payload's registry manifest hashes to "
    r"sha256:[0-9a-f]{{64}}, not to the reference's digest",
    "no-manifest": r"image {wanted}: the payload carries no registry manifest \(an older "
    r"generator's artifact\): refused under allowed_registries",
}


@pytest.mark.parametrize(
    ("stack", "kind"),
    [
        # podman: the lying image only (the older-artifact rule is the module's alone)
        *(pytest.param(s, k, id=f"{s.id}-{k}") for s in ALL_STACKS for k in sorted(REFUSALS)
          if k == "another-image" or s in DOCKER_STACKS),
    ],  # fmt: skip
    indirect=["stack"],
)
def test_an_image_not_matching_its_reference_is_refused_in_download(
    image_factory: ImageFactory,
    registry: Registry,
    strict_device: OfflineDevice,
    tmp_path: Path,
    kind: str,
) -> None:
    first, wanted, intruder = (fresh_image(image_factory) for _ in range(3))
    good = gen_offline(tmp_path, "good-v1", first)
    bad = lying_artifact(tmp_path, kind, wanted, intruder)
    journal = strict_device.journal / "journal.json"
    try:
        assert strict_device.device.install(good).returncode == 0
        assert strict_device.device.commit().returncode == 0
        before, journal_before = running(strict_device), journal.read_bytes()
        assert len(before) == 1

        registry.stop()
        try:
            result = strict_device.device.install(bad)
        finally:
            registry.start()
        assert result.returncode != 0
        refusal = REFUSALS[kind].format(wanted=wanted.replace(".", r"\."))
        assert re.search(refusal, result.stderr), result.stderr[-3000:]
        assert "loading 1 embedded image" not in result.stderr  # refused before the engine
        assert running(strict_device) == before  # the same container, still running
        assert journal.read_bytes() == journal_before  # Download changed nothing
        for ref in (wanted, intruder):
            assert strict_device.engine.image_id(loaded_tag(ref)) == ""
        assert strict_device.device.show_artifact() == "good-v1"
    finally:
        strict_device.remove_all()
        strict_device.remove_images(loaded_tag(first), loaded_tag(wanted), loaded_tag(intruder))

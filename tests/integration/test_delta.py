"""Delta offline artifacts on the real stack: generator -> Mender client -> our module -> engine.

Every release is a small app layer over one shared base layer (busybox-static and
4 MiB of random data). A delta (`--embed-images --delta-from BASE`) leaves the
layers the base release already has out of its payload, as empty placeholders; the
device must hold them and refuses the delta in Download when it does not.

The images are built with dockerd, pushed to the session's registry and removed
from the engine before any test runs, so a device can only get them from the
artifacts. Every test runs on the 3.4 and 5.1 clients with dockerd; the first
one also with podman and the 5.1 client (`[mender-5.1-podman]`).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Set

import pytest

from mender_docker.artifact import read_artifact
from mender_docker.spec import loaded_tag
from tests.integration.conftest import Deployer
from tests.offline.conftest import transient_left
from tests.podman.fixtures import stack_params
from tests.realstack import (
    ALL_STACKS,
    DEVICE_TYPE,
    DOCKER_STACKS,
    ImageFactory,
    Registry,
    run,
    unique,
)

pytestmark = pytest.mark.real
docker_only = pytest.mark.parametrize("stack", stack_params(DOCKER_STACKS), indirect=True)
on_podman_too = pytest.mark.parametrize("stack", stack_params(ALL_STACKS), indirect=True)

BASE_RANDOM_MB = 4
# `sleep` in the background so that SIGTERM stops the container at once
QUICK_EXIT = ("sh", "-c", 'trap "exit 0" TERM; sleep 3600 & wait')
CRASHING = ("sh", "-c", "echo bye; exit 3")
REFUSAL = re.compile(
    r"this delta needs layer (?P<layer>\S+) of release (?P<base>.+?) \(.*\): "
    r"install the full artifact"
)
FINAL_PHASES = ("cleaned", "failed")


@dataclass(frozen=True)
class Releases:
    """The images and artifacts every test here uses, made once for the module.

    refs/ids: release -> pinned reference / image ID of its app image.
    artifacts: "v0" (an unrelated release, full), "v1" (full), "v2-full" (full),
    "v2" (delta from v1.mender), "v3" (delta from the v2 delta artifact: a delta of
    a delta), "v2-bad" (delta from v1.mender, its container exits at once),
    "v2-refs" (delta from v1's image reference instead of its artifact)."""

    refs: Dict[str, str]
    ids: Dict[str, str]
    base_layer: str  # diff ID of the shared base layer
    artifacts: Dict[str, Path]


def layers_of(ref: str) -> List[str]:
    """The image's diff IDs in dockerd (where the images are built)."""
    out = run(["docker", "image", "inspect", "--format", "{{json .RootFS.Layers}}", ref]).stdout
    found: List[str] = json.loads(out)
    return found


def docker_image_id(ref: str) -> str:
    proc = run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def gen(work: Path, name: str, *images: str, delta_from: Sequence[str] = ()) -> Path:
    out = work / f"{name}.mender"
    extra: List[str] = []
    for base in delta_from:
        extra += ["--delta-from", base]
    run(["docker-artifact-gen", "--embed-images", *extra, "-n", name, "-t", DEVICE_TYPE,
         "-o", str(out), *images])  # fmt: skip
    return out


@pytest.fixture(scope="module")
def releases(
    image_factory: ImageFactory, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Releases:
    work = tmp_path_factory.mktemp("delta")
    repo = unique("delta/app")
    base = image_factory.build(unique("delta/base"), "base", random_mb=BASE_RANDOM_MB, push=False)
    built = len(image_factory.tags)
    refs = {
        "v1": image_factory.build_on(base, repo, "v1", QUICK_EXIT),
        "v2": image_factory.build_on(base, repo, "v2", QUICK_EXIT),
        "v3": image_factory.build_on(base, repo, "v3", QUICK_EXIT),
        "v2-bad": image_factory.build_on(base, repo, "v2-bad", CRASHING),
        # an unrelated release: busybox in one layer, no shared base
        "v0": image_factory.build(unique("delta/other"), "v0", cmd=QUICK_EXIT),
    }
    base_layer = layers_of(base)[0]
    for release in ("v1", "v2", "v3", "v2-bad"):
        assert layers_of(refs[release])[0] == base_layer
        assert len(layers_of(refs[release])) == 2
    ids = {release: docker_image_id(ref) for release, ref in refs.items()}
    v1 = gen(work, "delta-v1", refs["v1"])
    v2 = gen(work, "delta-v2", refs["v2"], delta_from=[str(v1)])
    artifacts = {
        "v0": gen(work, "delta-v0", refs["v0"]),
        "v1": v1,
        "v2-full": gen(work, "delta-v2-full", refs["v2"]),
        "v2": v2,
        "v3": gen(work, "delta-v3", refs["v3"], delta_from=[str(v2)]),
        "v2-bad": gen(work, "delta-v2-bad", refs["v2-bad"], delta_from=[str(v1)]),
        "v2-refs": gen(work, "delta-v2-refs", refs["v2"], delta_from=[refs["v1"]]),
    }
    # only the artifacts have the images now (app images first: they are the base's
    # children; the base's layer goes with the last of them)
    for tag in reversed(image_factory.tags[built - 1 :]):
        run(["docker", "image", "rm", "-f", tag], check=False)
    for release, ref in refs.items():
        assert docker_image_id(ref) == "", f"{release} is still in dockerd"
    assert docker_image_id(base) == ""
    return Releases(refs, ids, base_layer, artifacts)


# -- what the device holds ---------------------------------------------------------------


def running(deployer: Deployer) -> Dict[str, Dict[str, str]]:
    """name -> {id, image_id, pinned, restart} of our running containers."""
    ids = deployer.engine.container_ids(f"{deployer.namespace}.managed", all_states=False)
    if not ids:
        return {}
    out = {}
    for item in json.loads(deployer.engine.run("container", "inspect", *ids).stdout):
        found = str(item["Image"])  # podman leaves out the sha256: of image IDs
        out[str(item["Name"]).lstrip("/")] = {
            "id": str(item["Id"]),
            "image_id": found if ":" in found else f"sha256:{found}",
            "pinned": str(item["Config"]["Labels"].get(f"{deployer.namespace}.image", "")),
            "restart": str(item["HostConfig"]["RestartPolicy"]["Name"]),
        }
    return out


def runs(deployer: Deployer, releases: Releases, release: str) -> Dict[str, Dict[str, str]]:
    """Our running containers, checked to be exactly one, of `release`'s image."""
    now = running(deployer)
    assert [(c["pinned"], c["image_id"]) for c in now.values()] == [
        (releases.refs[release], releases.ids[release])
    ], now
    return now


def images_of(deployer: Deployer, registry: Registry) -> Set[str]:
    """`repository@ID` of every image on the engine from the session registry's repos."""
    listing = deployer.engine.run("images", "--format", "{{.Repository}}@{{.ID}}").stdout
    return {line for line in listing.split() if line.startswith(registry.host + "/")}


def holds(deployer: Deployer, releases: Releases, release: str) -> bool:
    """The engine holds `release`'s image, by its ID and under its loaded tag."""
    ref, image_id = releases.refs[release], releases.ids[release]
    return (
        deployer.engine.image_id(loaded_tag(ref)) == image_id == deployer.engine.image_id(image_id)
    )


def gone(deployer: Deployer, releases: Releases, release: str) -> bool:
    ref, image_id = releases.refs[release], releases.ids[release]
    return deployer.engine.image_id(loaded_tag(ref)) == deployer.engine.image_id(image_id) == ""


def journal(deployer: Deployer) -> Dict[str, Any]:
    data: Dict[str, Any] = json.loads((deployer.journal / "journal.json").read_text())
    return data


def meta_of(artifact: Path) -> Dict[str, Any]:
    meta = read_artifact(str(artifact)).meta_data
    assert meta is not None
    return meta


def registry_reachable(registry: Registry) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", registry.port), timeout=2):
            return True
    except OSError:
        return False


def installed(deployer: Deployer, artifact: Path) -> subprocess.CompletedProcess[str]:
    proc = deployer.install(artifact)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


# -- the tests -------------------------------------------------------------------------------


@on_podman_too
def test_delta_installs_over_its_base_with_the_registry_stopped(
    deployer: Deployer, releases: Releases, registry: Registry
) -> None:
    delta, full = releases.artifacts["v2"], releases.artifacts["v2-full"]
    meta = meta_of(delta)
    assert meta["delta_layers"] == [releases.base_layer]
    assert meta["delta_base"]
    assert "delta_base" not in meta_of(full) and "delta_layers" not in meta_of(full)
    assert read_artifact(str(delta)).artifact_depends.get("artifact_name") == ["delta-v1"]
    # the reference tool reads it too
    assert "images.tar" in run(["mender-artifact", "read", str(delta)]).stdout
    # the base layer (busybox + 4 MiB random) stays out: a few KiB against megabytes
    assert delta.stat().st_size < 0.05 * full.stat().st_size, (
        delta.stat().st_size, full.stat().st_size)  # fmt: skip

    deployer.deploy(releases.artifacts["v1"])
    runs(deployer, releases, "v1")

    registry.stop()
    try:
        assert not registry_reachable(registry)
        proc = installed(deployer, delta)
        assert not registry_reachable(registry)  # it was down for the whole install
    finally:
        registry.start()
    assert "pulling" not in proc.stderr
    proc = deployer.device.commit()
    assert proc.returncode == 0, proc.stderr[-4000:]

    [v2] = runs(deployer, releases, "v2").values()
    assert deployer.device.show_artifact() == "delta-v2"
    assert v2["restart"] == ("always" if deployer.engine.is_podman else "unless-stopped")
    # the cleanup kept v2's image (and so the base layer under it), removed v1's
    assert holds(deployer, releases, "v2")
    assert gone(deployer, releases, "v1")
    assert journal(deployer)["deployment"]["phase"] == "cleaned"
    assert transient_left(deployer.journal, deployer.engine) == []


@docker_only
def test_delta_without_its_base_is_refused_and_nothing_changes(
    deployer: Deployer, releases: Releases, registry: Registry
) -> None:
    deployer.deploy(releases.artifacts["v0"])
    before = runs(deployer, releases, "v0")
    images_before = images_of(deployer, registry)
    journal_before = journal(deployer)

    # a delta made from v1's image references: the client has no artifact name to
    # check, so it is the module that finds the base's layer missing, in Download
    proc = deployer.install(releases.artifacts["v2-refs"])
    assert proc.returncode != 0
    refusal = REFUSAL.search(proc.stderr)
    assert refusal is not None, proc.stderr[-4000:]
    assert refusal["layer"].split(":")[-1] in releases.base_layer, refusal.group(0)
    assert refusal["base"] == meta_of(releases.artifacts["v2-refs"])["delta_base"]
    assert refusal["base"] == releases.refs["v1"]
    assert running(deployer) == before  # same containers, running as they were
    assert images_of(deployer, registry) == images_before  # nothing loaded, nothing removed
    assert gone(deployer, releases, "v2")
    assert deployer.device.show_artifact() == "delta-v0"
    after = journal(deployer)
    assert after["deployment"]["phase"] in FINAL_PHASES
    if after["deployment"]["id"] != journal_before["deployment"]["id"]:
        # the delta's record: refused before anything was created or stopped
        assert after["deployment"]["created"] == [] and after["deployment"]["stopped"] == []
    assert transient_left(deployer.journal, deployer.engine) == []

    # a delta made from v1's artifact depends on its name: the client refuses it itself
    proc = deployer.install(releases.artifacts["v2"])
    assert proc.returncode != 0
    assert "artifact_name" in proc.stderr and "delta-v1" in proc.stderr, proc.stderr[-2000:]
    assert running(deployer) == before
    assert images_of(deployer, registry) == images_before
    assert deployer.device.show_artifact() == "delta-v0"


@docker_only
def test_delta_of_a_delta_installs(deployer: Deployer, releases: Releases) -> None:
    v3 = releases.artifacts["v3"]
    assert meta_of(v3)["delta_layers"] == [releases.base_layer]
    assert read_artifact(str(v3)).artifact_depends.get("artifact_name") == ["delta-v2"]
    assert v3.stat().st_size < 0.05 * releases.artifacts["v2-full"].stat().st_size

    deployer.deploy(releases.artifacts["v1"])
    deployer.deploy(releases.artifacts["v2"])
    runs(deployer, releases, "v2")
    deployer.deploy(v3)
    runs(deployer, releases, "v3")
    assert deployer.device.show_artifact() == "delta-v3"
    assert holds(deployer, releases, "v3")
    assert gone(deployer, releases, "v2") and gone(deployer, releases, "v1")


@docker_only
def test_rollback_from_a_delta_release_restores_the_base_release(
    deployer: Deployer, releases: Releases
) -> None:
    deployer.deploy(releases.artifacts["v1"])
    before = runs(deployer, releases, "v1")

    # the new container exits at once: the health gate fails, the client rolls back
    proc = deployer.install(releases.artifacts["v2-bad"])
    assert proc.returncode != 0
    assert "exited during the health gate" in proc.stderr, proc.stderr[-4000:]
    assert running(deployer) == before  # the same v1 container, restart policy restored
    assert deployer.device.show_artifact() == "delta-v1"
    assert [c["id"] for c in deployer.ours(all_states=True)] == [c["id"] for c in before.values()]
    # Cleanup removed what the delta loaded; v1's image (the base layer's holder) stays
    assert gone(deployer, releases, "v2-bad")
    assert holds(deployer, releases, "v1")
    assert journal(deployer)["deployment"]["phase"] == "failed"
    assert transient_left(deployer.journal, deployer.engine) == []

    # a delta that passes its gate, rolled back by the client: v1 again, as it was
    installed(deployer, releases.artifacts["v2"])
    runs(deployer, releases, "v2")
    proc = deployer.device.rollback()
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert running(deployer) == before
    assert deployer.device.show_artifact() == "delta-v1"
    assert holds(deployer, releases, "v1")
    assert gone(deployer, releases, "v2")
    assert journal(deployer)["deployment"]["phase"] == "failed"

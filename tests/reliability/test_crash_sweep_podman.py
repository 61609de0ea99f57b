"""The crash sweep on podman: SIGKILL the module at every engine call of ArtifactInstall
and ArtifactRollback, and the client with it, through the real 5.1 client with a real
podman (a store of the test's own) behind the engine shim.

Podman 4 cannot change a restart policy (`update --restart` fails: the module logs a
note and goes on), so this also proves that path is crash-safe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.realstack import ImageFactory, MenderDevice, PodmanStore, Registry, run, unique
from tests.reliability.harness import QUICK_EXIT, PodmanRigEngine, Rig, remove_image
from tests.reliability.sweep import RESTORED, CrashSweep
from tests.reliability.test_crash_sweep import MUTATING, check_points

pytestmark = pytest.mark.real


@pytest.fixture
def podman_sweep(
    image_factory: ImageFactory, registry: Registry, packed_module: Path, tmp_path: Path
) -> Iterator[CrashSweep]:
    repo = unique("rel/podman")
    images = (
        image_factory.build(repo, "v1", cmd=QUICK_EXIT),
        image_factory.build(repo, "v2", cmd=QUICK_EXIT),
    )
    for ref in images:  # built on the shared dockerd: podman pulls them from the registry
        remove_image(ref)
    run(["docker", "image", "rm", f"{registry.host}/{repo}:v1", f"{registry.host}/{repo}:v2"],
        check=False)  # fmt: skip
    store = PodmanStore(tmp_path / "podman", registries=[registry.host])
    device = MenderDevice(tmp_path / "device", client="5.1")
    try:
        rig = Rig(device, image_factory, tmp_path / "rig", packed_module, PodmanRigEngine(store))
        yield CrashSweep(rig, (rig.artifact("v1", images[0]), rig.artifact("v2", images[1])),
                         images)  # fmt: skip
    finally:
        device.restore()
        store.cleanup()


def test_sigkill_at_every_engine_call_of_artifact_install_on_podman(
    podman_sweep: CrashSweep,
) -> None:
    points = podman_sweep.sweep("install", ("before",))
    calls = podman_sweep.counted["install"]
    assert {"update", "rename", "create", "stop", "start"} <= {c.split()[0] for c in calls}
    assert len(points) == len(calls)
    check_points(points, RESTORED)
    check_points(podman_sweep.sweep("install", ("after",), only=MUTATING), RESTORED)


def test_sigkill_at_every_engine_call_of_artifact_rollback_on_podman(
    podman_sweep: CrashSweep,
) -> None:
    check_points(podman_sweep.sweep("rollback", ("before",)), RESTORED)


def test_client_killed_with_the_module_is_resumed_on_podman(podman_sweep: CrashSweep) -> None:
    points = podman_sweep.sweep("install+client", ("before",), only=("create", "stop", "start"))
    assert len(points) == 3, points
    check_points(points, RESTORED)

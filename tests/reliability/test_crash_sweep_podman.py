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

from tests.realstack import (
    EngineCli,
    ImageFactory,
    MenderDevice,
    PodmanStore,
    Registry,
    unique,
)
from tests.reliability.harness import Rig, sweep_images
from tests.reliability.sweep import RESTORED, CrashSweep
from tests.reliability.test_crash_sweep import MUTATING, check_points

pytestmark = pytest.mark.real


@pytest.fixture
def podman_sweep(
    image_factory: ImageFactory, registry: Registry, packed_module: Path, tmp_path: Path
) -> Iterator[CrashSweep]:
    images = sweep_images(image_factory, unique("rel/podman"))
    store = PodmanStore(tmp_path / "podman", registries=[registry.host])
    device = MenderDevice(tmp_path / "device", client="5.1")
    try:
        engine = EngineCli("podman", store)
        rig = Rig(device, image_factory, tmp_path / "rig", packed_module, engine)
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

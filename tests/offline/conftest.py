"""Fixtures for offline (embedded-image) artifacts on the real components.

The real-client tests run on the 3.4 and 5.1 clients with dockerd (`stack`);
those that matter on podman add the 5.1 client with a real podman
(tests/podman/fixtures.py) by parametrizing `stack` themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from tests.podman import fixtures as engine_fixtures
from tests.realstack import (
    DOCKER_STACKS,
    EngineCli,
    ImageFactory,
    MenderDevice,
    Registry,
    Stack,
    unique,
)
from tests.registry.fixtures import pushed  # noqa: F401  (images pushed over the registry API)

engine_cli = engine_fixtures.engine_cli
mender_device = engine_fixtures.mender_device  # replaces the root conftest's
podman_store = engine_fixtures.podman_store


@pytest.fixture(params=DOCKER_STACKS, ids=[s.id for s in DOCKER_STACKS])
def stack(request: pytest.FixtureRequest) -> Stack:
    """The client and engine of the device under test (docker unless a test says)."""
    param: Stack = request.param
    return param


class OfflineDevice:
    """The real Mender client running our module with a config of its own."""

    def __init__(
        self, device: MenderDevice, module: Path, work: Path, engine: Optional[EngineCli] = None
    ) -> None:
        self.device = device
        self.work = work
        self.engine = engine or EngineCli("docker")
        self.namespace = unique("offline.mender")
        self.journal = work / "journal"
        conf = work / "mender-docker.conf"
        conf.write_text(
            "scope = managed\n"
            f"label_namespace = {self.namespace}\n"
            f"data_dir = {self.journal}\n"
            "health_window = 1\n"
            "health_timeout = 20\n"
            "stop_timeout = 2\n"
            + (f"engine = {self.engine.name}\n" if self.engine.is_podman else "")
        )
        device.use_module(module)
        device.env["MENDER_DOCKER_CONF"] = str(conf)
        device.env.update(self.engine.env)

    @property
    def managed_label(self) -> str:
        return f"{self.namespace}.managed=1"

    def containers(self) -> List[str]:
        """IDs of all our containers, running or not."""
        return self.engine.container_ids(self.managed_label)

    def transient_left(self) -> List[str]:
        return transient_left(self.journal, self.engine)

    def remove_all(self) -> None:
        self.engine.remove_containers(*self.containers())

    def remove_images(self, *refs: str) -> None:
        remove_images(*refs, engine=self.engine)


@pytest.fixture
def offline_device(
    mender_device: MenderDevice, engine_cli: EngineCli, packed_module: Path, tmp_path: Path
) -> Iterator[OfflineDevice]:
    device = OfflineDevice(mender_device, packed_module, tmp_path, engine_cli)
    try:
        yield device
    finally:
        device.remove_all()


@pytest.fixture
def registry_down(registry: Registry) -> Iterator[Registry]:
    """Stops the session's registry for one test (then starts it again)."""
    try:
        yield registry
    finally:
        registry.start()


def transient_tags(journal_dir: Path) -> List[str]:
    """The transient `docker import` tags the journal's deployment recorded."""
    from mender_docker.module.images import IMPORT_REPOSITORY

    data = json.loads((journal_dir / "journal.json").read_text())
    return [ref for ref in data["deployment"]["pulled"] if ref.startswith(IMPORT_REPOSITORY + ":")]


def transient_left(journal_dir: Path, engine: Optional[EngineCli] = None) -> List[str]:
    """Those of them that still exist. Only this deployment's own tags are looked
    at: other test sessions may be importing on the same engine at the same time."""
    cli = engine or EngineCli("docker")
    return [tag for tag in transient_tags(journal_dir) if cli.image_id(tag)]


def remove_images(*refs: str, engine: Optional[EngineCli] = None) -> None:
    cli = engine or EngineCli("docker")
    for ref in refs:
        cli.run("image", "rm", "-f", ref, check=False)


__all__ = ["ImageFactory", "OfflineDevice", "remove_images"]

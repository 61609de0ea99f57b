"""Shared fixtures on the real components (see tests/realstack.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List

import pytest
from hypothesis import HealthCheck, settings

from tests.realstack import (
    CLIENTS,
    ImageFactory,
    MenderDevice,
    Registry,
    require_engine,
    run,
)

# Property tests: the same examples on every run and no clock in the verdict, so no test
# fails by chance or because the machine is busy (CI shares 2 cores).
settings.register_profile("project", derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("project")


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Fails (never skips) when dockerd is not answering."""
    require_engine()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A real docker-registry on a free loopback port, for the whole session."""
    reg = Registry(tmp_path_factory.mktemp("registry"))
    reg.start()
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def image_factory(
    docker_engine: None, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ImageFactory]:
    """Builds busybox images and pushes them to `registry`; removes them at the end."""
    factory = ImageFactory(registry, tmp_path_factory.mktemp("images"))
    yield factory
    factory.cleanup()


@pytest.fixture(scope="session")
def packed_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our module as the single file a device gets, built once from this checkout."""
    path = tmp_path_factory.mktemp("module") / "docker"
    run(["mender-docker", "build-module", "-o", str(path)])
    return path


@pytest.fixture(params=CLIENTS, ids=[f"mender-{c}" for c in CLIENTS])
def mender_device(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MenderDevice]:
    """The real Mender client, standalone, state in tmp_path; restores module files.

    Every test that drives a client runs on both: 3.4 (Debian's) and 5.1 (devices' today)."""
    device = MenderDevice(tmp_path / "device", client=request.param)
    try:
        yield device
    finally:
        device.restore()


# Fixtures that stand for a real component (dockerd, podman, docker-registry, a Mender
# client): every test using one, directly or through another fixture, is a `real` test.
REAL_FIXTURES = frozenset({
    "docker_engine", "registry", "image_factory", "mender_device", "private_dockerd",
    "podman_store", "private_podman", "pushed", "engine_cli",
})


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    for item in items:
        if REAL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real)

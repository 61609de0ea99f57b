"""Fixtures of the podman tests: the packed module and a podman store of the test's own."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.realstack import PodmanStore, Registry, run


@pytest.fixture(scope="session")
def module_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our module, packed as the single file a device gets."""
    path = tmp_path_factory.mktemp("podman-module") / "docker"
    run(["mender-docker", "build-module", "-o", str(path)])
    return path


@pytest.fixture
def private_podman(registry: Registry, tmp_path: Path) -> Iterator[PodmanStore]:
    """A podman whose every piece of state a reboot touches is the test's own: store,
    runroot, tmp_dir and (file) locks, so the test may wipe what a reboot wipes."""
    store = PodmanStore(tmp_path / "podman", registries=[registry.host], file_locks=True)
    try:
        yield store
    finally:
        store.cleanup()

"""Fixtures of the podman tests: a podman store of the test's own."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.realstack import PodmanStore, Registry


@pytest.fixture
def private_podman(registry: Registry, tmp_path: Path) -> Iterator[PodmanStore]:
    """A podman whose every piece of state a reboot touches is the test's own: store,
    runroot, tmp_dir and (file) locks, so the test may wipe what a reboot wipes."""
    store = PodmanStore(tmp_path / "podman", registries=[registry.host], file_locks=True)
    try:
        yield store
    finally:
        store.cleanup()

"""Fixtures of the reliability suite: a private dockerd and a rig on it."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.realstack import run
from tests.reliability.private_engine import PrivateDockerd


@pytest.fixture(scope="session")
def private_dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateDockerd]:
    engine = PrivateDockerd(tmp_path_factory.mktemp("dockerd"))
    try:
        engine.start()
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="session")
def packed_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our module as the single file a device gets, built from this checkout."""
    path = tmp_path_factory.mktemp("module") / "docker"
    run(["mender-docker", "build-module", "-o", str(path)])
    return path

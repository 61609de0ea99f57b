"""Fixtures of the reliability suite: a private dockerd and a rig on it."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.reliability.private_engine import PrivateDockerd


@pytest.fixture(scope="session")
def private_dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateDockerd]:
    engine = PrivateDockerd(tmp_path_factory.mktemp("dockerd"))
    try:
        engine.start()
        yield engine
    finally:
        engine.close()



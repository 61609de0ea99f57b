"""Fixtures giving the real-client suites an engine dimension (docker or podman).

A conftest that imports them defines a `stack` fixture parametrized over the
`tests.realstack.Stack`s its tests run on by default; a test narrows or widens
that with `@pytest.mark.parametrize("stack", ..., indirect=True)`. The
`mender_device` here replaces the root conftest's (which runs both clients on
dockerd) for such a directory, so the test ids stay `mender-3.4` and
`mender-5.1` on docker and become `mender-5.1-podman` on podman.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Sequence

import pytest

from tests.realstack import (
    EngineCli,
    MenderDevice,
    PodmanStore,
    Registry,
    Stack,
    require_engine,
)


def stack_params(stacks: Sequence[Stack]) -> List[object]:
    """`pytest.param`s for `stacks`, with their ids (for indirect parametrization)."""
    return [pytest.param(stack, id=stack.id) for stack in stacks]


@pytest.fixture(scope="session")
def podman_store(
    registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PodmanStore]:
    """A real podman with a store of its own for the session; it trusts the session's
    loopback registry over plain HTTP. Removed with everything in it at the end."""
    store = PodmanStore(tmp_path_factory.mktemp("podman"), registries=[registry.host])
    try:
        yield store
    finally:
        store.cleanup()


@pytest.fixture
def engine_cli(stack: Stack, request: pytest.FixtureRequest) -> EngineCli:
    """The test's engine: the shared dockerd or the session's podman store."""
    if stack.engine == "podman":
        store: PodmanStore = request.getfixturevalue("podman_store")
        return EngineCli("podman", store)
    require_engine()
    return EngineCli("docker")


@pytest.fixture
def mender_device(stack: Stack, tmp_path: Path) -> Iterator[MenderDevice]:
    """The real Mender client of the test's stack, standalone, state in tmp_path."""
    device = MenderDevice(tmp_path / "device", client=stack.client)
    try:
        yield device
    finally:
        device.restore()

"""Fixtures shared by tests/registry and tests/gen (imported by both conftests).

Built on the lead's real `registry` fixture (tests/conftest.py); images are
pushed over the registry API (tests/registry/ocipush.py), so no daemon is needed.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator

import pytest

from tests.realstack import BUSYBOX, Registry
from tests.registry.ocipush import Pushed, push_image, push_index

USER = "gen-user"
PASSWORD = "s3cret-pass"
# bcrypt (cost 4, so each request stays fast) of PASSWORD; docker-registry's
# htpasswd auth accepts bcrypt only. Made once with libxcrypt's crypt(3).
PASSWORD_BCRYPT = "$2b$04$MCvSGfUeoBZUi6vhpPEXKeCUBzv5FgOc0rYRX6fmMBZqUbqF0rCRW"


@dataclass(frozen=True)
class PushedSet:
    host: str
    prefix: str  # unique repository prefix for this session
    single: Pushed  # linux/amd64, OCI manifest, tag "v1"
    docker_typed: Pushed  # linux/amd64, Docker v2 schema 2, tag "v1"
    arm_only: Pushed  # linux/arm/v7, single manifest, tag "v1"
    children: Dict[str, Pushed]  # platform -> manifest inside the index
    index_digest: str

    def ref(self, name: str, tag: str = "v1") -> str:
        return f"{self.host}/{self.prefix}/{name}:{tag}"


# tests/registry and tests/gen both use `pushed`: push once per registry.
_PUSHED: Dict[str, PushedSet] = {}


@pytest.fixture(scope="session")
def pushed(registry: Registry) -> PushedSet:
    """A few images, including a 3-platform OCI index, pushed via the HTTP API."""
    if registry.host not in _PUSHED:
        _PUSHED[registry.host] = _push_set(registry)
    return _PUSHED[registry.host]


def _push_set(registry: Registry) -> PushedSet:
    assert BUSYBOX.exists(), "busybox-static is missing (/bin/busybox)"
    busybox = BUSYBOX.read_bytes()
    prefix = f"regtest{uuid.uuid4().hex[:8]}"
    host = registry.host

    def files(marker: str) -> Dict[str, bytes]:
        return {"bin/busybox": busybox, "marker": marker.encode()}

    single = push_image(host, f"{prefix}/single", "v1", [files("single"), {"extra": b"x" * 100}])
    docker_typed = push_image(host, f"{prefix}/dockertyped", "v1", [files("dt")], docker_types=True)
    arm_only = push_image(
        host, f"{prefix}/armonly", "v1", [{"marker": b"arm"}], architecture="arm", variant="v7"
    )
    children = {
        "linux/amd64": push_image(host, f"{prefix}/multi", None, [files("amd64")]),
        "linux/arm64/v8": push_image(
            host,
            f"{prefix}/multi",
            None,
            [{"marker": b"arm64" * 1000}],
            architecture="arm64",
            variant="v8",
        ),
        "linux/arm/v7": push_image(
            host,
            f"{prefix}/multi",
            None,
            [{"m": os.urandom(4000)}],
            architecture="arm",
            variant="v7",
        ),
    }
    platforms = {
        "linux/amd64": {"os": "linux", "architecture": "amd64"},
        "linux/arm64/v8": {"os": "linux", "architecture": "arm64", "variant": "v8"},
        "linux/arm/v7": {"os": "linux", "architecture": "arm", "variant": "v7"},
    }
    index_digest, _ = push_index(
        host,
        f"{prefix}/multi",
        "v1",
        [(children[name], platforms[name]) for name in children],
    )
    return PushedSet(host, prefix, single, docker_typed, arm_only, children, index_digest)


@pytest.fixture(scope="session")
def basic_registry(
    registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    """A second real docker-registry, behind htpasswd (HTTP Basic) auth."""
    root = tmp_path_factory.mktemp("basic-registry")
    htpasswd = root / "htpasswd"
    htpasswd.write_text(f"{USER}:{PASSWORD_BCRYPT}\n")
    extra = f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n"
    reg = Registry(root, extra_config=extra)
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


def docker_config(tmp_path: Path, content: str) -> Dict[str, str]:
    """An environment whose DOCKER_CONFIG holds `content` as config.json."""
    folder = tmp_path / f"docker-config-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    (folder / "config.json").write_text(content)
    return {**os.environ, "DOCKER_CONFIG": str(folder)}

"""Our module driven by the real Mender client, with artifacts from our generator.

Every test runs on three devices (`stack`): the 3.4 and 5.1 clients on the shared
dockerd, and the 5.1 client on a real podman with a store of its own (see
tests/podman/fixtures.py); docker-only tests narrow that to DOCKER_STACKS.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import pytest

from tests.podman import fixtures as engine_fixtures
from tests.realstack import (
    ALL_STACKS,
    DEVICE_TYPE,
    EngineCli,
    ImageFactory,
    MenderDevice,
    Registry,
    Stack,
    run,
    unique,
)

engine_cli = engine_fixtures.engine_cli
mender_device = engine_fixtures.mender_device  # replaces the root conftest's: see there
podman_store = engine_fixtures.podman_store


@pytest.fixture(params=ALL_STACKS, ids=[s.id for s in ALL_STACKS])
def stack(request: pytest.FixtureRequest) -> Stack:
    """The client and engine of the device under test."""
    param: Stack = request.param
    return param


class Deployer:
    """A device running our module, plus the means to make artifacts for it."""

    def __init__(
        self,
        device: MenderDevice,
        factory: ImageFactory,
        work: Path,
        engine: Optional[EngineCli] = None,
    ) -> None:
        self.device = device
        self.factory = factory
        self.work = work
        self.engine = engine or EngineCli("docker")
        self.journal = work / "journal"
        self.conf = work / "mender-docker.conf"
        # A label namespace of its own: runs sharing the daemon never see each other's containers.
        self.namespace = unique("it.mender")
        self.settings: Dict[str, str] = {
            "label_namespace": self.namespace,
            "scope": "managed",
            "data_dir": str(self.journal),
            "stop_timeout": "5",
            "health_window": "1",
            "health_timeout": "15",
        }
        if self.engine.is_podman:
            self.settings["engine"] = self.engine.name
        self.write_conf()
        device.env["MENDER_DOCKER_CONF"] = str(self.conf)
        device.env.update(self.engine.env)  # podman's configuration files

    def write_conf(self, **changes: str) -> None:
        self.settings.update(changes)
        self.conf.write_text("".join(f"{k} = {v}\n" for k, v in self.settings.items()))

    def artifact(self, name: str, *images: str, extra: Sequence[str] = ()) -> Path:
        out = self.work / f"{name}.mender"
        run(["docker-artifact-gen", "-n", name, "-t", DEVICE_TYPE, "-o", str(out), *extra, *images])
        return out

    def install(self, artifact: Path) -> subprocess.CompletedProcess[str]:
        return self.device.install(artifact)

    def deploy(self, artifact: Path) -> None:
        """install + commit, both must succeed."""
        proc = self.device.install(artifact)
        assert proc.returncode == 0, proc.stderr[-4000:]
        proc = self.device.commit()
        assert proc.returncode == 0, proc.stderr[-4000:]

    def ours(self, all_states: bool = False) -> List[Dict[str, str]]:
        """Containers carrying this device's label: {id, name, image, state}."""
        return self.engine.containers(f"{self.namespace}.managed", all_states)

    def inspect(self, container: str) -> Dict[str, Any]:
        return self.engine.inspect(container)

    def remove_containers(self) -> None:
        ids = [c["id"] for c in self.ours(all_states=True)]
        if ids:
            self.engine.remove_containers(*ids)


def http_get(port: int, timeout: float = 10) -> Optional[str]:
    """The body served on the port, retried for up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                body: bytes = resp.read()
                return body.decode().strip()
        except OSError:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)


@pytest.fixture
def deployer(
    mender_device: MenderDevice,
    engine_cli: EngineCli,
    packed_module: Path,
    image_factory: ImageFactory,
    registry: Registry,
    tmp_path: Path,
) -> Iterator[Deployer]:
    mender_device.use_module(packed_module)
    deployer = Deployer(mender_device, image_factory, tmp_path, engine_cli)
    yield deployer
    deployer.remove_containers()
    # Images the deployments pulled by digest, from this test's registry.
    engine_cli.remove_images_from(registry.host)


@pytest.fixture
def web_images(image_factory: ImageFactory) -> Dict[str, str]:
    """Two versions of an HTTP service and a broken third, pushed and absent locally."""
    repo = unique("it/web")
    refs = {
        "v1": image_factory.http_service(repo, "v1"),
        "v2": image_factory.http_service(repo, "v2"),
    }
    image_factory.cleanup()  # the device must pull them
    return refs


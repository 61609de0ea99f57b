"""Our module driven by the real Mender client, with artifacts from our generator."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import pytest

from tests.realstack import (
    DEVICE_TYPE,
    ImageFactory,
    MenderDevice,
    Registry,
    run,
    unique,
)


@pytest.fixture(scope="session")
def module_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our module, packed as the single file a device gets."""
    path = tmp_path_factory.mktemp("module") / "docker"
    run(["mender-docker", "build-module", "-o", str(path)])
    return path


class Deployer:
    """A device running our module, plus the means to make artifacts for it."""

    def __init__(self, device: MenderDevice, factory: ImageFactory, work: Path) -> None:
        self.device = device
        self.factory = factory
        self.work = work
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
        self.write_conf()
        device.env["MENDER_DOCKER_CONF"] = str(self.conf)

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
        argv = ["docker", "ps", "--no-trunc", "--filter", f"label={self.namespace}.managed",
                "--format", "{{.ID}}\t{{.Names}}\t{{.Image}}\t{{.State}}"]
        if all_states:
            argv.insert(2, "-a")
        rows = [line.split("\t") for line in run(argv).stdout.splitlines() if line.strip()]
        return [{"id": r[0], "name": r[1], "image": r[2], "state": r[3]} for r in rows]

    def remove_containers(self) -> None:
        ids = [c["id"] for c in self.ours(all_states=True)]
        if ids:
            run(["docker", "rm", "-f", *ids], check=False)


def inspect(container: str) -> Dict[str, object]:
    data: List[Dict[str, object]] = json.loads(run(["docker", "inspect", container]).stdout)
    return data[0]


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
    module_file: Path,
    image_factory: ImageFactory,
    registry: Registry,
    tmp_path: Path,
) -> Iterator[Deployer]:
    mender_device.use_module(module_file)
    deployer = Deployer(mender_device, image_factory, tmp_path)
    yield deployer
    deployer.remove_containers()
    # Images the deployments pulled by digest, from this test's registry.
    images = run(["docker", "images", "--format", "{{.Repository}}@{{.ID}}"], check=False).stdout
    for line in images.splitlines():
        repo, _, image_id = line.partition("@")
        if repo.startswith(registry.host + "/"):
            run(["docker", "image", "rm", "-f", image_id], check=False)


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


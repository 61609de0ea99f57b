"""Fixtures for offline (embedded-image) artifacts on the real components."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, List

import pytest

from tests.realstack import ImageFactory, MenderDevice, Registry, run, unique
from tests.registry.fixtures import pushed  # noqa: F401  (images pushed over the registry API)


@pytest.fixture(scope="session")
def module_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our module packed as the single file a device gets."""
    path = tmp_path_factory.mktemp("offline-module") / "docker"
    run(["mender-docker", "build-module", "-o", str(path)])
    return path


class OfflineDevice:
    """The real Mender client running our module with a config of its own."""

    def __init__(self, device: MenderDevice, module: Path, work: Path) -> None:
        self.device = device
        self.work = work
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
        )
        device.use_module(module)
        device.env["MENDER_DOCKER_CONF"] = str(conf)

    @property
    def managed_label(self) -> str:
        return f"{self.namespace}.managed=1"

    def containers(self) -> List[str]:
        """IDs of all our containers, running or not."""
        out = run(["docker", "ps", "-aq", "--no-trunc", "--filter", f"label={self.managed_label}"])
        return out.stdout.split()

    def transient_left(self) -> List[str]:
        return transient_left(self.journal)

    def remove_all(self) -> None:
        ids = self.containers()
        if ids:
            run(["docker", "rm", "-f", *ids], check=False)


@pytest.fixture
def offline_device(
    mender_device: MenderDevice, module_file: Path, tmp_path: Path
) -> Iterator[OfflineDevice]:
    device = OfflineDevice(mender_device, module_file, tmp_path)
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
    from mender_docker.module.download import IMPORT_REPOSITORY

    data = json.loads((journal_dir / "journal.json").read_text())
    return [ref for ref in data["deployment"]["pulled"] if ref.startswith(IMPORT_REPOSITORY + ":")]


def transient_left(journal_dir: Path) -> List[str]:
    """Those of them that still exist. Only this deployment's own tags are looked
    at: other test sessions may be importing on the same engine at the same time."""
    tags = transient_tags(journal_dir)
    found = [run(["docker", "image", "inspect", tag], check=False) for tag in tags]
    return [tag for tag, proc in zip(tags, found) if proc.returncode == 0]


def remove_images(*refs: str) -> None:
    for ref in refs:
        run(["docker", "image", "rm", "-f", ref], check=False)


__all__ = ["ImageFactory", "OfflineDevice", "remove_images"]

"""Stateful services through the real Mender client: data in anonymous volumes
survives every update (an image's VOLUME, a Compose service's `- /data`), and
no volume is left behind.

Other test sessions share the engine, so volumes are never counted engine-wide:
every volume one of this test's containers ever had is tracked, and at the end
only those the running container mounts may still exist.
"""

from __future__ import annotations

from typing import Iterator, List, Set

import pytest

from tests.integration.conftest import Deployer
from tests.podman.fixtures import stack_params
from tests.realstack import ALL_STACKS, DEVICE_TYPE, ImageFactory, run, unique

pytestmark = [
    pytest.mark.real,
    pytest.mark.parametrize("stack", stack_params(ALL_STACKS), indirect=True),
]
# appends the release the image carries to the log in its volume, then serves
APPEND = 'cat /version >> /data/log; trap "exit 0" TERM; sleep 3600 & wait'


class Volumes:
    """The volumes this test's containers have had."""

    def __init__(self, deployer: Deployer) -> None:
        self.deployer = deployer
        self.seen: Set[str] = set()

    def mounted(self) -> Set[str]:
        """The volumes of this device's containers (any state); remembered."""
        found = set()
        for container in self.deployer.ours(all_states=True):
            mounts = self.deployer.inspect(container["id"]).get("Mounts") or []
            found |= {m["Name"] for m in mounts if m.get("Type") == "volume"}
        self.seen |= found
        return found

    def existing(self) -> Set[str]:
        """Those of the seen volumes the engine still has."""
        listed = self.deployer.engine.run("volume", "ls", "-q").stdout.split()
        return self.seen & set(listed)

    def remove(self) -> None:
        self.deployer.remove_containers()
        if self.existing():
            self.deployer.engine.run("volume", "rm", *sorted(self.existing()), check=False)


@pytest.fixture
def volumes(deployer: Deployer) -> Iterator[Volumes]:
    tracked = Volumes(deployer)
    yield tracked
    tracked.remove()


def releases(factory: ImageFactory, repo: str, count: int, volume: bool) -> List[str]:
    """`count` releases of an image appending `v<n>` to /data/log at start."""
    refs = [
        factory.build(
            repo,
            f"v{n}",
            cmd=["sh", "-c", APPEND],
            files={"version": f"v{n}\n".encode()},
            volumes=["/data"] if volume else [],
        )
        for n in range(1, count + 1)
    ]
    factory.cleanup()  # the device pulls them
    return refs


def log_of(deployer: Deployer, container: str) -> List[str]:
    return deployer.engine.run("exec", container, "cat", "/data/log").stdout.split()


def test_an_image_volume_keeps_its_data_over_five_updates(
    deployer: Deployer, image_factory: ImageFactory, volumes: Volumes
) -> None:
    name = unique("db")
    refs = releases(image_factory, unique("it/db"), 5, volume=True)
    for n, ref in enumerate(refs, 1):
        deployer.deploy(deployer.artifact(f"db-v{n}", ref, extra=["--name", name]))
        assert log_of(deployer, name) == [f"v{i}" for i in range(1, n + 1)]
        assert len(volumes.mounted()) == 1
        assert volumes.existing() == volumes.mounted(), "a replaced container's volume is left"
    assert len(volumes.seen) == 1, "the same volume all along"


def test_a_compose_service_keeps_its_anonymous_volume_over_five_updates(
    deployer: Deployer, image_factory: ImageFactory, volumes: Volumes
) -> None:
    project = unique("store").replace(".", "-").lower()
    refs = releases(image_factory, unique("it/store"), 5, volume=False)
    for n, ref in enumerate(refs, 1):
        path = deployer.work / f"store-v{n}.yaml"
        path.write_text(
            f"services:\n  db:\n    image: {ref}\n    volumes:\n      - /data\n"
            "    stop_grace_period: 2s\n"
        )
        artifact = deployer.work / f"store-v{n}.mender"
        run(
            ["docker-artifact-gen", "-n", f"store-v{n}", "-t", DEVICE_TYPE, "-o", str(artifact),
             "--compose", str(path), "--project-name", project]
        )  # fmt: skip
        deployer.deploy(artifact)
        assert log_of(deployer, f"{project}-db-1") == [f"v{i}" for i in range(1, n + 1)]
        assert len(volumes.mounted()) == 1
        assert volumes.existing() == volumes.mounted()
    assert len(volumes.seen) == 1


def test_a_failed_update_leaves_the_data_with_the_previous_release(
    deployer: Deployer, image_factory: ImageFactory, volumes: Volumes
) -> None:
    name = unique("db")
    repo = unique("it/db")
    good = releases(image_factory, repo, 1, volume=True)[0]
    broken = image_factory.build(
        repo, "broken", cmd=["sh", "-c", "echo broken >> /data/log; exit 3"], volumes=["/data"]
    )
    image_factory.cleanup()
    deployer.deploy(deployer.artifact("db-v1", good, extra=["--name", name]))
    proc = deployer.install(deployer.artifact("db-broken", broken, extra=["--name", name]))
    assert proc.returncode != 0
    # it wrote to the same volume (once per restart its policy made), then v1 again
    log = log_of(deployer, name)
    assert log[0] == log[-1] == "v1" and set(log[1:-1]) == {"broken"}, log
    assert len(volumes.mounted()) == 1 and volumes.existing() == volumes.mounted()

"""Anonymous volumes across updates (module/volumes.py, deployment.py's cleanup), fake engine."""

from __future__ import annotations

from pathlib import Path
from typing import List, Set

import pytest

from mender_docker.module.engine import VolumeMount, parse_container
from mender_docker.module.volumes import mount_targets
from mender_docker.runargs import parse_text
from tests.fakes.device import Device
from tests.fakes.engine import SimulatedCrash

pytestmark = pytest.mark.usefixtures("phases_follow_the_table")


@pytest.fixture
def device(tmp_path: Path) -> Device:
    return Device(tmp_path)

ANON_A = "59a392a0b35ff1cbdb2aa24f4a9295f49184c45bf60ea4b23ba266532422fcfe"
ANON_B = "db80cce78ab3f0d03cb06484fdaf1ce907679317579e9773967fde0fbe8b0d76"
# trimmed `inspect` Mounts of `create -v named:/named -v /anon2` from an image with
# `VOLUME /data`: dockerd 20.10 and podman 4.3 write the same keys
DOCKER_MOUNTS = [
    {"Type": "volume", "Name": ANON_A, "Destination": "/anon2", "Driver": "local"},
    {"Type": "volume", "Name": ANON_B, "Destination": "/data", "Driver": "local"},
    {"Type": "volume", "Name": "named", "Destination": "/named", "Mode": "z"},
    {"Type": "bind", "Source": "/etc/hosts", "Destination": "/h"},
]
PODMAN_MOUNTS = [
    {"Type": "volume", "Name": ANON_B, "Destination": "/data", "Options": ["rbind"]},
    {"Type": "volume", "Name": "named", "Destination": "/named", "Options": ["rbind"]},
    {"Type": "volume", "Name": ANON_A, "Destination": "/anon2", "Options": ["rbind"]},
]


@pytest.mark.parametrize("mounts", [DOCKER_MOUNTS, PODMAN_MOUNTS], ids=["docker", "podman"])
def test_parse_volume_mounts(mounts: List[object]) -> None:
    info = parse_container({"Id": "1" * 64, "Mounts": mounts})
    found = {(v.destination, v.name, v.anonymous) for v in info.volumes}
    assert found == {("/anon2", ANON_A, True), ("/data", ANON_B, True), ("/named", "named", False)}
    assert parse_container({"Id": "1" * 64}).volumes == ()
    assert not VolumeMount("A" * 64, "/x").anonymous  # engines write lower-case hex


@pytest.mark.parametrize(
    ("args", "targets"),
    [
        ("-v db:/var/lib/db -v /cache --tmpfs /run:size=1m", {"/var/lib/db", "/run"}),
        ("--mount type=volume,dst=/anon --mount type=tmpfs,dst=/t", {"/t"}),
        ("--mount type=bind,src=/etc/x,dst=/data/ --volume=/h:/h:ro", {"/data", "/h"}),
        ('--mount "type=volume,src=v,target=/a,readonly"', {"/a"}),
        ("-e A=1", set()),
        ("--volumes-from other", None),
    ],
)
def test_mount_targets(args: str, targets: Set[str]) -> None:
    assert mount_targets(parse_text(args, "docker")) == targets


def _volume_image(device: Device, version: str) -> str:
    return device.engine.publish("registry.local/db", version, volumes=["/data"])


def _db(device: Device):  # type: ignore[no-untyped-def]
    return device.engine.by_name("db")


def test_the_new_container_inherits_the_anonymous_volume(device: Device) -> None:
    engine = device.engine
    device.deploy("r1", [_volume_image(device, "1")], names=["db"], container_args=["-v /cache"])
    first = {v.destination: v.name for v in _db(device).mounts}
    assert set(first) == {"/data", "/cache"}
    for version in range(2, 6):
        image = _volume_image(device, str(version))
        device.deploy(f"r{version}", [image], names=["db"], container_args=["-v /cache"])
        assert {v.destination: v.name for v in _db(device).mounts} == first
        assert set(engine.volumes) == set(first.values()), "no volume is left behind"
    inherited = device.journal().deployment.inherited  # type: ignore[union-attr]
    assert {(e["volume"], e["destination"]) for e in inherited} == {
        (name, dest) for dest, name in first.items()
    }
    assert f"--mount=type=volume,source={first['/data']},target=/data" in _db(device).args


def test_a_release_mounting_something_else_there_does_not_inherit(device: Device) -> None:
    engine = device.engine
    device.deploy("r1", [_volume_image(device, "1")], names=["db"])
    (old,) = _db(device).mounts
    engine.volumes["unrelated" + "0" * 55] = {}  # an anonymous volume of nobody's
    device.deploy("r2", [_volume_image(device, "2")], names=["db"], container_args=["-v db:/data"])
    assert [(v.name, v.destination) for v in _db(device).mounts] == [("db", "/data")]
    assert old.name not in engine.volumes, "nothing uses the old anonymous volume: removed"
    assert "db" in engine.volumes and "unrelated" + "0" * 55 in engine.volumes


def test_rollback_keeps_the_data_and_removes_only_the_new_containers_own(device: Device) -> None:
    engine = device.engine
    device.deploy("r1", [_volume_image(device, "1")], names=["db"])
    (data,) = _db(device).mounts
    broken = engine.publish("registry.local/db", "2", behaviour="exits", volumes=["/data"])
    device.new_deployment("r2", {"containers": [broken], "run_args": "", "names": ["db"],
                                 "container_args": ["-v /scratch"]})  # fmt: skip
    device.run("Download")
    with pytest.raises(Exception, match="health gate|exited"):
        device.run("ArtifactInstall")
    new = _db(device)
    scratch = next(v.name for v in new.mounts if v.destination == "/scratch")
    device.run("ArtifactRollback", "ArtifactFailure", "Cleanup")
    assert _db(device).mounts == (data,) and _db(device).running
    assert set(engine.volumes) == {data.name}, f"{scratch} (the new container's own) removed"


def test_a_volume_a_foreign_container_uses_is_never_removed(device: Device) -> None:
    engine = device.engine
    device.deploy("r1", [_volume_image(device, "1")], names=["db"])
    (data,) = _db(device).mounts
    foreign = engine.add_container("backup", engine.publish("backup", "1"), running=False)
    engine.containers[foreign].mounts = (VolumeMount(data.name, "/backup"),)
    device.deploy("r2", [_volume_image(device, "2")], names=["db"], container_args=["-v x:/data"])
    assert data.name in engine.volumes
    assert ("remove_volume", data.name) not in engine.calls


def test_compose_services_inherit_too(device: Device) -> None:
    engine = device.engine

    def meta(version: str) -> dict:  # type: ignore[type-arg]
        image = engine.publish("shop/db", version, volumes=["/var/lib/db"])
        return {"containers": [image], "run_args": "--restart=no", "project": "shop",
                "services": ["db"], "container_args": ["--network=shop_default -v /cache"],
                "depends_on": [""], "commands": [""], "networks": ["shop_default"],
                "volumes": []}  # fmt: skip

    for version in "123":
        device.new_deployment(f"r{version}", meta(version))
        device.run("Download", "ArtifactInstall", "ArtifactCommit", "Cleanup")
        (container,) = [c for c in engine.containers.values() if c.labels.get(
            "com.docker.compose.service") == "db"]  # fmt: skip
        if version == "1":
            first = container.mounts
        assert container.mounts == first and len(first) == 2
        assert set(engine.volumes) == {v.name for v in first}


def test_crash_at_every_call_of_install_and_cleanup_loses_no_data(tmp_path: Path) -> None:
    """Whatever the point of the crash, the volume ends mounted where it was, and
    no other volume is left."""
    point = 0
    while True:
        point += 1
        device = Device(tmp_path / f"crash-{point}")
        device.deploy("r1", [_volume_image(device, "1")], names=["db"], container_args=["-v /c"])
        before = set(device.engine.volumes)
        device.new_deployment("r2", {"containers": [_volume_image(device, "2")], "run_args": "",
                                     "names": ["db"], "container_args": ["-v /c"]})  # fmt: skip
        device.run("Download")
        device.engine.crash_at = len(device.engine.calls) + point
        try:
            device.run("ArtifactInstall", "ArtifactCommit", "Cleanup")
        except SimulatedCrash:
            states = ("ArtifactRollback", "ArtifactFailure", "Cleanup")
            if device.journal().deployment.phase in ("committed",):  # type: ignore[union-attr]
                states = ("Cleanup",)
            device.run(*states)
        else:
            break
        assert {v.name for v in _db(device).mounts} == before, f"crash at call {point}"
        assert set(device.engine.volumes) == before, f"crash at call {point}"
    assert point > 10

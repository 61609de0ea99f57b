"""Volume snapshots (module/snapshots.py): taken between stop and start, restored by
every rollback, deleted by the cleanups; crash-safe. Fake engine, real files and `cp`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from mender_docker.module import snapshots
from mender_docker.module.errors import DeploymentError, HealthCheckError
from mender_docker.spec import MetadataError, parse_metadata
from tests.fakes.device import Device
from tests.fakes.engine import SimulatedCrash

pytestmark = pytest.mark.usefixtures("phases_follow_the_table")


@pytest.fixture
def device(tmp_path: Path) -> Device:
    return Device(tmp_path)


def release(device: Device, version: str, snapshot: bool = True, **image: Any) -> Dict[str, Any]:
    ref = device.engine.publish("registry.local/db", version, volumes=["/data"], **image)
    return {"containers": [ref], "run_args": "", "names": ["db"],
            "container_args": ["-v cfg:/etc/db"], "snapshot_volumes": [int(snapshot)]}  # fmt: skip


def volumes(device: Device) -> Dict[str, Path]:
    """Destination -> the volume's directory on the host, of the container `db`."""
    engine = device.engine
    found = {}
    for mount in engine.by_name("db").mounts:
        path = engine.volume_mountpoint(mount.name)
        assert path is not None
        found[mount.destination] = Path(path)
    return found


def write_v1(device: Device) -> Dict[str, Any]:
    """Data of every kind a snapshot must keep; returns what to compare."""
    data, cfg = volumes(device)["/data"], volumes(device)["/etc/db"]
    (data / "db").mkdir()
    (data / "db" / "rows").write_text("v1 rows\n")
    os.link(data / "db" / "rows", data / "rows.link")
    with open(data / "sparse", "wb") as handle:
        handle.truncate(64 << 20)
    os.chmod(data / "db", 0o700)
    os.chown(data / "db" / "rows", 1234, 5678)
    os.setxattr(data / "db" / "rows", "user.release", b"v1")
    os.symlink("/etc/passwd", data / "link")
    (cfg / "db.conf").write_text("schema=1\n")
    return state(device)


def state(device: Device) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for dest, root in volumes(device).items():
        for path in sorted(root.rglob("*")):
            st = os.lstat(path)
            key = f"{dest}/{path.relative_to(root)}"
            out[key] = (st.st_mode, st.st_uid, st.st_gid, st.st_nlink, st.st_size)
            if path.is_file() and not path.is_symlink():
                out[key] += (path.read_bytes()[:100], st.st_blocks, os.listxattr(path))
        out[dest] = oct(os.stat(root).st_mode)
    return out


def migrate(device: Device) -> None:
    """What the new release does to the data when it starts."""
    data, cfg = volumes(device)["/data"], volumes(device)["/etc/db"]
    (data / "db" / "rows").write_text("v2 rows, migrated\n")
    (data / "new-table").write_text("v2\n")
    os.unlink(data / "rows.link")
    (cfg / "db.conf").write_text("schema=2\n")


def snapshot_root(device: Device) -> Path:
    return Path(device.config.journal_dir) / "snapshots"


def test_metadata_key() -> None:
    ref = "registry.local/db@sha256:" + "1" * 64
    meta = parse_metadata({"containers": [ref, ref], "names": ["a", "b"],
                           "snapshot_volumes": [1, 0]})  # fmt: skip
    assert [item.snapshot for item in meta.plan()] == [True, False]
    assert meta.to_dict()["snapshot_volumes"] == [1, 0]
    for bad in ([2, 0], [1], ["1", "0"], [True, False]):
        with pytest.raises(MetadataError, match="snapshot_volumes"):
            parse_metadata({"containers": [ref, ref], "names": ["a", "b"],
                            "snapshot_volumes": bad})  # fmt: skip


def test_health_gate_rollback_restores_the_data(device: Device) -> None:
    device.deploy("r1", **release(device, "1", snapshot=False))
    before = write_v1(device)
    old = device.engine.by_name("db").id
    device.new_deployment("r2", release(device, "2", behaviour="exits"))
    device.run("Download")
    with pytest.raises(HealthCheckError):
        device.run("ArtifactInstall")
    assert state(device) == before, "the new container got the same volumes"
    migrate(device)  # it ran long enough to migrate, then failed its gate
    assert state(device) != before
    device.run("ArtifactRollback")
    assert device.engine.by_name("db").id == old and device.engine.by_name("db").running
    assert state(device) == before
    device.run("ArtifactFailure", "Cleanup")
    assert list(snapshot_root(device).iterdir()) == []
    entries = device.journal().deployment.snapshots  # type: ignore[union-attr]
    assert sorted(e["state"] for e in entries) == ["restored", "restored"]


@pytest.mark.parametrize("after_commit", [False, True], ids=["installed", "committed"])
def test_explicit_rollback_restores_the_data(device: Device, after_commit: bool) -> None:
    device.deploy("r1", **release(device, "1", snapshot=False))
    before = write_v1(device)
    device.new_deployment("r2", release(device, "2"))
    device.run("Download", "ArtifactInstall", *(["ArtifactCommit"] if after_commit else []))
    migrate(device)
    device.run("ArtifactRollback")
    assert state(device) == before
    device.run("ArtifactFailure", "Cleanup")
    assert list(snapshot_root(device).iterdir()) == []


def test_a_committed_release_leaves_no_snapshot(device: Device) -> None:
    device.deploy("r1", **release(device, "1", snapshot=False))
    write_v1(device)
    device.new_deployment("r2", release(device, "2"))
    device.run("Download", "ArtifactInstall")
    assert len(list(snapshot_root(device).glob("*/*"))) == 2
    migrate(device)
    after = state(device)
    device.run("ArtifactCommit", "Cleanup")
    assert state(device) == after and list(snapshot_root(device).iterdir()) == []


def test_no_snapshot_unless_asked(device: Device) -> None:
    device.deploy("r1", **release(device, "1", snapshot=False))
    write_v1(device)
    device.new_deployment("r2", release(device, "2", snapshot=False))
    device.run("Download", "ArtifactInstall")
    assert not snapshot_root(device).exists()


def crashing_copy(after_bytes: int) -> Any:
    """A copy that dies (SIGKILL-like) once it has copied part of the tree."""

    def copy(source: str, target: str) -> None:
        os.makedirs(target, exist_ok=True)
        for name in sorted(os.listdir(source))[:1]:
            with open(os.path.join(target, name + ".half"), "wb") as out:
                out.write(b"x" * after_bytes)
        raise SimulatedCrash(f"killed while copying {source}")

    return copy


@pytest.mark.parametrize("volume", [0, 1], ids=["first-volume", "second-volume"])
def test_crash_inside_the_snapshot_copy(
    device: Device, monkeypatch: pytest.MonkeyPatch, volume: int
) -> None:
    device.deploy("r1", **release(device, "1", snapshot=False))
    before = write_v1(device)
    device.new_deployment("r2", release(device, "2"))
    device.run("Download")
    real_copy = snapshots.copy_tree
    calls: List[str] = []

    def copy(source: str, target: str) -> None:
        calls.append(source)
        (crashing_copy(10) if len(calls) > volume else real_copy)(source, target)

    monkeypatch.setattr(snapshots, "copy_tree", copy)
    with pytest.raises(SimulatedCrash):
        device.run("ArtifactInstall")
    monkeypatch.setattr(snapshots, "copy_tree", real_copy)
    device.run("ArtifactRollback")  # the client, once it runs again
    assert state(device) == before and device.engine.by_name("db").running
    device.run("ArtifactFailure", "Cleanup")
    assert list(snapshot_root(device).iterdir()) == []


def test_crash_inside_the_restore(device: Device, monkeypatch: pytest.MonkeyPatch) -> None:
    device.deploy("r1", **release(device, "1", snapshot=False))
    before = write_v1(device)
    old = device.engine.by_name("db").id
    device.new_deployment("r2", release(device, "2"))
    device.run("Download", "ArtifactInstall")
    migrate(device)
    real_copy = snapshots.copy_tree
    monkeypatch.setattr(snapshots, "copy_tree", crashing_copy(3))
    with pytest.raises(SimulatedCrash):
        device.run("ArtifactRollback")
    assert not device.engine.containers[old].running, "nothing runs on a half-restored volume"
    monkeypatch.setattr(snapshots, "copy_tree", real_copy)
    device.run("ArtifactRollback")
    assert state(device) == before and device.engine.containers[old].running
    device.run("ArtifactFailure", "Cleanup")
    assert list(snapshot_root(device).iterdir()) == []


def test_crash_at_every_engine_call_then_rollback_keeps_the_data(tmp_path: Path) -> None:
    point = 0
    while True:
        point += 1
        device = Device(tmp_path / f"crash-{point}")
        device.deploy("r1", **release(device, "1", snapshot=False))
        before = write_v1(device)
        device.new_deployment("r2", release(device, "2"))
        device.run("Download")
        device.engine.crash_at = len(device.engine.calls) + point
        try:
            device.run("ArtifactInstall")
        except SimulatedCrash:
            device.run("ArtifactRollback", "ArtifactFailure", "Cleanup")
            assert state(device) == before, f"crash at install call {point}"
            assert list(snapshot_root(device).glob("*/*")) == [], f"crash at call {point}"
            continue
        break
    assert point > 10


def test_the_device_can_forbid_snapshots(tmp_path: Path) -> None:
    device = Device(tmp_path, snapshot_volumes="never")
    device.deploy("r1", **release(device, "1", snapshot=False))
    device.new_deployment("r2", release(device, "2"))
    device.engine.calls.clear()
    with pytest.raises(DeploymentError, match="snapshot_volumes = never forbids"):
        device.run("Download")
    assert device.engine.mutations() == []


def test_the_free_space_check_counts_the_snapshots(
    device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    device.deploy("r1", **release(device, "1", snapshot=False))
    write_v1(device)
    device.new_deployment("r2", release(device, "2"))
    assert snapshots.space_needed(device.context(), device.context().plan(
        device.context().read_metadata())) >= 8192  # fmt: skip
    monkeypatch.setattr(snapshots, "tree_bytes", lambda path: 1 << 60)
    device.engine.calls.clear()
    with pytest.raises(DeploymentError, match="not enough space for the volume snapshots"):
        device.run("Download")
    assert device.engine.mutations() == []


def test_the_setting_takes_allow_or_never() -> None:
    from mender_docker.module.config import parse_config
    from mender_docker.module.errors import ConfigError

    assert parse_config("snapshot_volumes = never\n").snapshot_volumes == "never"
    assert parse_config("").snapshot_volumes == "allow"
    with pytest.raises(ConfigError, match="snapshot_volumes must be allow or never"):
        parse_config("snapshot_volumes = sometimes\n")


def test_an_install_run_again_after_a_crash_takes_its_snapshots_again(tmp_path: Path) -> None:
    def prepared(where: str) -> Tuple[Device, Dict[str, Any]]:
        device = Device(tmp_path / where)
        device.deploy("r1", **release(device, "1", snapshot=False))
        before = write_v1(device)
        device.new_deployment("r2", release(device, "2"))
        device.run("Download")
        return device, before

    reference, _ = prepared("reference")
    mark = len(reference.engine.calls)
    reference.run("ArtifactInstall")
    first_start = next(
        i for i, call in enumerate(reference.engine.calls[mark:], 1) if call[0] == "start"
    )
    device, before = prepared("device")
    device.engine.crash_at = len(device.engine.calls) + first_start
    with pytest.raises(SimulatedCrash):
        device.run("ArtifactInstall")  # killed at the first start: the snapshots are taken
    assert len(list(snapshot_root(device).glob("*/*"))) == 2
    device.run("ArtifactInstall")  # run again: undo restores, then the install starts anew
    migrate(device)
    device.run("ArtifactRollback")
    assert state(device) == before
    device.run("ArtifactFailure", "Cleanup")
    assert list(snapshot_root(device).iterdir()) == []

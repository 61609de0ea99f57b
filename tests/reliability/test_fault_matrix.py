"""The fault matrix: one real fault per test during an update through the real Mender
client. Each time the client log must carry one clear `mender-docker: error:` line
and the device must keep running exactly the containers it ran before.

They run on a private dockerd (private_engine.py) so they can restart it and fill
its disk without disturbing anyone else.
Set RELIABILITY_REPORT=FILE to collect the error lines for docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import pytest

from tests.realstack import ImageFactory, MenderDevice, Registry, run, unique
from tests.reliability.harness import QUICK_EXIT, Rig, client_log
from tests.reliability.private_engine import PrivateDockerd
from tests.tcprelay import TcpRelay

ERROR_MARK = "mender-docker: error: "


@dataclass
class Device:
    """A rig with v1 deployed and committed: the state every fault must leave intact."""

    rig: Rig
    factory: ImageFactory
    v1: str
    before: List[str]

    def build(self, tag: str, **kwargs: object) -> str:
        ref = self.factory.build(self.v1.split("@")[0].split("/", 1)[1], tag, **kwargs)  # type: ignore[arg-type]
        return ref

    def install_fails(self, artifact: Path, row: str, *needles: str) -> str:
        """Install must fail with an error line naming the fault; the old state stays."""
        proc = self.rig.device.install(artifact)
        log = client_log(proc)
        assert proc.returncode != 0, log[-3000:]
        errors = [line.split(ERROR_MARK, 1)[1].rstrip('"') for line in log.splitlines()
                  if ERROR_MARK in line]  # fmt: skip
        assert errors, log[-3000:]
        assert any(all(n.lower() in e.lower() for n in needles) for e in errors), errors
        self.assert_intact()
        report(row, errors[0])
        return errors[0]

    def assert_intact(self) -> None:
        everything = self.rig.containers()
        assert sorted(c.id for c in everything if c.state == "running") == self.before, everything
        assert [c.id for c in everything] == self.before, everything  # no leftovers
        assert self.rig.journal_phase() in ("failed", "cleaned")


def report(row: str, line: str) -> None:
    target = os.environ.get("RELIABILITY_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"row": row, "error": line}) + "\n")


def make_device(
    device: MenderDevice,
    factory: ImageFactory,
    work: Path,
    module: Path,
    engine: PrivateDockerd,
    run_args: Sequence[str] = (),
) -> Device:
    rig = Rig(device, factory, work, module, engine.cli())
    v1 = factory.build(unique("rel/fault"), "v1", cmd=QUICK_EXIT)
    rig.deployer.deploy(rig.artifact("v1", v1, extra=run_args))
    return Device(rig, factory, v1, rig.running_ids())


@pytest.fixture
def device(
    mender_device: MenderDevice,
    image_factory: ImageFactory,
    private_dockerd: PrivateDockerd,
    packed_module: Path,
    tmp_path: Path,
) -> Iterator[Device]:
    made: Optional[Device] = None
    try:
        made = make_device(mender_device, image_factory, tmp_path, packed_module, private_dockerd)
        yield made
    finally:
        if made is not None:
            made.rig.cleanup()
        private_dockerd.docker("image", "prune", "-af", check=False)


def test_registry_down_before_the_pull(
    device: Device, tmp_path: Path, image_factory: ImageFactory
) -> None:
    registry = Registry(tmp_path / "gone-registry")
    registry.start()
    try:
        factory = ImageFactory(registry, tmp_path)
        v2 = factory.build(unique("rel/fault"), "v2", cmd=QUICK_EXIT)
        artifact = device.rig.artifact("v2", v2)
        factory.cleanup()
    finally:
        registry.stop()
    device.install_fails(artifact, "registry down before the pull", "cannot pull", v2)


def test_registry_gone_in_the_middle_of_the_pull(device: Device, registry: Registry) -> None:
    v2 = device.build("v2", cmd=QUICK_EXIT, random_mb=24)
    proxy = TcpRelay(registry.port)
    try:
        pinned = f"{proxy.host}/{v2.split('/', 1)[1]}"
        artifact = device.rig.artifact("v2", pinned)
        proxy.rate = 2 * 2**20  # a 24 MB layer now takes ~12 s

        def kill_once_pulling() -> None:
            if proxy.wait_for(4 * 2**20, 60):
                proxy.kill()

        killer = threading.Thread(target=kill_once_pulling)
        killer.start()
        device.install_fails(artifact, "registry gone in the middle of the pull", "cannot pull")
        killer.join()
        assert proxy.dead.is_set(), "the pull never got going"
    finally:
        proxy.kill()


def test_image_digest_missing_from_the_registry(device: Device, registry: Registry) -> None:
    v2 = device.build("v2", cmd=QUICK_EXIT)
    artifact = device.rig.artifact("v2", v2)
    repo, digest = v2.split("/", 1)[1].split("@")
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repo}/manifests/{digest}", method="DELETE"
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 202
    device.install_fails(artifact, "image digest missing from the registry", "cannot pull")


def test_container_exits_at_start(device: Device) -> None:
    """The new container exits 3 at once and its restart policy restarts it (after
    0.1 s, 0.2 s, ...): the gate's first look may find it not yet exited, exited,
    `restarting`, or running again (inspect then says exit code 0). The error names
    the restart count and the last exit code (from the engine's events) whichever
    it was: the same needles hold in every order."""
    v2 = device.build("v2", cmd=["sh", "-c", "echo giving up; exit 3"])
    device.rig.deployer.write_conf(health_timeout="4")
    error = device.install_fails(
        device.rig.artifact("v2", v2),
        "container exits at start",
        "exited during the health gate",
        "last exit code 3",
    )
    assert re.search(r"\((exited|restarting|running), restarted \d+ times?, last exit code 3\)",
                     error), error  # fmt: skip


def test_failing_health_check(device: Device) -> None:
    v2 = device.build("v2", cmd=QUICK_EXIT, healthcheck=["false"])
    device.rig.deployer.write_conf(health_timeout="8")
    device.install_fails(device.rig.artifact("v2", v2), "failing health check", "unhealthy")


def test_dockerd_restarted_during_the_health_gate(
    device: Device, private_dockerd: PrivateDockerd
) -> None:
    v2 = device.build("v2", cmd=QUICK_EXIT)
    artifact = device.rig.artifact("v2", v2)
    device.rig.deployer.write_conf(health_window="3")
    device.rig.arm("ArtifactInstall")  # count only: we watch for the health gate

    def restart_once_the_gate_polls() -> None:
        for _ in range(600):
            calls = device.rig.calls()
            if any(c.startswith("run ") for c in calls) and calls[-1].startswith("container"):
                private_dockerd.restart()
                return
            threading.Event().wait(0.05)

    restarter = threading.Thread(target=restart_once_the_gate_polls)
    restarter.start()
    proc = device.rig.device.install(artifact)
    restarter.join()
    log = client_log(proc)
    errors = [line for line in log.splitlines() if ERROR_MARK in line]
    if proc.returncode == 0:
        # the new container came back with the daemon and passed the gate: roll back
        assert device.rig.device.rollback().returncode == 0
    else:
        assert errors, log[-3000:]
        # ArtifactRollback waits for the daemon instead of failing in its turn
        assert not any("error: ArtifactRollback" in e for e in errors), errors
        report("dockerd restarted during the health gate", errors[0].split(ERROR_MARK, 1)[1])
    device.assert_intact()


def test_engine_disk_full_is_refused_before_anything_stops(
    device: Device, private_dockerd: PrivateDockerd
) -> None:
    v2 = device.build("v2", cmd=QUICK_EXIT, random_mb=32)
    artifact = device.rig.artifact("v2", v2)
    with disk_filled(private_dockerd, leave_mb=8):
        device.install_fails(artifact, "engine disk full (meta-data has image_sizes)",
                             "not enough space")  # fmt: skip


def test_engine_disk_full_during_the_pull(device: Device, private_dockerd: PrivateDockerd) -> None:
    v2 = device.build("v2", cmd=QUICK_EXIT, random_mb=32)
    artifact = device.rig.artifact("v2", v2, drop=("image_sizes",))
    with disk_filled(private_dockerd, leave_mb=8):
        device.install_fails(artifact, "engine disk full during the pull (no image_sizes)",
                             "cannot pull", "no space left")  # fmt: skip


def test_journal_directory_read_only(device: Device) -> None:
    v2 = device.build("v2", cmd=QUICK_EXIT)
    artifact = device.rig.artifact("v2", v2)
    journal = str(device.rig.deployer.journal)
    run(["mount", "--bind", journal, journal])
    try:
        run(["mount", "-o", "remount,ro,bind", journal])
        device.install_fails(artifact, "journal directory read-only", "read-only")
    finally:
        run(["umount", journal])


def test_host_port_already_taken(device: Device) -> None:
    holder = socket.socket()
    try:
        holder.bind(("0.0.0.0", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        v2 = device.build("v2", cmd=QUICK_EXIT)
        artifact = device.rig.artifact("v2", v2, extra=["--run-args", f"-p {port}:8080"])
        device.install_fails(artifact, "host port already taken", str(port))
    finally:
        holder.close()


class disk_filled:
    """Fill the private engine's tmpfs until `leave_mb` MiB are free; undo on exit."""

    def __init__(self, engine: PrivateDockerd, leave_mb: int) -> None:
        self.path = engine.data / "filler"
        self.leave = leave_mb * 2**20

    def __enter__(self) -> None:
        stat = os.statvfs(self.path.parent)
        size = max(0, stat.f_bavail * stat.f_frsize - self.leave)
        with open(self.path, "wb") as out:
            chunk = b"\0" * 2**20
            for _ in range(size // len(chunk)):
                out.write(chunk)

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)

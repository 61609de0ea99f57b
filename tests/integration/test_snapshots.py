"""Volume snapshots through the real Mender client: a release built with
`--snapshot-volumes` that rewrites its data rolls back to the data as it was,
after a failed health gate, an explicit rollback, and a SIGKILL of the module
in the middle of the snapshot copy or of the restore; a committed one leaves no
snapshot behind.

v1 appends its version to two files of its `VOLUME /data` at every start; the
"migrating" v2 rewrites one and deletes the other. Whatever happened, the
previous release must find both files as it left them, plus its own new line.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Iterator, List

import pytest

from tests.integration.conftest import Deployer
from tests.integration.test_volumes import Volumes
from tests.podman.fixtures import stack_params
from tests.realstack import ALL_STACKS, ImageFactory, Stack, unique

pytestmark = pytest.mark.real  # on every stack (conftest.py) unless narrowed
client_5 = pytest.mark.parametrize(  # the crash tests: today's client, on both engines
    "stack", stack_params([s for s in ALL_STACKS if s.client == "5.1"]), indirect=True
)
SERVE = 'trap "exit 0" TERM; sleep 3600 & wait'
V1 = "cat /version >> /data/log; cat /version >> /data/more; " + SERVE
MIGRATE = "echo migrated > /data/log; rm -f /data/more; "
CP_SHIM = Path(__file__).with_name("cp_shim.py")


@pytest.fixture
def volumes(deployer: Deployer) -> Iterator[Volumes]:
    tracked = Volumes(deployer)
    yield tracked
    tracked.remove()


class Releases:
    def __init__(self, deployer: Deployer, factory: ImageFactory) -> None:
        self.deployer = deployer
        self.name = unique("db")
        repo = unique("it/snap")
        self.refs = {
            "v1": self.build(factory, repo, "v1", V1),
            "broken": self.build(factory, repo, "broken", MIGRATE + "exit 3"),
            "migrating": self.build(factory, repo, "migrating", MIGRATE + SERVE),
        }
        factory.cleanup()

    @staticmethod
    def build(factory: ImageFactory, repo: str, tag: str, script: str) -> str:
        return factory.build(repo, tag, cmd=["sh", "-c", script],
                             files={"version": f"{tag}\n".encode()}, volumes=["/data"])  # fmt: skip

    def artifact(self, release: str) -> Path:
        extra = ["--name", self.name, "--snapshot-volumes", "--health-window", "2"]
        return self.deployer.artifact(f"db-{release}", self.refs[release], extra=extra)

    def files(self) -> List[List[str]]:
        """/data/log and /data/more of the running container."""
        engine = self.deployer.engine
        return [
            engine.run("exec", self.name, "cat", f"/data/{f}", check=False).stdout.split()
            for f in ("log", "more")
        ]

    def snapshots_left(self) -> List[str]:
        root = self.deployer.journal / "snapshots"
        return sorted(str(p.relative_to(root)) for p in root.glob("*/*")) if root.exists() else []


@pytest.fixture
def releases(deployer: Deployer, image_factory: ImageFactory, volumes: Volumes) -> Releases:
    found = Releases(deployer, image_factory)
    deployer.deploy(found.artifact("v1"))
    assert found.files() == [["v1"], ["v1"]]
    return found


AS_IT_WAS = [["v1", "v1"], ["v1", "v1"]]  # v1's data, and the line of its restart


def test_a_failed_health_gate_rolls_the_data_back(releases: Releases) -> None:
    proc = releases.deployer.install(releases.artifact("broken"))
    assert proc.returncode != 0
    assert releases.files() == AS_IT_WAS
    assert releases.snapshots_left() == []


def test_an_explicit_rollback_rolls_the_data_back(releases: Releases) -> None:
    proc = releases.deployer.install(releases.artifact("migrating"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert releases.files() == [["migrated"], []]
    proc = releases.deployer.device.rollback()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert releases.files() == AS_IT_WAS
    assert releases.snapshots_left() == []


def test_a_committed_release_keeps_its_data_and_no_snapshot(
    releases: Releases, volumes: Volumes
) -> None:
    releases.deployer.deploy(releases.artifact("migrating"))
    assert releases.files() == [["migrated"], []]
    assert releases.snapshots_left() == []
    assert len(volumes.mounted()) == 1 and volumes.existing() == volumes.mounted()


def arm_cp(deployer: Deployer, kill: str) -> Path:
    """Put the killing `cp` first on the module's PATH; returns its marker file."""
    bin_dir = deployer.work / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "cp"
    shim.write_text(f"#!{sys.executable}\n" + CP_SHIM.read_text())
    shim.chmod(0o755)
    marker = deployer.work / "cp-killed"
    real = shutil.which("cp", path=os.defpath)
    control = {"real": real, "kill": kill, "marker": str(marker)}
    (bin_dir / "cp.json").write_text(json.dumps(control))
    deployer.device.env["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    return marker


@client_5
def test_sigkill_inside_the_snapshot_copy(releases: Releases, stack: Stack) -> None:
    marker = arm_cp(releases.deployer, "snapshot")
    proc = releases.deployer.install(releases.artifact("migrating"))
    assert marker.read_text() == "snapshot", "the module was killed inside the copy"
    assert proc.returncode != 0
    # the client carried on with its rollback: the volume was never touched
    assert releases.files() == AS_IT_WAS
    assert releases.snapshots_left() == []
    journal = json.loads((releases.deployer.journal / "journal.json").read_text())
    assert journal["deployment"]["phase"] == "failed"


@client_5
def test_sigkill_inside_the_restore(releases: Releases, stack: Stack) -> None:
    proc = releases.deployer.install(releases.artifact("migrating"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    marker = arm_cp(releases.deployer, "restore")
    proc = releases.deployer.device.rollback()
    assert marker.read_text() == "restore", "the module was killed inside the restore"
    # ArtifactFailure (the client's next step) ran the rollback again from the journal
    assert releases.files() == AS_IT_WAS, proc.stderr[-3000:]
    assert releases.snapshots_left() == []

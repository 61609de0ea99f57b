"""The Debian package on this machine, where Debian's mender-client owns the original module.

Builds the .deb with scripts/package, runs lintian on it, installs it with dpkg, deploys
with both Mender clients through the packaged module, reinstalls mender-client, then
removes and purges the package: the original module must come back byte for byte. The
host's module directory is held (the 3.4 client's lock) the whole time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator, List

import pytest

import mender_docker
from mender_docker.cli.module_tools import is_ours
from mender_docker.module.deployment import Phase
from mender_docker.module.journal import Deployment, Journal, JournalStore
from tests.integration.conftest import Deployer
from tests.realstack import (
    MODULE_DIR,
    EngineCli,
    ImageFactory,
    MenderDevice,
    Registry,
    _hold_host_module_dir,
    _release_host_module_dir,
    require,
    run,
    unique,
)

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "mender-docker-module"
MODULE = MODULE_DIR / "docker"
DISTRIB = MODULE_DIR / "docker.distrib"
CONFFILE = Path("/etc/mender/mender-docker.conf")
DATA_DIR = Path("/var/lib/mender-docker")  # the default data directory where /data is absent
DEPENDS = (
    "python3 (>= 3.9), docker.io | docker-ce | podman, "
    "mender-client | mender-update | mender-client4"
)
DPKG_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
LOCK_WAIT = 600.0  # seconds dpkg may wait for apt or dpkg of another process on this machine


def dpkg(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """dpkg, waiting its turn while another process holds the dpkg lock."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        proc = run(["dpkg", *args], check=False, env=DPKG_ENV, input=b"")
        locked = "lock" in proc.stderr and "another process" in proc.stderr
        if proc.returncode == 0 or not locked or time.monotonic() > deadline:
            break
        time.sleep(2)
    if check and proc.returncode != 0:
        raise AssertionError(f"dpkg {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def status(package: str) -> str:
    """dpkg's status of the package ("install ok installed", ...), "" if dpkg knows none."""
    proc = run(["dpkg-query", "-W", "-f", "${Status}", package], check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def diversions() -> List[str]:
    return run(["dpkg-divert", "--list", str(MODULE)]).stdout.splitlines()


def mender_client_deb(work: Path) -> Path:
    """The installed mender-client's .deb: from apt's cache, else downloaded by apt."""
    version = run(["dpkg-query", "-W", "-f", "${Version}", "mender-client"]).stdout.strip()
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    name = f"mender-client_{version.replace(':', '%3a')}_{arch}.deb"
    cached = Path("/var/cache/apt/archives") / name
    if cached.exists():
        return cached
    subprocess.run(
        ["apt-get", "download", f"mender-client={version}"], cwd=work, check=True, timeout=600
    )
    return work / name


class Host:
    """This machine's package state: what the test installed, and how to put it back."""

    def __init__(self) -> None:
        self.installed = False
        self.made_data_dir = False
        if status(PACKAGE):
            raise AssertionError(f"{PACKAGE} is already known to dpkg here: purge it first")
        if CONFFILE.exists() or DATA_DIR.exists():
            raise AssertionError(f"{CONFFILE} or {DATA_DIR} exists: this test would touch them")
        self.original = MODULE.read_bytes()

    def install(self, deb: Path) -> None:
        self.installed = True
        dpkg("-i", str(deb))

    def make_data_dir(self, phase: Phase) -> None:
        """A journal at the default place, written by the module's own JournalStore."""
        self.made_data_dir = True
        deployment = Deployment(id="d-1", artifact="release-1", phase=phase)
        JournalStore(str(DATA_DIR)).save(Journal(deployment=deployment))

    def restore(self) -> None:
        if self.installed and status(PACKAGE):
            dpkg("-P", PACKAGE, check=False)
        if self.installed and diversions():  # a broken postrm must not leave it behind
            run(["dpkg-divert", "--package", PACKAGE, "--rename", "--remove", str(MODULE)],
                check=False)
        if self.made_data_dir:
            shutil.rmtree(DATA_DIR, ignore_errors=True)


@pytest.fixture
def host() -> Iterator[Host]:
    """Holds the host's module directory while the package may be installed."""
    require("dpkg", "dpkg-deb", "dpkg-divert", "lintian", "mender", "mender-update")
    _hold_host_module_dir()
    try:
        state = Host()
        try:
            yield state
        finally:
            state.restore()
            assert MODULE.read_bytes() == state.original, "the original module is not back"
            assert not DISTRIB.exists()
    finally:
        _release_host_module_dir()


def deploy_with(
    device: MenderDevice, factory: ImageFactory, work: Path, image: str, name: str
) -> Deployer:
    """Install and commit an artifact through the module the device finds."""
    work.mkdir()
    deployer = Deployer(device, factory, work)
    artifact = deployer.artifact(name, image, extra=["--name", unique("pkg-app")])
    deployer.deploy(artifact)
    assert device.show_artifact() == name
    # only our module labels what it runs, and keeps a journal
    assert [c["image"] for c in deployer.ours()] == [image]
    assert json.loads((deployer.journal / "journal.json").read_text())["deployment"]["phase"] in (
        "committed",
        "cleaned",
    )
    return deployer


def test_the_package_diverts_the_module_and_puts_the_original_back(
    host: Host, image_factory: ImageFactory, registry: Registry, tmp_path: Path
) -> None:
    built = run([str(ROOT / "scripts" / "package"), "-o", str(tmp_path / "dist")])
    deb = Path(built.stdout.strip().splitlines()[-1])
    assert deb.name == f"{PACKAGE}_{mender_docker.__version__}_all.deb"

    lint = run(["lintian", "--pedantic", "-I", "--fail-on", "error,warning,info,pedantic",
                str(deb)], check=False)
    assert (lint.returncode, lint.stdout) == (0, ""), lint.stdout + lint.stderr
    fields = run(["dpkg-deb", "-f", str(deb), "Package", "Architecture", "Depends"]).stdout
    assert fields.splitlines() == [
        f"Package: {PACKAGE}", "Architecture: all", f"Depends: {DEPENDS}"
    ]
    assert "@" in run(["dpkg-deb", "-f", str(deb), "Maintainer"]).stdout

    host.install(deb)
    assert diversions() == [
        f"diversion of {MODULE} to {DISTRIB} by {PACKAGE}"
    ], "the client's module is not diverted"
    assert DISTRIB.read_bytes() == host.original
    assert is_ours(str(MODULE)) and os.access(MODULE, os.X_OK)
    assert CONFFILE.exists()
    assert run(["dpkg", "--verify", PACKAGE]).stdout == ""  # md5sums match what is on disk
    packaged = MODULE.read_bytes()

    engine = EngineCli("docker")
    image = image_factory.build(unique("pkg/app"))
    old = MenderDevice(tmp_path / "d34", client="3.4")  # reads the host's module directory
    try:
        deployer = deploy_with(old, image_factory, tmp_path / "w34", image, "pkg-34")
        deployer.remove_containers()
    finally:
        old.restore()
    new = MenderDevice(tmp_path / "d51", client="5.1")
    # its module directory is the host's (it refuses a symlink leading out of its own)
    new.env["MENDER_DATA_DIR"] = str(MODULE_DIR.parent.parent)
    try:
        deployer = deploy_with(new, image_factory, tmp_path / "w51", image, "pkg-51")
        deployer.remove_containers()
    finally:
        new.restore()
        engine.remove_images_from(registry.host)

    # a mender-client upgrade (here: the same version again) leaves ours in place
    dpkg("-i", str(mender_client_deb(tmp_path)))
    assert MODULE.read_bytes() == packaged
    assert DISTRIB.read_bytes() == host.original
    # and so does an upgrade of ours (here: the same version again)
    dpkg("-i", str(deb))
    assert MODULE.read_bytes() == packaged and DISTRIB.read_bytes() == host.original
    assert diversions() == [f"diversion of {MODULE} to {DISTRIB} by {PACKAGE}"]

    host.make_data_dir(Phase.INSTALLED)  # a deployment under way
    dpkg("-r", PACKAGE)
    assert MODULE.read_bytes() == host.original
    assert not DISTRIB.exists() and diversions() == []
    assert CONFFILE.exists() and (DATA_DIR / "journal.json").exists()
    assert status(PACKAGE) == "deinstall ok config-files"

    purged = dpkg("-P", PACKAGE)
    assert not CONFFILE.exists() and status(PACKAGE) == ""
    assert (DATA_DIR / "journal.json").exists(), "purge removed a journal under way"
    assert f"keeping {DATA_DIR}" in purged.stderr

    # again, with the deployment at its end: purge removes the data directory
    host.install(deb)
    host.make_data_dir(Phase.CLEANED)
    dpkg("-P", PACKAGE)
    assert not DATA_DIR.exists()
    assert MODULE.read_bytes() == host.original and status(PACKAGE) == ""

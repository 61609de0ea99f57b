"""What brings our containers back after a reboot on a podman device.

Podman has no daemon to restart containers. At boot podman-restart.service (from
the podman package; `systemctl enable podman-restart.service`) runs `podman start
--all --filter restart-policy=always`, which is why the module gives its
containers the policy `always` on podman. These tests deploy through the real
5.1 client with `engine = podman`, cut the power (tests/podman/reboot.py), run
the unit's own ExecStart, and look at what runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from tests.integration.conftest import Deployer
from tests.podman.reboot import boot, power_cut
from tests.realstack import EngineCli, ImageFactory, MenderDevice, PodmanStore, unique

pytestmark = pytest.mark.real

# No bridge network: see tests/podman/reboot.py. The service is reached from inside.
RUN_ARGS = ["--run-args", "--network none"]


@pytest.fixture
def device(
    private_podman: PodmanStore, packed_module: Path, image_factory: ImageFactory, tmp_path: Path
) -> Iterator[Deployer]:
    """Today's client (5.1) running our module on the test's own podman."""
    client = MenderDevice(tmp_path / "device", client="5.1")
    client.use_module(packed_module)
    deployer = Deployer(client, image_factory, tmp_path, EngineCli("podman", private_podman))
    try:
        yield deployer
    finally:
        deployer.remove_containers()
        client.restore()


@pytest.fixture
def web(image_factory: ImageFactory) -> Dict[str, str]:
    repo = unique("reboot/web")
    refs = {v: image_factory.http_service(repo, v) for v in ("v1", "v2")}
    image_factory.cleanup()
    return refs


def state(device: Deployer, container: str) -> Dict[str, object]:
    found: Dict[str, object] = device.inspect(container)["State"]
    return found


def exists(device: Deployer, container: str) -> bool:
    return device.engine.run("container", "exists", container, check=False).returncode == 0


def served(device: Deployer, container: str, timeout: float = 30) -> Optional[str]:
    """What the container's httpd serves on its own loopback, retried up to `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        proc = device.engine.run(
            "exec", container, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/", check=False
        )
        if proc.returncode == 0:
            return proc.stdout.strip()
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)


def running_ids(device: Deployer) -> List[str]:
    return sorted(c["id"] for c in device.ours() if c["state"] == "running")


def test_committed_release_runs_again_after_a_reboot_and_the_replaced_one_does_not(
    device: Deployer, private_podman: PodmanStore, web: Dict[str, str]
) -> None:
    device.deploy(device.artifact("web-v1", web["v1"], extra=RUN_ARGS))
    [v1] = device.ours()
    device.deploy(device.artifact("web-v2", web["v2"], extra=RUN_ARGS))
    [v2] = device.ours(all_states=True)
    assert v2["image"] == web["v2"] and v2["state"] == "running"
    before = device.inspect(v2["id"])
    assert before["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert not exists(device, v1["id"])  # the commit's cleanup removed the replaced one

    assert power_cut(private_podman) == [v2["id"]]
    boot(private_podman)

    after = state(device, v2["id"])
    assert after["Running"] is True
    assert after["StartedAt"] != before["State"]["StartedAt"]  # started again, same container
    assert after["Pid"] != before["State"]["Pid"]
    assert running_ids(device) == [v2["id"]]
    assert not exists(device, v1["id"])
    body = served(device, v2["id"])
    assert body is not None and body.endswith(":v2")
    assert device.device.show_artifact() == "web-v2"


def test_reboot_during_a_pending_deployment_then_rollback_leaves_the_old_release(
    device: Deployer, private_podman: PodmanStore, web: Dict[str, str]
) -> None:
    """While a deployment waits for its commit, the replaced container is stopped and
    kept. Podman 4 cannot take its `always` away (no `update --restart`), so a reboot
    brings it back next to the new one; the client's rollback then leaves exactly
    the old release, in the very same container."""
    device.deploy(device.artifact("web-v1", web["v1"], extra=RUN_ARGS))
    [v1] = device.ours()
    proc = device.install(device.artifact("web-v2", web["v2"], extra=RUN_ARGS))
    assert proc.returncode == 0, proc.stderr[-3000:]
    [v2] = [c for c in device.ours() if c["id"] != v1["id"]]
    assert state(device, v1["id"])["Running"] is False
    v1_policy = device.inspect(v1["id"])["HostConfig"]["RestartPolicy"]["Name"]

    power_cut(private_podman)
    boot(private_podman)

    back = sorted([v2["id"], v1["id"]] if v1_policy == "always" else [v2["id"]])
    assert running_ids(device) == back

    proc = device.device.rollback()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [(c["id"], c["name"], c["state"]) for c in device.ours(all_states=True)] == [
        (v1["id"], v1["name"], "running")
    ]
    body = served(device, v1["id"])
    assert body is not None and body.endswith(":v1")
    assert device.device.show_artifact() == "web-v1"

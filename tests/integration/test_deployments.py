"""Deployments through the real Mender client, our module and a real engine.

Each test runs on the 3.4 and 5.1 clients with dockerd and on the 5.1 client with
podman (see conftest.py), except the two that are about docker itself:
restarting dockerd, and artifacts from the original generator (a workstation
tool that needs `docker pull`; what it writes is the same meta-data for any
engine, covered on podman by our generator's artifacts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

from tests.integration.conftest import Deployer, http_get
from tests.podman.fixtures import stack_params
from tests.realstack import DOCKER_STACKS, ImageFactory, free_port, run, unique

pytestmark = pytest.mark.real
docker_only = pytest.mark.parametrize("stack", stack_params(DOCKER_STACKS), indirect=True)


def start_bystander(deployer: Deployer, image_factory: ImageFactory, prefix: str) -> str:
    """A container of someone else's, started on the device's engine; its name."""
    image = image_factory.build(unique(f"it/{prefix}"))
    name = unique(prefix)
    deployer.engine.run("run", "-d", "--name", name, image)
    return name


def test_install_commit_v1_then_v2_then_explicit_rollback(
    deployer: Deployer, web_images: Dict[str, str]
) -> None:
    port = free_port()
    args = ["--run-args", f"-p {port}:8080"]
    a1 = deployer.artifact("web-v1", web_images["v1"], extra=args)
    a2 = deployer.artifact("web-v2", web_images["v2"], extra=args)

    deployer.deploy(a1)
    assert deployer.device.show_artifact() == "web-v1"
    v1_body = http_get(port)
    assert v1_body is not None and v1_body.endswith(":v1")
    [v1_container] = deployer.ours()
    assert v1_container["image"] == web_images["v1"]

    proc = deployer.install(a2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    body = http_get(port)
    assert body is not None and body.endswith(":v2")
    # The explicit rollback restores the very same v1 container.
    proc = deployer.device.rollback()
    assert proc.returncode == 0, proc.stderr[-3000:]
    body = http_get(port)
    assert body is not None and body.endswith(":v1")
    running = deployer.ours()
    assert [c["id"] for c in running] == [v1_container["id"]]
    assert deployer.device.show_artifact() == "web-v1"
    # Nothing of v2 is left behind.
    assert all(c["image"] != web_images["v2"] for c in deployer.ours(all_states=True))

    deployer.deploy(a2)
    assert deployer.device.show_artifact() == "web-v2"
    body = http_get(port)
    assert body is not None and body.endswith(":v2")
    # Commit + cleanup removed v1's container and its image.
    assert [c["image"] for c in deployer.ours(all_states=True)] == [web_images["v2"]]
    assert deployer.engine.image_id(web_images["v1"]) == ""


def test_container_exiting_at_start_rolls_back_by_itself(
    deployer: Deployer, web_images: Dict[str, str], image_factory: ImageFactory
) -> None:
    port = free_port()
    args = ["--run-args", f"-p {port}:8080"]
    deployer.deploy(deployer.artifact("good", web_images["v1"], extra=args))
    [before] = deployer.ours()
    broken = image_factory.build(unique("it/crash"), cmd=["sh", "-c", "echo bye; exit 3"])
    proc = deployer.install(deployer.artifact("broken", broken, extra=args))
    assert proc.returncode != 0
    assert "broken" not in deployer.device.show_artifact()
    assert deployer.device.show_artifact() == "good"
    assert [c["id"] for c in deployer.ours()] == [before["id"]]
    assert all(c["image"] != broken for c in deployer.ours(all_states=True))
    body = http_get(port)
    assert body is not None and body.endswith(":v1")


def test_failing_health_check_rolls_back_by_itself(
    deployer: Deployer, web_images: Dict[str, str], image_factory: ImageFactory
) -> None:
    deployer.deploy(deployer.artifact("good", web_images["v1"]))
    [before] = deployer.ours()
    sick = image_factory.build(
        unique("it/sick"), cmd=["sleep", "3600"], healthcheck=["false"]
    )
    proc = deployer.install(deployer.artifact("sick", sick))
    assert proc.returncode != 0
    # the engine ran the check and found it failing (podman: the gate ran it)
    assert "health unhealthy" in proc.stderr, proc.stderr[-3000:]
    assert deployer.device.show_artifact() == "good"
    assert [c["id"] for c in deployer.ours()] == [before["id"]]
    assert all(c["image"] != sick for c in deployer.ours(all_states=True))


def test_passing_health_check_gets_through_the_gate(
    deployer: Deployer, image_factory: ImageFactory
) -> None:
    """A HEALTHCHECK that passes must turn the container healthy within the gate: on
    podman 4 nothing runs it without systemd timers unless the gate does."""
    fine = image_factory.build(unique("it/fine"), cmd=["sleep", "3600"], healthcheck=["true"])
    image_factory.cleanup()
    proc = deployer.install(deployer.artifact("fine", fine))
    assert proc.returncode == 0, proc.stderr[-3000:]
    [container] = deployer.ours()
    assert deployer.inspect(container["id"])["State"]["Health"]["Status"] == "healthy"
    proc = deployer.device.commit()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert deployer.device.show_artifact() == "fine"


def test_unchanged_containers_keep_running_untouched(
    deployer: Deployer, web_images: Dict[str, str], image_factory: ImageFactory
) -> None:
    steady = image_factory.build(unique("it/steady"))
    image_factory.cleanup()
    deployer.deploy(deployer.artifact("pair-1", steady, web_images["v1"]))
    started = {c["name"]: deployer.inspect(c["id"]) for c in deployer.ours()}
    deployer.deploy(deployer.artifact("pair-2", steady, web_images["v2"]))
    after = {c["name"]: deployer.inspect(c["id"]) for c in deployer.ours()}
    assert set(after) == set(started)
    steady_name = next(n for n, c in after.items() if c["Config"]["Image"] == steady)
    assert after[steady_name]["Id"] == started[steady_name]["Id"]
    assert after[steady_name]["State"]["StartedAt"] == started[steady_name]["State"]["StartedAt"]
    web_name = next(n for n in after if n != steady_name)
    assert after[web_name]["Id"] != started[web_name]["Id"]


def test_unmanaged_container_survives_in_managed_scope(
    deployer: Deployer, web_images: Dict[str, str], image_factory: ImageFactory
) -> None:
    name = start_bystander(deployer, image_factory, "bystander")
    try:
        started_at = deployer.inspect(name)["State"]["StartedAt"]
        deployer.deploy(deployer.artifact("web-v1", web_images["v1"]))
        deployer.deploy(deployer.artifact("web-v2", web_images["v2"]))
        state = deployer.inspect(name)["State"]
        assert state["Running"] is True
        assert state["StartedAt"] == started_at
    finally:
        deployer.engine.remove_containers(name)


def test_scope_all_stops_every_container_and_rollback_restarts_it(
    deployer: Deployer, web_images: Dict[str, str], image_factory: ImageFactory
) -> None:
    """The original's documented behaviour: every running container is replaced."""
    name = start_bystander(deployer, image_factory, "other")
    deployer.write_conf(scope="all")
    try:
        proc = deployer.install(deployer.artifact("web-v1", web_images["v1"]))
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert deployer.inspect(name)["State"]["Running"] is False
        proc = deployer.device.rollback()
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert deployer.inspect(name)["State"]["Running"] is True
        assert deployer.ours() == []
    finally:
        deployer.engine.remove_containers(name)


def test_ten_deployments_leave_no_exited_containers_or_unused_images(
    deployer: Deployer, image_factory: ImageFactory, registry: object
) -> None:
    repo = unique("it/many")
    quick_exit = ["sh", "-c", 'trap "exit 0" TERM; sleep 3600 & wait']  # stops take no 5 s
    refs = [image_factory.build(repo, f"v{i}", cmd=quick_exit) for i in range(10)]
    image_factory.cleanup()
    for i, ref in enumerate(refs):
        deployer.deploy(deployer.artifact(f"many-{i}", ref))
        containers = deployer.ours(all_states=True)
        assert [(c["image"], c["state"]) for c in containers] == [(ref, "running")]
        present = deployer.engine.run(
            "images", "--digests", "--format", "{{.Repository}}@{{.Digest}}"
        ).stdout.split()
        ours_present = [p for p in present if p.split("@")[0].endswith(repo)]
        assert ours_present == [ref], f"after deployment {i}: {ours_present}"


@docker_only  # podman has no daemon: tests/podman/test_reboot.py covers its reboot
def test_deployed_containers_run_again_after_dockerd_restart(
    deployer: Deployer, web_images: Dict[str, str]
) -> None:
    from tests.integration.dockerd import restart_dockerd

    port = free_port()
    args = ["--run-args", f"-p {port}:8080"]
    deployer.deploy(deployer.artifact("web-v1", web_images["v1"], extra=args))
    [before] = deployer.ours()
    restart_dockerd()
    [after] = deployer.ours()
    assert after["id"] == before["id"]
    body = http_get(port, timeout=20)
    assert body is not None and body.endswith(":v1")


@docker_only
def test_artifact_from_the_original_generator_installs(
    deployer: Deployer, web_images: Dict[str, str], tmp_path: Path
) -> None:
    original = Path("/usr/share/doc/mender-client/examples/docker-artifact-gen")
    out = tmp_path / "original.mender"
    port = free_port()
    tag = web_images["v1"].split("@")[0] + ":v1"
    run(["bash", str(original), "-n", "from-original", "-t", "test-device",
         "--run-args", f"-p {port}:8080", "-o", str(out), tag], timeout=300)
    run(["docker", "image", "rm", "-f", tag], check=False)
    deployer.deploy(out)
    assert deployer.device.show_artifact() == "from-original"
    body = http_get(port)
    assert body is not None and body.endswith(":v1")

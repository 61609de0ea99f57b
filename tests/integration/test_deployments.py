"""Deployments through the real Mender client, our module and a real dockerd."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

from tests.integration.conftest import Deployer, http_get, inspect
from tests.realstack import ImageFactory, free_port, run, unique


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
    assert run(["docker", "image", "inspect", web_images["v1"]], check=False).returncode != 0


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
    assert deployer.device.show_artifact() == "good"
    assert [c["id"] for c in deployer.ours()] == [before["id"]]
    assert all(c["image"] != sick for c in deployer.ours(all_states=True))


def test_unchanged_containers_keep_running_untouched(
    deployer: Deployer, web_images: Dict[str, str], image_factory: ImageFactory
) -> None:
    steady = image_factory.build(unique("it/steady"))
    image_factory.cleanup()
    deployer.deploy(deployer.artifact("pair-1", steady, web_images["v1"]))
    started = {c["name"]: inspect(c["id"]) for c in deployer.ours()}
    deployer.deploy(deployer.artifact("pair-2", steady, web_images["v2"]))
    after = {c["name"]: inspect(c["id"]) for c in deployer.ours()}
    assert set(after) == set(started)
    steady_name = next(n for n, c in after.items() if c["Config"]["Image"] == steady)  # type: ignore[index]
    assert after[steady_name]["Id"] == started[steady_name]["Id"]
    assert after[steady_name]["State"]["StartedAt"] == started[steady_name]["State"]["StartedAt"]  # type: ignore[index]
    web_name = next(n for n in after if n != steady_name)
    assert after[web_name]["Id"] != started[web_name]["Id"]


def test_unmanaged_container_survives_in_managed_scope(
    deployer: Deployer, web_images: Dict[str, str], image_factory: ImageFactory
) -> None:
    bystander_image = image_factory.build(unique("it/bystander"), push=False)
    name = unique("bystander")
    run(["docker", "run", "-d", "--name", name, bystander_image])
    try:
        started_at = inspect(name)["State"]["StartedAt"]  # type: ignore[index]
        deployer.deploy(deployer.artifact("web-v1", web_images["v1"]))
        deployer.deploy(deployer.artifact("web-v2", web_images["v2"]))
        state = inspect(name)["State"]
        assert state["Running"] is True  # type: ignore[index]
        assert state["StartedAt"] == started_at  # type: ignore[index]
    finally:
        run(["docker", "rm", "-f", name], check=False)


def test_scope_all_stops_every_container_and_rollback_restarts_it(
    deployer: Deployer, web_images: Dict[str, str], image_factory: ImageFactory
) -> None:
    """The original's documented behaviour: every running container is replaced."""
    bystander_image = image_factory.build(unique("it/other"), push=False)
    name = unique("other")
    run(["docker", "run", "-d", "--name", name, bystander_image])
    deployer.write_conf(scope="all")
    try:
        proc = deployer.install(deployer.artifact("web-v1", web_images["v1"]))
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert inspect(name)["State"]["Running"] is False  # type: ignore[index]
        proc = deployer.device.rollback()
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert inspect(name)["State"]["Running"] is True  # type: ignore[index]
        assert deployer.ours() == []
    finally:
        run(["docker", "rm", "-f", name], check=False)


def test_ten_deployments_leave_no_exited_containers_or_unused_images(
    deployer: Deployer, image_factory: ImageFactory, registry: object
) -> None:
    repo = unique("it/many")
    refs = [image_factory.build(repo, f"v{i}") for i in range(10)]
    image_factory.cleanup()
    for i, ref in enumerate(refs):
        deployer.deploy(deployer.artifact(f"many-{i}", ref))
        containers = deployer.ours(all_states=True)
        assert [(c["image"], c["state"]) for c in containers] == [(ref, "running")]
        present = run(
            ["docker", "images", "--digests", "--format", "{{.Repository}}@{{.Digest}}"]
        ).stdout.split()
        ours_present = [p for p in present if p.split("@")[0].endswith(repo)]
        assert ours_present == [ref], f"after deployment {i}: {ours_present}"


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

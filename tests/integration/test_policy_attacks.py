"""Issue 19's findings as signed artifacts would bring them, through the real Mender client.

The device's owner set `deny_run_args = dangerous` (or `allow_run_args = safe, ...`);
each artifact tries one way to root on the device. Every one must be refused in
Download: the client's install fails, the release that ran before runs on untouched
(same container IDs), nothing of the artifact is left (no container, running or
not), and a foreign container is never renamed, stopped or removed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from tests.integration.conftest import Deployer
from tests.podman.fixtures import stack_params
from tests.realstack import ALL_STACKS, DEVICE_TYPE, EngineCli, ImageFactory, run, unique

pytestmark = [
    pytest.mark.real,
    pytest.mark.parametrize("stack", stack_params(ALL_STACKS), indirect=True),
]


@pytest.fixture
def image(image_factory: ImageFactory) -> Iterator[str]:
    ref = image_factory.http_service(unique("it/attack"), "v1")
    image_factory.cleanup()  # the device pulls it
    yield ref


@pytest.fixture
def srv(tmp_path: Path) -> Path:
    """A host directory the owner lets applications bind (`bind=<srv>` allow rule)."""
    path = tmp_path / "srv"
    (path / "x").mkdir(parents=True)
    return path


def state(deployer: Deployer) -> List[Dict[str, str]]:
    return sorted(deployer.ours(all_states=True), key=lambda c: c["id"])


def refused(deployer: Deployer, artifact: Path, *fragments: str) -> None:
    before = state(deployer)
    proc = deployer.install(artifact)
    assert proc.returncode != 0, f"{artifact.name} was installed"
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr[-3000:]
    assert state(deployer) == before, "a refused artifact changed the device"
    assert deployer.device.commit().returncode != 0  # nothing pending


def test_every_finding_is_refused_in_download(
    deployer: Deployer, image: str, srv: Path, tmp_path: Path, engine_cli: EngineCli
) -> None:
    deployer.write_conf(deny_run_args="dangerous")
    deployer.deploy(deployer.artifact("base", image))
    base = state(deployer)
    assert len(base) == 1 and base[0]["state"] == "running"

    # 1. case folding: Go's ToLower makes these a bind of / and another container's netns
    for number, run_args in enumerate(
        [
            "--mount type=b\u0130nd,source=/,target=/host",
            "--network name=conta\u0130ner:victim",
            "--mount type=bind,source=/srv,target=/s,b\u0130nd-propagation=rshared",
        ]
    ):
        artifact = deployer.artifact(f"fold-{number}", image, extra=["--run-args", run_args])
        refused(deployer, artifact, "non-ascii")

    # 3. gaps of `dangerous`: cron, a protected path reached through a link, --link
    cron_link = tmp_path / "cron"
    cron_link.symlink_to("/var/spool/cron")
    for number, (run_args, rule) in enumerate(
        [
            ("-v /var/spool/cron:/c", "bind-rw=/var/spool/cron"),
            (f"-v {cron_link}/crontabs:/c", "bind-rw=/var/spool/cron"),
            (f"--link {base[0]['name']}:victim", "--link"),
            ("--oom-score-adj=-1000", "--oom-score-adj"),
        ]
    ):
        artifact = deployer.artifact(f"gap-{number}", image, extra=["--run-args", run_args])
        refused(deployer, artifact, rule)
    assert state(deployer) == base


def test_a_bind_source_inside_a_directory_a_container_writes_is_refused(
    deployer: Deployer, image: str, srv: Path
) -> None:
    """Finding 2: one service binds <srv>/x writable and plants <srv>/x/d -> /; a second,
    started after it, binds <srv>/x/d and would get the host's root. Refused before
    anything starts, as one release and across releases."""
    deployer.write_conf(allow_run_args=f"safe, bind={srv}")
    x = srv / "x"
    both = deployer.artifact(
        "both",
        image,
        image,
        extra=["--container-args", f"-v {x}:/x --name planter",
               "--container-args", f"-v {x}/d:/host --name victim"],
    )  # fmt: skip
    refused(deployer, both, "bind-swap", f"inside {x}")

    # an earlier release writes <srv>/x; the next one binds inside it
    deployer.deploy(
        deployer.artifact("writer", image, extra=["--run-args", f"-v {x}:/x --name planter"])
    )
    os.symlink("/", x / "d")  # what the running container could do
    later = deployer.artifact(
        "later", image, image,
        extra=["--container-args", f"-v {x}:/x --name planter",
               "--container-args", f"-v {x}/d:/host --name victim"],
    )  # fmt: skip
    refused(deployer, later, "bind-swap")
    # the very same directory is fine
    deployer.deploy(
        deployer.artifact("same", image, extra=["--run-args", f"-v {x}:/x2 --name planter"])
    )


def test_the_two_service_attack_as_a_compose_artifact_is_refused(
    deployer: Deployer, image: str, srv: Path, tmp_path: Path
) -> None:
    deployer.write_conf(allow_run_args=f"safe, bind={srv}")
    project = unique("attack").replace(".", "-").lower()
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        f"""
name: {project}
services:
  planter:
    image: {image}
    volumes: ["{srv}/x:/x"]
  victim:
    image: {image}
    depends_on: {{planter: {{condition: service_started}}}}
    volumes: ["{srv}/x/d:/host"]
"""
    )
    out = tmp_path / "attack.mender"
    run(["docker-artifact-gen", "-n", "attack", "-t", DEVICE_TYPE, "-o", str(out),
         "--compose", str(compose)])  # fmt: skip
    refused(deployer, out, "bind-swap", f"{project}-victim-1", f"{project}-planter-1' can write")


def test_a_foreign_container_holding_a_name_is_refused_and_left_alone(
    deployer: Deployer, image: str, engine_cli: EngineCli
) -> None:
    """Both scopes: never renamed, stopped or removed for our release."""
    name = unique("taken").replace(".", "-")
    foreign = engine_cli.run("run", "-d", "--name", name, image).stdout.strip()
    try:
        for scope in ("managed", "all"):
            deployer.write_conf(scope=scope)
            artifact = deployer.artifact(
                f"clash-{scope}", image, extra=["--run-args", f"--name {name}"]
            )
            refused(deployer, artifact, f"{name!r} is taken", "did not deploy")
            info = engine_cli.inspect(foreign)
            assert info["Name"].lstrip("/") == name and info["State"]["Running"]
    finally:
        engine_cli.remove_containers(foreign)

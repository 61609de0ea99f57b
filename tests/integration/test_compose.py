"""A Compose application through the real Mender client, our module and dockerd.

Two services: `api` (keeps a log in a named volume, healthy when it serves) and
`web` (published on a host port, healthy only when it reaches `api` by its
service name over the project's network, started once `api` is healthy).
Updating only `api` leaves `web` untouched; changing `web` recreates it with the
volume's data intact; a broken release rolls back to the previous one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from tests.integration.conftest import Deployer, http_get
from tests.podman.fixtures import stack_params
from tests.realstack import (
    ALL_STACKS,
    DEVICE_TYPE,
    EngineCli,
    ImageFactory,
    Registry,
    free_port,
    run,
    unique,
)

pytestmark = [
    pytest.mark.real,
    pytest.mark.parametrize("stack", stack_params(ALL_STACKS), indirect=True),
]

# `$$`: Compose would interpolate `$VERSION` itself, on the workstation
API_START = (
    'echo "started $$VERSION" >> /data/log; trap "exit 0" TERM; httpd -f -p 8080 -h /www & wait'
)


@pytest.fixture
def images(image_factory: ImageFactory) -> Iterator[Dict[str, str]]:
    repo = unique("it/compose")
    refs = {
        "api-v1": image_factory.http_service(f"{repo}-api", "v1"),
        "api-v2": image_factory.http_service(f"{repo}-api", "v2"),
        "web-v1": image_factory.http_service(f"{repo}-web", "v1"),
    }
    image_factory.cleanup()  # the device must pull them
    yield refs


@pytest.fixture
def project(engine_cli: EngineCli) -> Iterator[str]:
    name = unique("shop").replace(".", "-").lower()
    yield name
    label = f"label=com.docker.compose.project={name}"
    # before the deployer fixture removes them: a network in use cannot go
    engine_cli.remove_containers(*engine_cli.run("ps", "-aq", "--filter", label).stdout.split())
    for kind in ("network", "volume"):
        found = engine_cli.run(kind, "ls", "-q", "--filter", label).stdout.split()
        if found:
            engine_cli.run(kind, "rm", *found, check=False)


def compose_file(
    folder: Path,
    name: str,
    api: str,
    web: str,
    port: int,
    api_version: str,
    web_env: str = "1",
    api_health: str = "wget -q -O- http://localhost:8080/",
) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"""
services:
  api:
    image: {api}
    command: ["sh", "-c", {API_START!r}]
    environment:
      VERSION: "{api_version}"
    volumes:
      - data:/data
    healthcheck:
      test: {api_health}
      interval: 1s
      retries: 3
  web:
    image: {web}
    environment:
      WEB_SETTING: "{web_env}"
    ports:
      - "127.0.0.1:{port}:8080"
    depends_on:
      api:
        condition: service_healthy
    healthcheck:
      test: wget -q -O- http://api:8080/
      interval: 1s
      retries: 3
volumes:
  data:
"""
    )
    return path


def artifact(deployer: Deployer, project: str, path: Path, *extra: str) -> Path:
    out = deployer.work / f"{path.stem}.mender"
    run(
        ["docker-artifact-gen", "-n", path.stem, "-t", DEVICE_TYPE, "-o", str(out),
         "--compose", str(path), "--project-name", project, *extra]
    )  # fmt: skip
    return out


def ids(deployer: Deployer) -> Dict[str, str]:
    return {c["name"]: c["id"] for c in deployer.ours()}


def api_log(deployer: Deployer, project: str) -> List[str]:
    return deployer.engine.run("exec", f"{project}-api-1", "cat", "/data/log").stdout.splitlines()


def test_two_services_update_one_change_the_other_and_roll_back(
    deployer: Deployer, images: Dict[str, str], project: str
) -> None:
    port = free_port()
    work = deployer.work
    v1 = artifact(
        deployer,
        project,
        compose_file(work, "shop-v1", images["api-v1"], images["web-v1"], port, "v1"),
    )
    deployer.deploy(v1)
    first = ids(deployer)
    assert set(first) == {f"{project}-api-1", f"{project}-web-1"}
    assert http_get(port) is not None  # web serves, and its health check reached api by name
    web = deployer.inspect(f"{project}-web-1")
    assert web["Config"]["Labels"]["com.docker.compose.project"] == project
    assert web["Config"]["Labels"]["com.docker.compose.service"] == "web"
    assert f"{project}_default" in web["NetworkSettings"]["Networks"]
    if not deployer.engine.is_podman:  # the compose tool sees the project as its own
        listed = run(["docker", "compose", "-p", project, "ps", "--format", "{{.Service}}"])
        assert sorted(listed.stdout.split()) == ["api", "web"]
    assert api_log(deployer, project) == ["started v1"]

    # only api changes: web keeps running untouched
    v2 = artifact(
        deployer,
        project,
        compose_file(work, "shop-v2", images["api-v2"], images["web-v1"], port, "v2"),
    )
    deployer.deploy(v2)
    second = ids(deployer)
    assert second[f"{project}-web-1"] == first[f"{project}-web-1"]
    assert second[f"{project}-api-1"] != first[f"{project}-api-1"]
    assert api_log(deployer, project) == ["started v1", "started v2"]  # the volume stayed

    # web changes: recreated; api unchanged; the data is still there
    v3 = artifact(
        deployer, project,
        compose_file(work, "shop-v3", images["api-v2"], images["web-v1"], port, "v2", web_env="2"),
    )  # fmt: skip
    deployer.deploy(v3)
    third = ids(deployer)
    assert third[f"{project}-api-1"] == second[f"{project}-api-1"]
    assert third[f"{project}-web-1"] != second[f"{project}-web-1"]

    # a broken api: the install fails its gate and rolls back to v3, volume intact
    v4 = artifact(
        deployer, project,
        compose_file(work, "shop-v4", images["api-v1"], images["web-v1"], port, "broken",
                     web_env="3", api_health="exit 1"),
    )  # fmt: skip
    proc = deployer.install(v4)
    assert proc.returncode != 0
    assert ids(deployer) == third
    assert deployer.device.show_artifact() == "shop-v3"
    # the same volume: v4's api wrote to it before it failed, then v3's started again
    assert api_log(deployer, project) == [
        "started v1",
        "started v2",
        "started broken",
        "started v2",
    ]
    assert http_get(port) is not None


def test_an_offline_compose_release_installs_with_the_registry_stopped(
    deployer: Deployer, images: Dict[str, str], project: str, registry: Registry
) -> None:
    port = free_port()
    path = compose_file(deployer.work, "shop-off", images["api-v1"], images["web-v1"], port, "v1")
    offline = artifact(deployer, project, path, "--embed-images")
    registry.stop()
    try:
        deployer.deploy(offline)
    finally:
        registry.start()
    assert set(ids(deployer)) == {f"{project}-api-1", f"{project}-web-1"}
    assert http_get(port) is not None
    assert api_log(deployer, project) == ["started v1"]

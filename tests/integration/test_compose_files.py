"""Compose files as people write them, through the real clients and engines.

`container_name`, an exec-form health check whose argument has a space, a
network alias given on one network only and an internal network; then two Compose
files merged (the port from the first, the image from the second)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator

import pytest

from tests.integration.conftest import Deployer, http_get
from tests.podman.fixtures import stack_params
from tests.realstack import (
    ALL_STACKS,
    DEVICE_TYPE,
    DOCKER_STACKS,
    EngineCli,
    ImageFactory,
    free_port,
    run,
    unique,
)

pytestmark = pytest.mark.real

SERVE = 'trap "exit 0" TERM; httpd -f -p 8080 -h /www & wait'


@pytest.fixture
def images(image_factory: ImageFactory) -> Iterator[Dict[str, str]]:
    repo = unique("it/cfiles")
    page = {"www/has space": b"spaced\n"}
    refs = {
        "v1": image_factory.http_service(f"{repo}-db", "v1", files=page),
        "v2": image_factory.http_service(f"{repo}-db", "v2", files=page),
        "web": image_factory.http_service(f"{repo}-web", "v1"),
    }
    image_factory.cleanup()  # the device must pull them
    yield refs


@pytest.fixture
def project(engine_cli: EngineCli) -> Iterator[str]:
    name = unique("cf").replace(".", "-").lower()
    yield name
    label = f"label=com.docker.compose.project={name}"
    engine_cli.remove_containers(*engine_cli.run("ps", "-aq", "--filter", label).stdout.split())
    found = engine_cli.run("network", "ls", "-q", "--filter", label).stdout.split()
    if found:
        engine_cli.run("network", "rm", *found, check=False)


def generate(deployer: Deployer, project: str, name: str, *files: Path) -> Path:
    out = deployer.work / f"{name}.mender"
    compose = [arg for path in files for arg in ("--compose", str(path))]
    run(["docker-artifact-gen", "-n", name, "-t", DEVICE_TYPE, "-o", str(out), *compose,
         "--project-name", project])  # fmt: skip
    return out


def named_app(folder: Path, release: str, db: str, web: str, container: str, port: int) -> Path:
    path = folder / f"{release}.yaml"
    path.write_text(
        f"""
services:
  db:
    image: {db}
    container_name: {container}
    command: [sh, -c, {SERVE!r}]
    environment: {{RELEASE: {release}}}
    healthcheck:
      test: [CMD, cat, "/www/has space"]
      interval: 1s
      retries: 3
    networks:
      back: {{aliases: [database]}}
      front: {{}}
  web:
    image: {web}
    ports: ["127.0.0.1:{port}:8080"]
    depends_on: {{db: {{condition: service_healthy}}}}
    healthcheck:
      test: wget -q -O- http://{container}:8080/ && wget -q -O- http://database:8080/
      interval: 1s
      retries: 3
    networks: [back]
networks:
  back: {{}}
  front: {{internal: true}}
"""
    )
    return path


@pytest.mark.parametrize("stack", stack_params(ALL_STACKS), indirect=True)
def test_container_name_exec_health_check_and_aliases_per_network(
    deployer: Deployer, images: Dict[str, str], project: str
) -> None:
    container = unique("cf-db").replace(".", "-")
    port = free_port()
    work = deployer.work
    v1 = generate(deployer, project, "cf-v1",
                  named_app(work, "cf-v1", images["v1"], images["web"], container, port))
    deployer.deploy(v1)
    names = {c["name"]: c["id"] for c in deployer.ours()}
    assert set(names) == {container, f"{project}-web-1"}
    # web's health check reached db by its container name and by its alias on `back`
    assert http_get(port) is not None
    db = deployer.inspect(container)
    test = db["Config"]["Healthcheck"]["Test"]
    if deployer.engine.is_podman:
        assert test == ["CMD", "cat", "/www/has space"]
    else:
        assert test == ["CMD-SHELL", "cat '/www/has space'"]
    state = db["State"].get("Health") or db["State"].get("Healthcheck") or {}
    assert state.get("Status") == "healthy", state
    networks = db["NetworkSettings"]["Networks"]
    assert "database" in (networks[f"{project}_back"].get("Aliases") or [])
    assert "database" not in (networks[f"{project}_front"].get("Aliases") or [])
    front = deployer.engine.run("network", "inspect", f"{project}_front").stdout
    assert '"Internal": true' in front or '"internal": true' in front, front[:2000]

    # a new db: created beside the old one, which is renamed aside, then removed
    v2 = generate(deployer, project, "cf-v2",
                  named_app(work, "cf-v2", images["v2"], images["web"], container, port))
    deployer.deploy(v2)
    after = {c["name"]: c["id"] for c in deployer.ours(all_states=True)}
    assert set(after) == {container, f"{project}-web-1"}
    assert after[container] != names[container]
    assert http_get(port) is not None


@pytest.mark.parametrize("stack", stack_params(DOCKER_STACKS[-1:]), indirect=True)
def test_two_compose_files_merge(
    deployer: Deployer, images: Dict[str, str], project: str
) -> None:
    port = free_port()
    base = deployer.work / "compose.yaml"
    base.write_text(
        f"services:\n  web:\n    image: registry.invalid/dev\n"
        f"    ports: ['127.0.0.1:{port}:8080']\n    command: [sh, -c, {SERVE!r}]\n"
    )
    prod = deployer.work / "prod.yaml"
    prod.write_text(f"services:\n  web:\n    image: {images['web']}\n")
    deployer.deploy(generate(deployer, project, "cf-merged", base, prod))
    assert [c["name"] for c in deployer.ours()] == [f"{project}-web-1"]
    assert http_get(port) == images["web"].split("@")[0].split("/", 1)[1] + ":v1"

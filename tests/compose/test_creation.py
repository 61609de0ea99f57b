"""Our containers against Compose's own: `docker compose create` on a project, then
the same project created from the generator's run arguments (as the module creates
containers); the engine's view of both must agree on names, mounts, network aliases,
health checks, limits and restart policy."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from mender_docker.compose import load_project
from mender_docker.gen_compose import application
from mender_docker.module.engine import Engine
from tests.compose.composetool import require_compose
from tests.realstack import BUSYBOX, require_engine, run, unique

pytestmark = pytest.mark.real

PROJECT = """
name: {project}
services:
  db:
    image: {image}
    container_name: {container}
    command: [sleep, "600"]
    healthcheck:
      test: [CMD, cat, "/www/has space"]
      interval: 5s
      retries: 2
    networks:
      back: {{aliases: [database]}}
      front: {{}}
    volumes:
      - /tmp:/host-tmp:ro,rslave
      - data:/data:nocopy
      - type: tmpfs
        target: /scratch
        tmpfs: {{size: 1048576}}
    deploy:
      resources: {{limits: {{memory: 64M, cpus: "0.5", pids: 50}}}}
      restart_policy: {{condition: on-failure, max_attempts: 2}}
    secrets: [pw, {{source: pw, target: /etc/pw}}]
  web:
    image: {image}
    command: [sleep, "600"]
    environment: {{A: "1", UNSET_HERE: null}}
    ports: ["127.0.0.1::8080"]
    networks: [back]
    depends_on: {{db: {{condition: service_started}}}}
    healthcheck: {{test: "test -e /bin/sh || exit 1", interval: 3s}}
networks:
  back: {{}}
  front: {{internal: true}}
volumes:
  data: {{}}
secrets:
  pw: {{file: /etc/hostname}}
"""


@pytest.fixture
def image() -> Iterator[str]:
    require_engine()
    tag = f"{unique('cfdiff')}:1"
    folder = Path(tempfile.mkdtemp())
    try:
        (folder / "bin").mkdir()
        shutil.copy2(BUSYBOX, folder / "bin" / "busybox")
        for applet in ("sh", "sleep", "cat", "test"):
            (folder / "bin" / applet).symlink_to("busybox")
        (folder / "Dockerfile").write_text("FROM scratch\nCOPY bin/ /bin/\n")
        run(["docker", "build", "-q", "-t", tag, str(folder)], env={"DOCKER_BUILDKIT": "0",
            "PATH": "/usr/bin:/bin:/usr/local/bin"})  # fmt: skip
        yield tag
    finally:
        shutil.rmtree(folder)
        run(["docker", "image", "rm", "-f", tag], check=False)


def _inspect(names: List[str]) -> Dict[str, Any]:
    found = json.loads(run(["docker", "container", "inspect", *names]).stdout)
    return {str(c["Name"]).lstrip("/"): c for c in found}


def _view(container: Dict[str, Any]) -> Dict[str, Any]:
    """What must agree: the engine's own record of the container, without ids."""
    host = container["HostConfig"]
    config = container["Config"]
    short = container["Id"][:12]
    return {
        "healthcheck": config.get("Healthcheck"),
        "cmd": config.get("Cmd"),
        # Compose passes an unset `NAME` bare, which sets nothing; we leave it out
        "env": sorted(
            e for e in config.get("Env") or [] if "=" in e and not e.startswith("PATH=")
        ),
        "mounts": sorted(
            (m["Type"], m.get("Name") or m.get("Source"), m["Destination"], m["RW"],
             m.get("Propagation") or "")
            for m in container.get("Mounts") or []
        ),  # fmt: skip
        "tmpfs": host.get("Tmpfs") or {},
        "tmpfs_mounts": sorted(
            (m["Target"], (m.get("TmpfsOptions") or {}).get("SizeBytes"))
            for m in host.get("Mounts") or []
            if m["Type"] == "tmpfs"
        ),
        # Compose's default policy is "" (none): what `--restart=no` says
        "restart": {**host["RestartPolicy"], "Name": host["RestartPolicy"]["Name"] or "no"},
        "memory": host.get("Memory"),
        "nano_cpus": host.get("NanoCpus"),
        "pids": host.get("PidsLimit"),
        "ports": host.get("PortBindings"),
        "networks": {
            name: sorted(a for a in (net.get("Aliases") or []) if a != short)
            for name, net in (container["NetworkSettings"]["Networks"] or {}).items()
        },
    }


def _down(project: str, names: List[str]) -> None:
    run(["docker", "rm", "-f", *names], check=False)
    for kind in ("network", "volume"):
        for suffix in ("back", "front", "default", "data"):
            run(["docker", kind, "rm", f"{project}_{suffix}"], check=False)


def test_our_containers_are_composes_containers(tmp_path: Path, image: str) -> None:
    argv = require_compose()
    project = unique("cfdiff").replace(".", "-").lower()
    container = f"{project}-database"
    names = [container, f"{project}-web-1"]
    file = tmp_path / "compose.yaml"
    file.write_text(PROJECT.format(project=project, image=image, container=container))
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    try:
        subprocess.run([*argv, "-f", str(file), "create", "--pull", "never"], env=env,
                       check=True, capture_output=True, timeout=300)  # fmt: skip
        theirs = {name: _view(c) for name, c in _inspect(names).items()}
    finally:
        _down(project, names)

    app = application(load_project(str(file), environ=env))
    engine = Engine(binary="docker")
    try:
        for network, options in zip(app.networks, app.network_options):
            run(["docker", "network", "create", *shlex.split(options), network])
        for volume in app.volumes:
            run(["docker", "volume", "create", volume])
        for service, name, args, command in zip(
            app.services, app.names, app.container_args, app.commands
        ):
            name = name or f"{project}-{service}-1"
            engine.create(name, image, shlex.split(args), {}, shlex.split(command))
        ours = {name: _view(c) for name, c in _inspect(names).items()}
    finally:
        _down(project, names)
    assert set(ours) == set(theirs) == set(names)
    # docker's CLI takes no exec-form check: ours runs the same argv through /bin/sh -c
    check = theirs[container]["healthcheck"]
    assert check["Test"][0] == "CMD"
    check["Test"] = ["CMD-SHELL", shlex.join(check["Test"][1:])]
    for name in names:
        assert ours[name] == theirs[name], name

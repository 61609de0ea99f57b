"""The engine adapter without a daemon: parsers, error classes, the argument lists."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mender_docker.module.engine import Engine, classify, parse_container, parse_image
from mender_docker.module.errors import (
    DaemonDownError,
    EngineError,
    EngineMissingError,
    HealthCheckError,
    NoSuchObjectError,
)
from mender_docker.module.health import wait_healthy
from tests.fakes.device import Device

DOCKER_INSPECT = {  # trimmed `docker inspect` of a container, Engine 20.10
    "Id": "4f1c" + "0" * 60,
    "Name": "/web",
    "Image": "sha256:" + "a" * 64,
    "State": {
        "Status": "running",
        "Running": True,
        "ExitCode": 0,
        "StartedAt": "2026-11-26T00:00:00.1Z",
        "Health": {"Status": "starting", "FailingStreak": 0},
    },
    "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}},
    "Config": {"Image": "reg/web@sha256:" + "b" * 64, "Labels": {"a": "1"}},
}
PODMAN_INSPECT = {  # podman 4 names a few things differently
    "Id": "9" * 64,
    "Name": "db",
    "Image": "c" * 64,
    "ImageName": "reg/db@sha256:" + "d" * 64,
    "State": {"Status": "exited", "Running": False, "ExitCode": 137, "Healthcheck": None},
    "HostConfig": {"RestartPolicy": {"Name": "", "MaximumRetryCount": 0}},
    "Config": {"Labels": None},
}


def test_parse_docker_container() -> None:
    info = parse_container(DOCKER_INSPECT)
    assert (info.name, info.running, info.health) == ("web", True, "starting")
    assert info.restart_policy == "on-failure:3"
    assert info.image == "reg/web@sha256:" + "b" * 64
    assert info.labels == {"a": "1"} and info.started_at.startswith("2026")


def test_parse_podman_container() -> None:
    info = parse_container(PODMAN_INSPECT)
    assert (info.name, info.running, info.exit_code) == ("db", False, 137)
    assert (info.restart_policy, info.health, info.labels) == ("no", None, {})
    assert info.image == "reg/db@sha256:" + "d" * 64
    assert info.id == "9" * 64  # container IDs stay bare hex on both engines
    assert info.image_id == "sha256:" + "c" * 64  # image IDs as docker writes them


def test_parse_health_interval() -> None:
    """Config.Healthcheck.Interval is in nanoseconds; unset means the engines' 30 s."""
    checked = {**DOCKER_INSPECT, "Config": {"Healthcheck": {"Interval": 1_500_000_000}}}
    assert parse_container(checked).health_interval == 1.5
    assert parse_container(DOCKER_INSPECT).health_interval == 30.0


def test_parse_image() -> None:
    image = parse_image({"Id": "sha256:1", "RepoDigests": ["r@sha256:2"], "Size": 5})
    assert (image.id, image.repo_digests, image.size) == ("sha256:1", ("r@sha256:2",), 5)
    podman = parse_image({"Id": "e" * 64, "RepoDigests": None})  # podman: no sha256: prefix
    assert (podman.id, podman.repo_digests) == ("sha256:" + "e" * 64, ())


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        ("Error: No such container: abc", NoSuchObjectError),
        ("Error response from daemon: No such image: x@sha256:1", NoSuchObjectError),
        ('Error: no container with name or ID "x" found: no such container', NoSuchObjectError),
        (
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
            "Is the docker daemon running?",
            DaemonDownError,
        ),
        ("Error: unable to connect to Podman socket", DaemonDownError),
        ("Error response from daemon: Conflict. The container name is in use", EngineError),
    ],
)
def test_classify(stderr: str, kind: type) -> None:
    error = classify(["docker", "x"], 1, stderr + "\nSee 'docker --help'.")
    assert type(error) is kind
    assert "See '" not in str(error)


@pytest.fixture
def recorder(tmp_path: Path) -> Path:
    """A stand-in CLI that prints its argv as JSON: proves what the adapter runs."""
    script = tmp_path / "podman"
    script.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    script.chmod(0o755)
    return script


def test_argument_lists_reach_the_binary_verbatim(recorder: Path) -> None:
    engine = Engine(binary=str(recorder))
    out = engine.run(["run", "-e", "A=$(rm -rf /); `x`", "--label", "k=v w"])
    assert json.loads(out) == ["run", "-e", "A=$(rm -rf /); `x`", "--label", "k=v w"]
    line = engine.create("n", "img@sha256:1", ["--tty=true", "--publish=80:80"], {"l": "1"})
    # our labels come after the artifact's options: they win over any label those set
    assert json.loads(line) == [
        "create",
        "--name=n",
        "--tty=true",
        "--publish=80:80",
        "--label=l=1",
        "img@sha256:1",
    ]


def test_missing_binary_and_timeouts(tmp_path: Path) -> None:
    with pytest.raises(EngineMissingError, match="not found"):
        Engine(binary=str(tmp_path / "nope")).run(["ps"])
    slow = tmp_path / "slow"
    slow.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(5)\n")
    slow.chmod(0o755)
    with pytest.raises(EngineError, match="timed out"):
        Engine(binary=str(slow), timeout=0.3).run(["ps"])


def test_version_of_a_local_podman_without_a_service(tmp_path: Path) -> None:
    podman = tmp_path / "podman"
    podman.write_text(
        f"#!{sys.executable}\nimport json\n"
        'print(json.dumps({"Client": {"Version": "4.3.1"}, "Server": None}))\n'
    )
    podman.chmod(0o755)
    assert Engine(binary=str(podman)).version() == "4.3.1"


def test_healthcheck_run_on_podman(tmp_path: Path) -> None:
    """`podman healthcheck run`: exit 0 healthy, exit 1 unhealthy (a probe result, not
    an error), anything else is the engine's own complaint."""
    podman = tmp_path / "podman"
    podman.write_text(
        f"#!{sys.executable}\nimport sys\n"
        "cid = sys.argv[3]\n"
        "if cid == 'good': sys.exit(0)\n"
        "if cid == 'sick': print('unhealthy'); sys.exit(1)\n"
        "print('Error: container gone is not running', file=sys.stderr); sys.exit(125)\n"
    )
    podman.chmod(0o755)
    engine = Engine(binary=str(podman))
    assert not engine.runs_healthchecks()
    assert Engine(binary="/usr/bin/docker").runs_healthchecks()
    assert engine.run_healthcheck("good") == "healthy"
    assert engine.run_healthcheck("sick") == "unhealthy"
    assert "is not running" in engine.run_healthcheck("gone")


@pytest.mark.parametrize(("behaviour", "passes"), [("healthy", True), ("unhealthy", False)])
def test_gate_runs_the_probes_where_the_engine_does_not(
    tmp_path: Path, behaviour: str, passes: bool
) -> None:
    """Podman 4 without systemd leaves health `starting`: the gate probes at the check's
    interval itself, so a healthy container passes and an unhealthy one fails the gate."""
    device = Device(tmp_path)
    engine = device.engine
    engine.podman4 = True
    container_id = engine.add_container("web", engine.publish("web", "1", behaviour=behaviour))
    engine.start(container_id)
    assert engine.containers[container_id].health == "starting"
    ctx = device.context()
    if passes:
        wait_healthy(ctx, [container_id], timeout=10, window=1)
    else:
        with pytest.raises(HealthCheckError, match="health unhealthy"):
            wait_healthy(ctx, [container_id], timeout=10, window=1)
    probes = [c for c in engine.calls if c[0] == "run_healthcheck"]
    assert probes and len(probes) <= 10  # one per second of interval, not one per poll

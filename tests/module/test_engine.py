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
    NoSuchObjectError,
)

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


def test_parse_image() -> None:
    image = parse_image({"Id": "sha256:1", "RepoDigests": ["r@sha256:2"], "Size": 5})
    assert (image.id, image.repo_digests, image.size) == ("sha256:1", ("r@sha256:2",), 5)


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
    line = engine.create("n", "img@sha256:1", ["-dt", "-p", "80:80", "-d"], {"l": "1"})
    assert json.loads(line) == [
        "create",
        "--name",
        "n",
        "--label",
        "l=1",
        "-t",
        "-p",
        "80:80",
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

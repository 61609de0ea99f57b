"""`--resolver docker` logic with a recording runner (the real docker run is in
test_client_real.py::test_agrees_with_docker_push_and_docker_resolver)."""

from __future__ import annotations

import subprocess
from typing import List

import pytest

from mender_docker.errors import RegistryError
from mender_docker.registry import resolve_with_docker

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


class Runner:
    def __init__(self, inspect_out: str, pull_rc: int = 0, pull_err: str = "") -> None:
        self.calls: List[List[str]] = []
        self.inspect_out = inspect_out
        self.pull_rc, self.pull_err = pull_rc, pull_err

    def __call__(self, argv: List[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        if argv[1] == "pull":
            return subprocess.CompletedProcess(argv, self.pull_rc, "", self.pull_err)
        return subprocess.CompletedProcess(argv, 0, self.inspect_out, "")


def test_argument_lists_and_the_matching_repo_digest() -> None:
    runner = Runner(f'["other/repo@{D1}","reg:5000/team/app@{D2}"]|1234\n')
    got = resolve_with_docker("reg:5000/team/app:1", "linux/arm64", runner=runner)
    assert runner.calls[0] == [
        "docker",
        "pull",
        "--platform",
        "linux/arm64",
        "--",
        "reg:5000/team/app:1",
    ]
    assert runner.calls[1][:3] == ["docker", "image", "inspect"]
    assert runner.calls[1][-2:] == ["--", "reg:5000/team/app:1"]
    assert got.pinned == f"reg:5000/team/app@{D2}"
    assert (got.digest, got.size) == (D2, 1234)


def test_falls_back_to_the_first_repo_digest_like_the_original() -> None:
    got = resolve_with_docker("app:1", runner=Runner(f'["mirror/app@{D1}"]|5'))
    assert got.pinned == f"mirror/app@{D1}"


def test_pull_failure_is_one_line_from_docker() -> None:
    runner = Runner("", pull_rc=1, pull_err="Error response from daemon: manifest unknown\n")
    with pytest.raises(RegistryError, match="docker pull app:1 failed: .*manifest unknown"):
        resolve_with_docker("app:1", runner=runner)


def test_no_repo_digest_means_never_pushed() -> None:
    with pytest.raises(RegistryError, match="no repo digest"):
        resolve_with_docker("app:1", runner=Runner("[]|5"))
    with pytest.raises(RegistryError, match="malformed image reference"):
        resolve_with_docker("App", runner=Runner("[]|5"))

"""`--resolver docker` logic with a recording runner (the real docker run is in
test_client_real.py::test_agrees_with_docker_push_and_docker_resolver)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from typing import Any, Dict, List, Tuple

import pytest

from mender_docker.errors import RegistryError
from mender_docker.registry import resolve_with_docker
from mender_docker.registry.export import registry_manifests

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


# -- the registry manifest an offline artifact carries (issue 19) ---------------------------


class ManifestServer:
    """Stands in for RegistryClient.manifest_raw: serves bytes by digest."""

    def __init__(self, *bodies: bytes) -> None:
        self.bodies = {"sha256:" + hashlib.sha256(b).hexdigest(): b for b in bodies}

    def manifest_raw(
        self, ref: object, target: str, shown: object
    ) -> Tuple[str, str, Dict[str, Any], bytes]:
        if target not in self.bodies:
            raise RegistryError(f"image {shown} not found on registry reg.example")
        body = self.bodies[target]
        content = json.loads(body)
        return target, content["mediaType"], content, body

    def close(self) -> None:
        pass


def manifest_bytes(config: str) -> bytes:
    return json.dumps({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"digest": config}, "layers": []}).encode()  # fmt: skip


def sha(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def test_registry_manifests_of_a_manifest_and_of_an_index() -> None:
    amd, arm = manifest_bytes(D1), manifest_bytes(D2)
    index = json.dumps({"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"digest": sha(arm), "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": sha(amd), "platform": {"os": "linux", "architecture": "amd64"}},
    ]}).encode()  # fmt: skip
    server: Any = ManifestServer(amd, arm, index)
    assert registry_manifests(f"reg.example/app@{sha(amd)}", D1, server) == (amd, b"")
    # docker pulled a tag of a multi-arch image: RepoDigests names the index; the
    # manifest whose config is the saved image is found in it
    assert registry_manifests(f"reg.example/app@{sha(index)}", D1, server) == (amd, index)
    with pytest.raises(RegistryError, match=r"no manifest of its index names image sha256:3"):
        registry_manifests(f"reg.example/app@{sha(index)}", "sha256:" + "3" * 64, server)
    with pytest.raises(RegistryError, match=f"it names config {D1}, docker saved image {D2}"):
        registry_manifests(f"reg.example/app@{sha(amd)}", D2, server)


def test_no_registry_manifest_is_one_line() -> None:
    missing = "reg.example/app@sha256:" + "4" * 64
    with pytest.raises(RegistryError) as caught:
        registry_manifests(missing, D1, ManifestServer())  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"--resolver docker: no registry manifest for {missing} (an offline artifact carries "
        f"it to tie the image to its reference): image {missing} not found on registry reg.example"
    )

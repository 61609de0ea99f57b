"""The registry client against a real docker-registry (distribution 2.8)."""

from __future__ import annotations

import base64
import socket
from pathlib import Path
from typing import Dict

import httpx
import pytest

from mender_docker.errors import RegistryError
from mender_docker.registry import HttpTransport, RegistryClient, resolve, resolve_with_docker
from mender_docker.registry.client import OCI_INDEX, OCI_MANIFEST
from tests.realstack import ImageFactory, Registry, free_port, run, unique
from tests.registry.authproxy import TokenAuthProxy, basic_auth_config
from tests.registry.fixtures import PASSWORD, USER, PushedSet, docker_config
from tests.registry.ocipush import push_image


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_tag_resolves_to_the_pushed_digest_and_size(pushed: PushedSet) -> None:
    got = resolve(pushed.ref("single"))
    assert got.digest == pushed.single.digest
    assert got.pinned == f"{pushed.host}/{pushed.prefix}/single@{pushed.single.digest}"
    assert got.size == pushed.single.image_size
    assert got.media_type == OCI_MANIFEST


def test_docker_schema2_manifest(pushed: PushedSet) -> None:
    got = resolve(pushed.ref("dockertyped"))
    assert got.digest == pushed.docker_typed.digest
    assert got.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert got.size == pushed.docker_typed.image_size


def test_digest_pinned_reference_is_checked_to_exist(pushed: PushedSet) -> None:
    name = f"{pushed.host}/{pushed.prefix}/single"
    got = resolve(f"{name}@{pushed.single.digest}")
    assert got.pinned == f"{name}@{pushed.single.digest}"
    assert resolve(f"{name}:v1@{pushed.single.digest}").pinned == got.pinned
    missing = "sha256:" + "1" * 64
    with pytest.raises(RegistryError, match=f"{name}@{missing} not found"):
        resolve(f"{name}@{missing}")
    # The manifest exists, but not under this repository.
    with pytest.raises(RegistryError, match="not found"):
        resolve(f"{pushed.host}/{pushed.prefix}/dockertyped@{pushed.single.digest}")


def test_unknown_tag_and_repository(pushed: PushedSet) -> None:
    with pytest.raises(RegistryError, match="single:nope not found on registry .* no tag nope"):
        resolve(pushed.ref("single", "nope"))
    with pytest.raises(RegistryError, match="absent:v1 not found"):
        resolve(pushed.ref("absent"))


def test_multi_arch_index(pushed: PushedSet) -> None:
    plain = resolve(pushed.ref("multi"))
    assert plain.digest == pushed.index_digest
    assert plain.media_type == OCI_INDEX
    # This machine is linux/amd64 (CI too): sized for it.
    assert plain.size == pushed.children["linux/amd64"].image_size
    for platform, child in pushed.children.items():
        got = resolve(pushed.ref("multi"), platform=platform)
        assert got.digest == child.digest, platform
        assert got.size == child.image_size
        assert got.pinned.endswith(f"/multi@{child.digest}")
    assert (
        resolve(pushed.ref("multi"), "linux/arm64").digest
        == pushed.children["linux/arm64/v8"].digest
    )
    by_digest = f"{pushed.host}/{pushed.prefix}/multi@{pushed.index_digest}"
    arm = resolve(by_digest, "linux/arm/v7")
    assert arm.digest == pushed.children["linux/arm/v7"].digest


def test_multi_arch_unknown_platform(pushed: PushedSet) -> None:
    with pytest.raises(RegistryError) as caught:
        resolve(pushed.ref("multi"), "linux/ppc64le")
    assert "no image for platform linux/ppc64le" in str(caught.value)
    assert "linux/arm/v7" in str(caught.value)


def test_single_manifest_platform_check(pushed: PushedSet) -> None:
    assert resolve(pushed.ref("armonly"), "linux/arm/v7").digest == pushed.arm_only.digest
    assert resolve(pushed.ref("armonly"), "linux/arm").digest == pushed.arm_only.digest
    with pytest.raises(RegistryError, match="image is for platform linux/arm/v7, not linux/amd64"):
        resolve(pushed.ref("armonly"), "linux/amd64")
    with pytest.raises(RegistryError, match="not linux/arm/v6"):
        resolve(pushed.ref("armonly"), "linux/arm/v6")


def test_only_manifests_and_config_are_fetched(pushed: PushedSet) -> None:
    """Through a recording front: no layer is ever requested."""
    with TokenAuthProxy(pushed.host, require_token=False) as front:
        name = f"{front.host}/{pushed.prefix}"
        resolve(f"{name}/single:v1")
        resolve(f"{name}/multi:v1")
        resolve(f"{name}/multi:v1", "linux/arm/v7")
        resolve(f"{name}/armonly:v1", "linux/arm/v7")
    blobs = front.paths("/blobs/")
    assert blobs == [f"/v2/{pushed.prefix}/armonly/blobs/{pushed.arm_only.config_digest}"]
    assert front.paths("/manifests/")


def test_basic_auth_registry(basic_registry: Registry, tmp_path: Path) -> None:
    repo = f"{unique('basic')}/app"
    image = push_image(
        basic_registry.host, repo, "v1", [{"f": b"basic"}], auth=_basic(USER, PASSWORD)
    )
    ref = f"{basic_registry.host}/{repo}:v1"
    good = docker_config(tmp_path, basic_auth_config(USER, PASSWORD, basic_registry.host))
    assert RegistryClient(environ=good).resolve(ref).digest == image.digest
    anonymous = docker_config(tmp_path, "{}")
    with pytest.raises(RegistryError) as caught:
        RegistryClient(environ=anonymous).resolve(ref)
    assert f"registry {basic_registry.host} requires a login" in str(caught.value)
    wrong = docker_config(tmp_path, basic_auth_config(USER, "wrong", basic_registry.host))
    with pytest.raises(RegistryError) as caught:
        RegistryClient(environ=wrong).resolve(ref)
    assert f"registry {basic_registry.host} refused access" in str(caught.value)
    assert "credentials in the Docker config were refused" in str(caught.value)


@pytest.mark.parametrize("token_field", ["token", "access_token"])
def test_token_auth_flow(pushed: PushedSet, tmp_path: Path, token_field: str) -> None:
    with TokenAuthProxy(pushed.host, "tok-user", "tok-pass", token_field=token_field) as front:
        ref = f"{front.host}/{pushed.prefix}/multi:v1"
        env = docker_config(tmp_path, basic_auth_config("tok-user", "tok-pass", front.host))
        got = RegistryClient(environ=env).resolve(ref, "linux/arm64")
        assert got.digest == pushed.children["linux/arm64/v8"].digest
        token_calls = [r for r in front.requests if r[1].startswith("/token")]
        assert len(token_calls) == 1
        assert f"scope=repository%3A{pushed.prefix}%2Fmulti%3Apull" in token_calls[0][1]
        assert token_calls[0][2] == _basic("tok-user", "tok-pass")
        assert front.requests[-1][2] == f"Bearer {front.token}"

        wrong = docker_config(tmp_path, basic_auth_config("tok-user", "nope", front.host))
        with pytest.raises(RegistryError) as caught:
            RegistryClient(environ=wrong).resolve(ref)
        assert f"registry {front.host}: token server refused" in str(caught.value)


def test_anonymous_token_flow(pushed: PushedSet, tmp_path: Path) -> None:
    """Like Docker Hub for public images: a token without credentials."""
    with TokenAuthProxy(pushed.host) as front:
        env = docker_config(tmp_path, "{}")
        got = RegistryClient(environ=env).resolve(f"{front.host}/{pushed.prefix}/single:v1")
        assert got.digest == pushed.single.digest
        token_call = next(r for r in front.requests if r[1].startswith("/token"))
        assert token_call[2] == ""


def test_unreachable_registry_is_named() -> None:
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError, match=f"registry {host} is unreachable"):
        resolve(f"{host}/x/y:1")


@pytest.mark.real
def test_stopped_registry_is_unreachable(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    reg.start()
    try:
        push_image(reg.host, "a/b", "1", [{"f": b"1"}])
        assert resolve(f"{reg.host}/a/b:1").digest
    finally:
        reg.stop()
    with pytest.raises(RegistryError, match=f"registry {reg.host} is unreachable"):
        resolve(f"{reg.host}/a/b:1")


class ResolvingTransport(httpx.HTTPTransport):
    """Connects `registry.test` to 127.0.0.1, like `curl --resolve`: a registry host that
    is not loopback by name, without sending anything off this machine. (The Host
    header still names registry.test.)"""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "registry.test":
            request = httpx.Request(
                request.method,
                request.url.copy_with(host="127.0.0.1"),
                headers=request.headers,
                stream=request.stream,
                extensions=request.extensions,
            )
        return super().handle_request(request)


def test_insecure_registry_switches_to_plain_http(pushed: PushedSet) -> None:
    with TokenAuthProxy(pushed.host, require_token=False) as front:
        host = "registry.test:" + front.host.rsplit(":", 1)[1]
        ref = f"{host}/{pushed.prefix}/single:v1"
        # Not loopback by name: HTTPS first, and this registry speaks plain HTTP.
        with pytest.raises(RegistryError) as caught:
            resolve(ref, transport=ResolvingTransport())
        assert f"registry {host}" in str(caught.value)
        assert "--insecure-registry" in str(caught.value)
        resolved = resolve(ref, insecure=[host], transport=ResolvingTransport())
        assert resolved.digest == pushed.single.digest
        env: Dict[str, str] = {"MENDER_DOCKER_INSECURE_REGISTRIES": host}
        client = RegistryClient(transport=ResolvingTransport(), environ=env)
        assert client.resolve(ref).digest == pushed.single.digest


def test_agrees_with_docker_push_and_docker_resolver(image_factory: ImageFactory) -> None:
    """A real `docker push`ed image: the digest docker reports is the one we pin."""
    repo = f"{unique('regcmp')}"
    pinned_by_docker = image_factory.build(repo, "v1")
    ref = f"{image_factory.registry.host}/{repo}:v1"
    ours = resolve(ref)
    assert ours.pinned == pinned_by_docker
    old_way = resolve_with_docker(ref)
    assert old_way.pinned == pinned_by_docker
    assert old_way.size > 0
    # Unknown tag through docker: one clear error.
    with pytest.raises(RegistryError, match="docker pull .*:absent failed"):
        resolve_with_docker(f"{image_factory.registry.host}/{repo}:absent")
    run(["docker", "image", "rm", "-f", ref], check=False)


@pytest.mark.real
def test_connections_are_reused_and_recovered(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    reg.start()
    try:
        pushed_one = push_image(reg.host, "keep/alive", "1", [{"f": b"1"}])
        transport = HttpTransport()
        client = RegistryClient(transport, environ={"DOCKER_CONFIG": str(tmp_path)})
        for _ in range(3):
            assert client.resolve(f"{reg.host}/keep/alive:1").digest == pushed_one.digest
        assert transport.connections_opened == 1  # 6 requests, one connection
        # The registry restarts: the idle kept-alive connection is dead.
        reg.stop()
        reg.start()
        assert client.resolve(f"{reg.host}/keep/alive:1").digest == pushed_one.digest
        assert transport.connections_opened == 2
        transport.close()
    finally:
        reg.stop()


def test_a_registry_that_never_answers_times_out(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts connections, never answers
        host = f"127.0.0.1:{silent.getsockname()[1]}"
        client = RegistryClient(HttpTransport(timeout=0.5), environ={"DOCKER_CONFIG": "/none"})
        with pytest.raises(RegistryError, match=f"registry {host} is unreachable: timed out"):
            client.resolve(f"{host}/a/b:1")

"""The client's logic over an in-memory registry (no network)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Dict

import pytest

from mender_docker.errors import RegistryError
from mender_docker.registry import RegistryClient, is_insecure
from mender_docker.registry import client as client_module
from mender_docker.registry.platform import Platform
from tests.registry.fake_registry import FakeRegistry, index

REPO = "team/app"


def _client(fake: FakeRegistry, env: Dict[str, str]) -> RegistryClient:
    return RegistryClient(fake, environ=env)


@pytest.fixture
def anonymous(tmp_path: Path) -> Dict[str, str]:
    return {"DOCKER_CONFIG": str(tmp_path / "no-config")}


@pytest.fixture
def with_login(tmp_path: Path) -> Dict[str, str]:
    token = base64.b64encode(b"u:p").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"reg.example": {"auth": token}}}))
    return {"DOCKER_CONFIG": str(tmp_path)}


def test_tag_resolves_with_head_then_verified_get(anonymous: Dict[str, str]) -> None:
    fake = FakeRegistry()
    digest, _, size = fake.add_image(REPO, "1.0", [1000, 2345])
    got = _client(fake, anonymous).resolve("reg.example/team/app:1.0")
    assert got.pinned == f"reg.example/team/app@{digest}"
    assert (got.digest, got.size) == (digest, size)
    assert fake.paths() == [
        f"/v2/{REPO}/manifests/1.0",
        f"/v2/{REPO}/manifests/{digest}",
    ]
    assert [c.method for c in fake.calls] == ["HEAD", "GET"]
    assert all(c.url.startswith("https://") for c in fake.calls)
    assert "application/vnd.oci.image.index.v1+json" in fake.calls[0].headers["Accept"]


def test_head_refused_falls_back_to_get_and_hashes_body(anonymous: Dict[str, str]) -> None:
    fake = FakeRegistry(head_allowed=False, digest_header=False)
    digest, _, _ = fake.add_image(REPO, "1.0", [10])
    got = _client(fake, anonymous).resolve("reg.example/team/app:1.0")
    assert got.digest == digest
    assert fake.paths("GET") == [f"/v2/{REPO}/manifests/1.0"]


def test_manifest_not_matching_its_digest_is_refused(anonymous: Dict[str, str]) -> None:
    fake = FakeRegistry(tamper=True)
    fake.add_image(REPO, "1.0", [10])
    with pytest.raises(RegistryError, match="does not match digest"):
        _client(fake, anonymous).resolve("reg.example/team/app:1.0")


def test_unknown_tag_and_unknown_digest_are_named(anonymous: Dict[str, str]) -> None:
    fake = FakeRegistry()
    fake.add_image(REPO, "1.0", [10])
    with pytest.raises(RegistryError, match=r"reg.example/team/app:2.0 not found.*no tag 2.0"):
        _client(fake, anonymous).resolve("reg.example/team/app:2.0")
    missing = "sha256:" + "0" * 64
    with pytest.raises(RegistryError, match=f"team/app@{missing} not found"):
        _client(fake, anonymous).resolve(f"reg.example/team/app@{missing}")


def test_bearer_flow_sends_basic_to_realm_and_reuses_token(with_login: Dict[str, str]) -> None:
    fake = FakeRegistry(auth="bearer")
    digest, _, _ = fake.add_image(REPO, "1.0", [10])
    client = _client(fake, with_login)
    assert client.resolve("reg.example/team/app:1.0").digest == digest
    token_calls = [c for c in fake.calls if c.url.startswith("https://reg.example/token")]
    assert len(token_calls) == 1
    assert "scope=repository%3Ateam%2Fapp%3Apull" in token_calls[0].url
    assert token_calls[0].headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    assert fake.calls[-1].headers["Authorization"] == "Bearer tok-123"
    client.resolve("reg.example/team/app:1.0")
    assert len([c for c in fake.calls if "/token" in c.url]) == 1


def test_bearer_refused_names_the_registry(anonymous: Dict[str, str]) -> None:
    fake = FakeRegistry(auth="bearer")
    fake.add_image(REPO, "1.0", [10])
    with pytest.raises(RegistryError) as caught:
        _client(fake, anonymous).resolve("reg.example/team/app:1.0")
    assert "registry reg.example" in str(caught.value)
    assert "refused" in str(caught.value)
    assert "no credentials" in str(caught.value)


def test_basic_challenge(with_login: Dict[str, str], anonymous: Dict[str, str]) -> None:
    fake = FakeRegistry(auth="basic")
    digest, _, _ = fake.add_image(REPO, "1.0", [10])
    assert _client(fake, with_login).resolve("reg.example/team/app:1.0").digest == digest
    with pytest.raises(RegistryError, match="registry reg.example requires a login"):
        _client(FakeRegistry(auth="basic"), anonymous).resolve("reg.example/team/app:1.0")


def _multi(fake: FakeRegistry) -> Dict[str, str]:
    amd = fake.add_image(REPO, None, [100])
    arm64 = fake.add_image(REPO, None, [5000], ("linux", "arm64", "v8"))
    arm = fake.add_image(REPO, None, [300], ("linux", "arm", "v7"))
    att = fake.add_image(REPO, None, [99999], ("unknown", "unknown", ""))
    entries = [
        (amd[0], amd[1], {"os": "linux", "architecture": "amd64"}),
        (arm64[0], arm64[1], {"os": "linux", "architecture": "arm64", "variant": "v8"}),
        (arm[0], arm[1], {"os": "linux", "architecture": "arm", "variant": "v7"}),
        (att[0], att[1], {"os": "unknown", "architecture": "unknown"}),
    ]
    top, _ = fake.add_manifest(REPO, "multi", index(entries))
    return {
        "index": top,
        "amd64": amd[0],
        "amd64-size": str(amd[2]),
        "arm64": arm64[0],
        "arm64-size": str(arm64[2]),
        "arm": arm[0],
    }


def test_index_without_platform_pins_the_index_sized_for_the_host(
    anonymous: Dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeRegistry()
    ids = _multi(fake)
    monkeypatch.setattr(client_module, "host_platform", lambda: Platform("linux", "amd64"))
    got = _client(fake, anonymous).resolve("reg.example/team/app:multi")
    assert got.digest == ids["index"]
    assert got.size == int(ids["amd64-size"])
    monkeypatch.setattr(client_module, "host_platform", lambda: Platform("linux", "riscv64"))
    # Host not listed: the largest runnable image (attestations do not count).
    got = _client(fake, anonymous).resolve("reg.example/team/app:multi")
    assert got.size == int(ids["arm64-size"])


@pytest.mark.parametrize(
    "platform, key",
    [
        ("linux/arm64", "arm64"),
        ("linux/arm64/v8", "arm64"),
        ("linux/arm/v7", "arm"),
        ("linux/amd64", "amd64"),
        ("LINUX/ARM/V7", "arm"),
    ],
)
def test_platform_pins_its_manifest(anonymous: Dict[str, str], platform: str, key: str) -> None:
    fake = FakeRegistry()
    ids = _multi(fake)
    got = _client(fake, anonymous).resolve("reg.example/team/app:multi", platform)
    assert got.digest == ids[key]
    assert got.pinned == f"reg.example/team/app@{ids[key]}"
    assert not fake.paths("GET") or all("/blobs/" not in p for p in fake.paths())


def test_unknown_platform_lists_what_exists(anonymous: Dict[str, str]) -> None:
    fake = FakeRegistry()
    _multi(fake)
    with pytest.raises(RegistryError) as caught:
        _client(fake, anonymous).resolve("reg.example/team/app:multi", "linux/s390x")
    assert "no image for platform linux/s390x" in str(caught.value)
    assert "linux/arm64/v8" in str(caught.value)
    with pytest.raises(RegistryError, match="malformed platform 'linux'"):
        _client(fake, anonymous).resolve("reg.example/team/app:multi", "linux")


def test_single_manifest_platform_checked_via_config_through_redirect(
    with_login: Dict[str, str],
) -> None:
    fake = FakeRegistry(auth="basic", redirect_blobs=True)
    fake.add_image(REPO, "arm", [10], ("linux", "arm", "v7"))
    client = _client(fake, with_login)
    assert client.resolve("reg.example/team/app:arm", "linux/arm").platform == "linux/arm"
    with pytest.raises(RegistryError, match="image is for platform linux/arm/v7, not linux/amd64"):
        client.resolve("reg.example/team/app:arm", "linux/amd64")
    storage = [c for c in fake.calls if "storage.example" in c.url]
    assert storage, "the config blob must come through the redirect"
    # Credentials never leave the registry host.
    assert all("Authorization" not in c.headers for c in storage)


def test_insecure_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_insecure("127.0.0.1:5000")
    assert is_insecure("127.1.2.3")
    assert is_insecure("localhost:5000")
    assert is_insecure("[::1]:5000")
    assert not is_insecure("reg.example:5000")
    assert is_insecure("reg.example:5000", ["reg.example:5000"])
    assert is_insecure("reg.example:5000", ["reg.example"])
    assert not is_insecure("reg.example:5000", ["reg.example:6000"])
    fake = FakeRegistry(host="reg.example")
    fake.add_image(REPO, "1", [1])
    env = {"MENDER_DOCKER_INSECURE_REGISTRIES": "other, reg.example", "DOCKER_CONFIG": "/none"}
    RegistryClient(fake, environ=env).resolve("reg.example/team/app:1")
    assert all(c.url.startswith("http://reg.example/") for c in fake.calls)

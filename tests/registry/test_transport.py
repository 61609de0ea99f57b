"""The one request path (transport.py) and the exporter's requests through it.

Credentials on redirects, the redirect limit, the one timeout and user agent,
the config blob fetched once, the progress callback. The redirect tests run on
real loopback sockets (two HTTP servers: a registry and a blob storage on
another host), the others over the in-memory registry; the last one goes
through a real docker-registry.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from pathlib import Path
from typing import Dict, List

import httpx
import pytest

from mender_docker.errors import RegistryError
from mender_docker.gen import generate
from mender_docker.registry import HttpTransport, RegistryClient
from mender_docker.registry.export import BlobStore, RegistryExporter
from mender_docker.registry.transport import DEFAULT_TIMEOUT, MAX_REDIRECTS, USER_AGENT
from tests.registry.authproxy import TokenAuthProxy, basic_auth_config
from tests.registry.fake_registry import FakeRegistry, digest_of
from tests.registry.fixtures import PushedSet, docker_config
from tests.registry.ocipush import layer
from tests.registry.servers import (
    Answer,
    LoopbackServer,
    registry_app,
    relay_app,
    storage_app,
)

REPO = "team/app"
STORAGE_HOST = "127.0.0.2"  # loopback too, but another host than the registry's 127.0.0.1


def login(tmp_path: Path, registry: str, user: str = "u", password: str = "p") -> Dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    folder = tmp_path / "docker-config"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"auths": {registry: {"auth": token}}}))
    return {"DOCKER_CONFIG": str(folder)}


def store(tmp_path: Path) -> BlobStore:
    folder = tmp_path / "store"
    folder.mkdir(parents=True, exist_ok=True)
    return BlobStore(str(folder))


# -- credentials and redirects, on real sockets --------------------------------------------


@pytest.mark.parametrize("auth", ["bearer", "basic"])
def test_redirect_to_another_host_drops_the_authorization(tmp_path: Path, auth: str) -> None:
    """A registry that sends blob GETs to storage elsewhere (as to S3 or a CDN): the
    storage gets the signed URL and never the registry's credentials."""
    blobs: Dict[str, bytes] = {}
    with LoopbackServer(storage_app(blobs), bind=STORAGE_HOST) as storage:
        fake = FakeRegistry(auth=auth, redirect_blobs=True, realm_scheme="http", blobs=blobs)
        fake.storage_url = storage.url
        with LoopbackServer(registry_app(fake)) as registry:
            fake.host = registry.host
            _, config_digest, layers = fake.add_layered_image(REPO, "1", [{"f": b"layer one"}])
            with RegistryClient(environ=login(tmp_path, registry.host)) as client:
                image = RegistryExporter(client).export(
                    f"{registry.host}/{REPO}:1", "linux/amd64", store(tmp_path)
                )
    assert image.config.digest == config_digest
    assert Path(image.layers[0].path).read_bytes() == layers[0]
    # Each blob: one GET at the registry, with credentials; one at the storage, without.
    at_registry = registry.requests("/blobs/")
    assert sorted(r.path.rsplit("/", 1)[1] for r in at_registry) == sorted(
        [config_digest, digest_of(layers[0])]
    )
    basic = "Basic " + base64.b64encode(b"u:p").decode()
    expected = "Bearer tok-123" if auth == "bearer" else basic
    assert all(r.headers.get("authorization") == expected for r in at_registry)
    assert len(storage.seen) == 2
    assert all("authorization" not in r.headers for r in storage.seen)
    assert all(r.headers["user-agent"] == USER_AGENT for r in storage.seen + registry.seen)


def test_a_storage_that_compresses_anyway_is_decoded(tmp_path: Path) -> None:
    """We ask for `Accept-Encoding: identity`; a server that gzips regardless is
    decoded before the digest check, as docker does."""
    blobs: Dict[str, bytes] = {}
    plain = storage_app(blobs)

    def gzipping(method: str, path: str, headers: Dict[str, str]) -> Answer:
        status, out, body = plain(method, path, headers)
        return status, {**out, "content-encoding": "gzip"}, gzip.compress(body)

    with LoopbackServer(gzipping, bind=STORAGE_HOST) as storage:
        fake = FakeRegistry(redirect_blobs=True, realm_scheme="http", blobs=blobs)
        fake.storage_url = storage.url
        with LoopbackServer(registry_app(fake)) as registry:
            fake.host = registry.host
            _, _, layers = fake.add_layered_image(REPO, "1", [{"f": b"z" * 100_000}])
            with RegistryClient(environ={"DOCKER_CONFIG": "/none"}) as client:
                image = RegistryExporter(client).export(
                    f"{registry.host}/{REPO}:1", None, store(tmp_path)
                )
    assert Path(image.layers[0].path).read_bytes() == layers[0]
    assert all(seen.headers["accept-encoding"] == "identity" for seen in storage.seen)


def test_redirect_within_the_registry_keeps_the_authorization(tmp_path: Path) -> None:
    fake = FakeRegistry(auth="bearer", redirect_blobs=True, realm_scheme="http")
    with LoopbackServer(registry_app(fake)) as registry:
        fake.host = registry.host
        fake.storage_url = f"{registry.url}/_storage"  # same origin: scheme, host, port
        fake.add_image(REPO, "arm", [10], ("linux", "arm", "v7"))
        with RegistryClient(environ=login(tmp_path, registry.host)) as client:
            assert client.resolve(f"{registry.host}/{REPO}:arm", "linux/arm").platform
    (hop,) = registry.requests("/_storage/")
    assert hop.headers["authorization"] == "Bearer tok-123"


def test_redirect_limit() -> None:
    class Hops(httpx.BaseTransport):
        """/hop/N redirects to /hop/N-1; /hop/0 answers."""

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            left = int(request.url.path.rsplit("/", 1)[1])
            if left:
                return httpx.Response(302, headers={"location": f"/hop/{left - 1}"})
            return httpx.Response(200, content=b"here")

    transport = HttpTransport(network=Hops())
    assert transport.send("GET", f"https://reg.example/hop/{MAX_REDIRECTS}").body == b"here"
    with pytest.raises(RegistryError) as caught:
        transport.send("GET", f"https://reg.example/hop/{MAX_REDIRECTS + 1}")
    assert str(caught.value) == (
        "registry reg.example: too many redirects for https://reg.example/hop/0"
    )


def test_one_timeout_and_user_agent_on_every_request(tmp_path: Path) -> None:
    """Manifests, the token request, the config blob and its storage hop alike."""
    fake = FakeRegistry(auth="bearer", redirect_blobs=True)
    fake.add_image(REPO, "arm", [10], ("linux", "arm", "v7"))
    env = login(tmp_path, "reg.example")
    RegistryClient(fake, environ=env).resolve(f"reg.example/{REPO}:arm", "linux/arm/v7")
    assert fake.calls_to("/token") and fake.calls_to("storage.example/blob/")
    every = {DEFAULT_TIMEOUT}
    for call in fake.calls:
        assert set(call.extensions["timeout"].values()) == every, call.url
        assert call.headers["user-agent"] == USER_AGENT, call.url
        assert call.headers["accept-encoding"] == "identity", call.url
    fake.calls.clear()
    quick = HttpTransport(timeout=7.5, network=fake)
    RegistryClient(quick, environ=env).resolve(f"reg.example/{REPO}:arm", "linux/arm/v7")
    assert {v for c in fake.calls for v in c.extensions["timeout"].values()} == {7.5}


def test_refused_storage_hop_and_unreachable_storage_are_named(tmp_path: Path) -> None:
    fake = FakeRegistry(redirect_blobs=True, realm_scheme="http")
    with LoopbackServer(registry_app(fake)) as registry:
        fake.host = registry.host
        fake.storage_url = f"http://{STORAGE_HOST}:9"  # nothing listens there
        fake.add_image(REPO, "arm", [10], ("linux", "arm", "v7"))
        with pytest.raises(RegistryError, match=f"registry {STORAGE_HOST}:9 is unreachable"):
            RegistryClient(environ=login(tmp_path, registry.host)).resolve(
                f"{registry.host}/{REPO}:arm", "linux/arm"
            )


# -- the exporter: one request per blob, progress ----------------------------------------------


def test_config_blob_is_fetched_once(tmp_path: Path) -> None:
    """--platform on a single-platform image is checked on the config the export keeps."""
    fake = FakeRegistry(auth="bearer")
    _, config_digest, layers = fake.add_layered_image(REPO, "1", [{"a": b"1"}, {"b": b"2"}])
    env = login(tmp_path, "reg.example")
    exporter = RegistryExporter(RegistryClient(fake, environ=env))
    image = exporter.export(f"reg.example/{REPO}:1", "linux/amd64", store(tmp_path))
    assert image.image_id == config_digest
    blob_calls = [c for c in fake.calls if "/blobs/" in c.url and "Authorization" in c.headers]
    assert [c.method for c in blob_calls] == ["GET"] * 3  # no HEAD before a layer's GET
    assert [c.url.rsplit("/", 1)[1] for c in blob_calls] == [config_digest] + [
        digest_of(data) for data in layers
    ]
    # A wrong platform: the config alone is fetched, once, and no layer.
    fake.calls.clear()
    with pytest.raises(RegistryError, match="image is for platform linux/amd64, not linux/arm64"):
        exporter.export(f"reg.example/{REPO}:1", "linux/arm64", store(tmp_path / "other"))
    assert [c.url.rsplit("/", 1)[1] for c in fake.calls_to("/blobs/")] == [config_digest]


def test_progress_callback_counts_the_layer_bytes(tmp_path: Path) -> None:
    fake = FakeRegistry()
    big = {"big": os.urandom(3 * 2**20)}  # incompressible: several chunks
    _, _, layers = fake.add_layered_image(REPO, "1", [big, {"small": b"s"}])
    counts: List[int] = []
    exporter = RegistryExporter(RegistryClient(fake, environ={"DOCKER_CONFIG": "/none"}))
    blobs = store(tmp_path)
    exporter.export(f"reg.example/{REPO}:1", None, blobs, counts.append)
    assert sum(counts) == sum(len(data) for data in layers)
    assert all(count > 0 for count in counts)
    # Blobs already in the store are not fetched again, and not counted.
    counts.clear()
    fake.calls.clear()
    exporter.export(f"reg.example/{REPO}:1", None, blobs, counts.append)
    assert counts == [] and fake.calls_to("/blobs/") == []


def test_layer_not_matching_its_digest_leaves_nothing(tmp_path: Path) -> None:
    fake = FakeRegistry()
    _, _, layers = fake.add_layered_image(REPO, "1", [{"a": b"1"}])
    fake.blobs[digest_of(layers[0])] = layer({"a": b"2"})[0]  # valid gzip, other bytes
    exporter = RegistryExporter(RegistryClient(fake, environ={"DOCKER_CONFIG": "/none"}))
    target = store(tmp_path)
    with pytest.raises(RegistryError, match="does not match its digest or size"):
        exporter.export(f"reg.example/{REPO}:1", None, target)
    assert [name for name in os.listdir(target.directory) if name.endswith(".part")] == []
    # Longer than the manifest says: refused too, without storing the excess.
    fake.blobs[digest_of(layers[0])] = layers[0] + b"x" * 10
    with pytest.raises(RegistryError, match="does not match its digest or size"):
        exporter.export(f"reg.example/{REPO}:1", None, store(tmp_path / "again"))


# -- a real docker-registry behind a token server that redirects blobs -----------------------


def test_embedded_image_through_token_auth_and_a_storage_redirect(
    pushed: PushedSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer(relay_app(pushed.host), bind=STORAGE_HOST) as storage, TokenAuthProxy(
        pushed.host, "tok-user", "tok-pass", storage=storage.url
    ) as front:
        env = docker_config(tmp_path, basic_auth_config("tok-user", "tok-pass", front.host))
        monkeypatch.setenv("DOCKER_CONFIG", env["DOCKER_CONFIG"])
        out = tmp_path / "a.mender"
        args = ["--embed-images", "-n", "a", "-t", "d", "-o", str(out), "--platform", "linux/amd64"]
        from mender_docker.cli.gen import parse_options

        result = generate(parse_options([*args, f"{front.host}/{pushed.prefix}/single:v1"]))
    assert result.metadata.image_ids == (pushed.single.config_digest,)
    blob_gets = [(m, path, auth) for m, path, auth in front.requests if "/blobs/" in path]
    digests = [path.rsplit("/", 1)[1] for _, path, auth in blob_gets if auth]
    assert digests[0] == pushed.single.config_digest  # fetched once, checked and kept
    assert len(digests) == len(set(digests)) == 3  # config + 2 layers, each once
    assert all(m == "GET" and auth == f"Bearer {front.token}" for m, _, auth in blob_gets if auth)
    assert len(storage.seen) == 3
    assert all("authorization" not in seen.headers for seen in storage.seen)
    assert all("X-Amz-Signature=s1gned" in seen.path for seen in storage.seen)

from __future__ import annotations

import pytest

from mender_docker.errors import RegistryError
from mender_docker.registry import parse_reference
from mender_docker.spec import split_pinned

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "text, name, registry, repository, tag, digest",
    [
        ("debian", "debian", "registry-1.docker.io", "library/debian", None, None),
        ("debian:12", "debian", "registry-1.docker.io", "library/debian", "12", None),
        (f"debian@{DIGEST}", "debian", "registry-1.docker.io", "library/debian", None, DIGEST),
        ("user/app:1.0", "user/app", "registry-1.docker.io", "user/app", "1.0", None),
        (
            "docker.io/library/debian",
            "docker.io/library/debian",
            "registry-1.docker.io",
            "library/debian",
            None,
            None,
        ),
        (
            "index.docker.io/debian",
            "index.docker.io/debian",
            "registry-1.docker.io",
            "library/debian",
            None,
            None,
        ),
        ("localhost:5000/x", "localhost:5000/x", "localhost:5000", "x", None, None),
        ("localhost/x:t", "localhost/x", "localhost", "x", "t", None),
        ("127.0.0.1:5000/a/b:tag", "127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", "tag", None),
        (
            f"127.0.0.1:5000/demo/web:1@{DIGEST}",
            "127.0.0.1:5000/demo/web",
            "127.0.0.1:5000",
            "demo/web",
            "1",
            DIGEST,
        ),
        (
            "registry.example.com/team/app",
            "registry.example.com/team/app",
            "registry.example.com",
            "team/app",
            None,
            None,
        ),
        ("docker.io/x", "docker.io/x", "registry-1.docker.io", "library/x", None, None),
        # the Hub's API host spelled out is another registry to docker: no library/
        (
            "registry-1.docker.io/x:1",
            "registry-1.docker.io/x",
            "registry-1.docker.io",
            "x",
            "1",
            None,
        ),
        ("Example.com/a", "Example.com/a", "Example.com", "a", None, None),
        ("a__b/c-d.e_f", "a__b/c-d.e_f", "registry-1.docker.io", "a__b/c-d.e_f", None, None),
    ],
)
def test_parses_like_docker(
    text: str, name: str, registry: str, repository: str, tag: str, digest: str
) -> None:
    ref = parse_reference(text)
    assert (ref.name, ref.registry, ref.repository, ref.tag, ref.digest) == (
        name,
        registry,
        repository,
        tag,
        digest,
    )
    assert str(ref) == text


def test_pinned_keeps_the_users_spelling_and_satisfies_the_spec() -> None:
    ref = parse_reference("127.0.0.1:5000/demo/web:1")
    pinned = ref.pinned(DIGEST)
    assert pinned == f"127.0.0.1:5000/demo/web@{DIGEST}"
    assert split_pinned(pinned) == ("127.0.0.1:5000/demo/web", DIGEST)
    assert parse_reference("debian:12").pinned(DIGEST) == f"debian@{DIGEST}"


def test_target_prefers_digest_then_tag_then_latest() -> None:
    assert parse_reference("x").target == "latest"
    assert parse_reference("x:7").target == "7"
    assert parse_reference(f"x:7@{DIGEST}").target == DIGEST


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "empty"),
        (" debian", "contains a space"),
        ("Debian", "lowercase"),
        # docker 23+ reads an uppercase first component as a host, 20.10 as a path
        ("Foo/bar", "repository name must be lowercase"),
        # docker 23+ only; the shared grammar takes what every engine in service takes
        ("[::1]:5000/x:y", "IPv6 registry addresses are not accepted"),
        (f"debian@sha512:{'a' * 128}", "unsupported digest algorithm 'sha512'"),
        ("a" * 64, "image ID"),
        ("a" * 238, "repository name is too long"),
        ("debian:", "invalid tag"),
        ("debian:-x", "invalid tag"),
        ("debian@sha256:abc", "digest"),
        (f"debian@md5:{'a' * 32}", "digest"),
        ("a//b", "invalid repository path component"),
        ("-x", "invalid repository path component"),
        ("host:port/x", "invalid registry host"),
        ("x/", "invalid repository path component"),
        (":tag", "no repository"),
    ],
)
def test_malformed_references_are_named(text: str, why: str) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_reference(text)
    message = str(caught.value)
    assert f"malformed image reference {text!r}" in message
    assert why in message

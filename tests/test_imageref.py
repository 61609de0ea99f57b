"""The one image-reference grammar (mender_docker/imageref.py), case by case, and its users.

TABLE gives, for each tricky reference, what the shared parser makes of it (or the
reason it refuses it) and whether docker accepts it (`docker create --pull=never`:
"No such image" means the CLI and the daemon both understood the reference,
"invalid reference format" that one did not; no registry is involved). The `real`
test checks that column against the local docker, and that nothing we accept is
refused by it. `None` in the docker column: the answer depends on the engine's
version (docker 20.10 refuses, newer ones accept), or docker reads the text as
something else (an image ID), or it cannot be passed (the empty string).

The other tests check that the three users agree with the parser on every case:
spec (the meta-data's `containers`), registry.parse_reference (the workstation)
and module.policy.registry_host (the device's allowed_registries).
"""

from __future__ import annotations

import json
import subprocess
from typing import List, NamedTuple, Optional, Tuple, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mender_docker import imageref
from mender_docker.errors import RegistryError
from mender_docker.imageref import ImageReferenceError, parse_image_reference
from mender_docker.module.policy import (
    Policy,
    PolicyError,
    check,
    policy_from_settings,
    registry_host,
)
from mender_docker.registry import parse_reference
from mender_docker.runargs import parse as parse_run_args
from mender_docker.spec import (
    PINNED_REF_RE,
    MetadataError,
    PlannedContainer,
    parse_metadata_json,
    split_pinned,
)

D = "sha256:" + "0123456789abcdef" * 4
HEX64 = "a" * 64


class Parsed(NamedTuple):
    domain: str
    path: str
    tag: Optional[str] = None
    digest: Optional[str] = None


class Case(NamedTuple):
    text: str
    expect: Union[Parsed, str]  # the parse, or a fragment of the reason it is refused
    docker: Optional[bool]  # does the docker daemon accept it (None: depends, see above)


TABLE: List[Case] = [
    # Docker Hub and its normalisation
    Case("debian", Parsed("docker.io", "library/debian"), True),
    Case("debian:12", Parsed("docker.io", "library/debian", "12"), True),
    Case(f"debian@{D}", Parsed("docker.io", "library/debian", None, D), True),
    Case(f"debian:12@{D}", Parsed("docker.io", "library/debian", "12", D), True),
    Case("user/app", Parsed("docker.io", "user/app"), True),
    Case("docker.io/x", Parsed("docker.io", "library/x"), True),
    Case("docker.io/library/x", Parsed("docker.io", "library/x"), True),
    Case("docker.io/library", Parsed("docker.io", "library/library"), True),
    Case("index.docker.io/x", Parsed("docker.io", "library/x"), True),
    Case("index.docker.io/org/x", Parsed("docker.io", "org/x"), True),
    # the Hub's API host is another registry to docker: no library/, no mirrors
    Case("registry-1.docker.io/x", Parsed("registry-1.docker.io", "x"), True),
    Case("INDEX.DOCKER.IO/x", Parsed("INDEX.DOCKER.IO", "x"), True),
    # what makes the first component a domain: ".", ":" or exactly "localhost"
    Case("foo:5000/bar", Parsed("foo:5000", "bar"), True),
    Case("localhost/x", Parsed("localhost", "x"), True),
    Case("localhost:5000/x/y:t", Parsed("localhost:5000", "x/y", "t"), True),
    Case("localhost", Parsed("docker.io", "library/localhost"), True),
    Case("localhost:5000", Parsed("docker.io", "library/localhost", "5000"), True),
    Case("example.com:5000", Parsed("docker.io", "library/example.com", "5000"), True),
    Case("192.168.0.1:80", Parsed("docker.io", "library/192.168.0.1", "80"), True),
    Case("127.0.0.1:5000/a/b", Parsed("127.0.0.1:5000", "a/b"), True),
    Case("Registry.Example.com/app", Parsed("Registry.Example.com", "app"), True),
    Case("foo:99999/x", Parsed("foo:99999", "x"), True),  # the grammar bounds no port
    Case("a.b-c/d__e/f", Parsed("a.b-c", "d__e/f"), True),
    # uppercase: a domain may have it, a path may not; docker 23+ reads an uppercase
    # first component as a host, docker 20.10 as a path
    Case("Foo/bar", "repository name must be lowercase", None),
    Case("LOCALHOST/x", "repository name must be lowercase", None),
    Case("foo/Bar", "repository name must be lowercase", False),
    Case("a.b/C", "repository name must be lowercase", False),
    Case("A", "repository name must be lowercase", False),
    # IPv6: docker 23+ only
    Case("[::1]:5000/x", "IPv6 registry addresses are not accepted", None),
    Case("[::1]/x", "IPv6 registry addresses are not accepted", None),
    # hosts
    Case("foo_bar:5000/x", "invalid registry host 'foo_bar:5000'", False),
    Case("foo:/x", "invalid registry host", False),
    Case("-foo.com/x", "invalid registry host", False),
    Case("a_b.c/d", "invalid registry host 'a_b.c'", True),  # docker: a path on no registry
    # path components
    Case("a__b/c-d.e_f", Parsed("docker.io", "a__b/c-d.e_f"), True),
    Case("a--b", Parsed("docker.io", "library/a--b"), True),
    Case("a___b", "invalid repository path component 'a___b'", False),
    Case("a..b", "invalid repository path component", False),
    Case("a._b", "invalid repository path component", False),
    Case("a//b", "invalid repository path component ''", False),
    Case("x/", "invalid repository path component ''", False),
    Case("-x", "invalid repository path component '-x'", False),
    Case("_x", "invalid repository path component", False),
    Case("app;rm", "invalid repository path component", False),
    Case("x:t:u", "invalid repository path component 'x:t'", False),
    # tags
    Case("x:T.a_g-1", Parsed("docker.io", "library/x", "T.a_g-1"), True),
    Case("x:" + "t" * 128, Parsed("docker.io", "library/x", "t" * 128), True),
    Case("x:" + "t" * 129, "invalid tag", False),
    Case("x:", "invalid tag ''", False),
    Case("x:-t", "invalid tag '-t'", False),
    Case("x:.t", "invalid tag", False),
    Case(":tag", "no repository name", False),
    # digests
    Case(f"x:t@{D}", Parsed("docker.io", "library/x", "t", D), True),
    Case(f"x@sha256:{'A' * 64}", "a sha256 digest is 64 lowercase hex digits", False),
    Case(f"x@sha256:{'a' * 63}", "a sha256 digest is 64 lowercase hex digits", False),
    Case(f"x@sha256:{'a' * 65}", "a sha256 digest is 64 lowercase hex digits", False),
    Case("x@sha256:abc", "invalid digest 'sha256:abc'", False),
    Case(f"x@sha512:{'a' * 128}", "unsupported digest algorithm 'sha512' (only sha256)", True),
    Case(f"x@md5:{'a' * 32}", "unsupported digest algorithm 'md5'", False),
    Case(f"x@{D}@{D}", "invalid digest", False),
    Case("x@", "invalid digest ''", False),
    Case(f"@{D}", "no repository name", False),
    Case(f"x@{D}:t", "invalid digest", False),  # the tag goes before the digest
    # image IDs: 64 hex alone is an ID (docker looks it up as one), not a name
    Case(HEX64, "64 hex characters are an image ID", None),
    Case(f"{HEX64}:t", Parsed("docker.io", f"library/{HEX64}", "t"), True),
    Case(f"docker.io/{HEX64}", Parsed("docker.io", f"library/{HEX64}"), True),
    # length: docker.io/library/ + 237 = 255 characters (newer docker counts the path alone)
    Case("a" * 237, Parsed("docker.io", "library/" + "a" * 237), True),
    Case("a" * 238, "repository name is too long (256 characters", None),
    Case("localhost/" + "a" * 245, Parsed("localhost", "a" * 245), True),
    Case("localhost/" + "a" * 246, "repository name is too long", None),
    Case("a" * 100_000, "repository name is too long", False),
    # characters
    Case("", "empty image reference", None),
    Case(" debian", "contains a space", False),
    Case("debian ", "contains a space", False),
    Case("debian\n", "control", False),
    Case("deb\x00ian", "control", None),  # no argument can hold a NUL
    Case("regіstry.example.com/app", "non-ASCII", False),  # a Cyrillic і
    Case("x:١", "non-ASCII", False),
]
IDS = [repr(case.text[:40]) for case in TABLE]


def test_the_table_has_each_text_once() -> None:
    assert len({case.text for case in TABLE}) == len(TABLE)


@pytest.mark.parametrize("case", TABLE, ids=IDS)
def test_the_shared_parser(case: Case) -> None:
    if isinstance(case.expect, str):
        with pytest.raises(ImageReferenceError) as info:
            parse_image_reference(case.text)
        message = str(info.value)
        assert case.expect in message
        assert "\n" not in message and len(message) < 300
        return
    ref = parse_image_reference(case.text)
    assert Parsed(ref.domain, ref.path, ref.tag, ref.digest) == case.expect
    assert str(ref) == case.text
    name = case.text.partition("@")[0]
    assert ref.name == (name if ref.tag is None else name[: -len(ref.tag) - 1])
    assert ref.host == imageref.normalise_host(ref.domain)
    assert ref.canonical == f"{ref.domain}/{ref.path}"


def _users_agree(text: str) -> None:
    """spec, registry.parse_reference and policy.registry_host say what the parser says."""
    try:
        ref = parse_image_reference(text)
        reason = None
    except ImageReferenceError as exc:
        ref, reason = None, str(exc)
    # the workstation's registry client
    if ref is None:
        with pytest.raises(RegistryError) as info:
            parse_reference(text)
        assert f": {reason}" in str(info.value)
        assert str(info.value).startswith("malformed image reference")
    else:
        registry_ref = parse_reference(text)
        assert (registry_ref.name, registry_ref.domain, registry_ref.path) == (
            ref.name,
            ref.domain,
            ref.path,
        )
        assert (registry_ref.tag, registry_ref.digest) == (ref.tag, ref.digest)
        assert registry_ref.repository == ref.path
        assert registry_ref.registry == (
            "registry-1.docker.io" if ref.domain == "docker.io" else ref.domain
        )
    # the device policy
    if ref is None:
        with pytest.raises(ImageReferenceError):
            registry_host(text)
    else:
        assert registry_host(text) == ref.host
    # the meta-data contract, on the generator and on the device
    if ref is None or ref.digest is None:
        with pytest.raises(MetadataError) as caught:
            split_pinned(text)
        assert "not pinned by digest" in str(caught.value)
        if reason is not None:
            assert str(caught.value).endswith(f": {reason}")
        else:
            assert PINNED_REF_RE.fullmatch(text) is None
    else:
        assert split_pinned(text) == (ref.name, ref.digest)
        assert PINNED_REF_RE.fullmatch(text)
        meta = parse_metadata_json(json.dumps({"containers": [text], "names": ["web"]}))
        item = meta.plan()[0]
        assert (item.image, item.repository, item.digest) == (text, ref.name, ref.digest)
        # the device policy on that planned container: its registry is allowed, no other
        check([item], Policy(allowed_registries=(ref.host,)))
        with pytest.raises(PolicyError, match="allowed_registries"):
            check([item], Policy(allowed_registries=("elsewhere.example",)))


def _regex_agrees(text: str) -> None:
    """REFERENCE_RE (and so spec.PINNED_REF_RE) is the parser's syntax: it differs only
    on the length limit and image IDs."""
    try:
        parse_image_reference(text)
        accepted = True
    except ImageReferenceError as exc:
        accepted = False
        if "too long" in str(exc) or "image ID" in str(exc):
            return
    assert (imageref.REFERENCE_RE.fullmatch(text) is not None) == accepted, text


@pytest.mark.parametrize("case", TABLE, ids=IDS)
def test_the_three_users_agree(case: Case) -> None:
    _users_agree(case.text)
    _regex_agrees(case.text)
    if "@" not in case.text:
        _users_agree(f"{case.text}@{D}")
        _regex_agrees(f"{case.text}@{D}")


ALPHABET = st.sampled_from(
    list("abcxyzABZ0129._-:/@[] \n") + ["sha256:", D, "localhost", "docker.io", "__", "library/"]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(ALPHABET, max_size=12).map("".join))
def test_the_three_users_agree_on_generated_references(text: str) -> None:
    _users_agree(text)
    _regex_agrees(text)


def test_the_policy_refuses_a_malformed_reference_it_is_given_anyway() -> None:
    # spec refuses it first; the policy still fails closed, in one line
    run = parse_run_args([])
    item = PlannedContainer(f"Foo/bar@{D}", "web", run.render(), run)
    policy = policy_from_settings({"allowed_registries": "docker.io, foo"})
    with pytest.raises(PolicyError) as info:
        check([item], policy)
    assert "malformed image reference: repository name must be lowercase" in str(info.value)


def _docker_accepts(text: str) -> bool:
    """Whether docker understands `text` as an image reference: `docker create
    --pull=never` on an image nobody has says "No such image", on a malformed reference
    "invalid reference format" (or names the digest's fault). The CLI parses it with its
    reference library, then the daemon with its own: both must accept. No registry."""
    done = subprocess.run(
        ["docker", "create", "--pull=never", "--", text],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode == 0:  # an image of that name exists here after all
        subprocess.run(["docker", "rm", done.stdout.strip()], capture_output=True, timeout=60)
        return True
    err = done.stderr.lower()
    if "no such image" in err:
        return True
    assert any(word in err for word in ("invalid", "unsupported", "must ")), done.stderr
    return False


def test_the_table_against_the_docker_daemon(docker_engine: None) -> None:
    wrong: List[Tuple[str, bool, object]] = []
    for case in TABLE:
        if case.docker is None and not isinstance(case.expect, Parsed):
            continue
        accepted = _docker_accepts(case.text)
        if isinstance(case.expect, Parsed) and not accepted:
            wrong.append((case.text[:60], accepted, "we accept what docker refuses"))
        elif case.docker is not None and accepted != case.docker:
            wrong.append((case.text[:60], accepted, f"the table says {case.docker}"))
    assert wrong == []

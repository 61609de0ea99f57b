"""Malformed meta-data, case by case: each is refused by spec.parse_metadata_json with a
MetadataError whose one-line message names the problem."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

import pytest

from mender_docker.spec import MetadataError, parse_metadata_json

DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGE = f"registry.example.com/app@{DIGEST}"
OTHER = f"registry.example.com/db@{DIGEST}"


def doc(**extra: Any) -> str:
    """A valid document with `extra` keys replaced or added."""
    base: Dict[str, Any] = {"containers": [IMAGE], "run_args": ""}
    base.update(extra)
    return json.dumps(base)


# (case id, meta-data text, fragment the error message must contain)
CASES: List[Tuple[str, str, str]] = [
    # not JSON, or not an object
    ("empty text", "", "not valid JSON"),
    ("truncated", doc()[:-3], "not valid JSON"),
    ("trailing garbage", doc() + "x", "not valid JSON"),
    ("single quotes", "{'containers': []}", "not valid JSON"),
    ("json array at top", json.dumps([IMAGE]), "must be a JSON object"),
    ("json string at top", json.dumps(IMAGE), "must be a JSON object"),
    ("json null", "null", "must be a JSON object"),
    ("json number", "42", "must be a JSON object"),
    ("nested 100k deep", "[" * 100_000 + "]" * 100_000, "not valid JSON"),
    ("raw control character", doc(run_args="-e A=1").replace("A=1", "A=\u00011"), "not valid JSON"),
    (
        "integer with 5000 digits",
        '{"containers": [], "stop_timeout": ' + "9" * 5000 + "}",
        "not valid JSON",
    ),
    # containers
    ("missing containers", json.dumps({"run_args": "-d"}), "no 'containers' key"),
    ("containers null", doc(containers=None), "'containers' must be a list of strings"),
    ("containers a string", doc(containers=IMAGE), "'containers' must be a list of strings"),
    (
        "containers an object",
        doc(containers={"a": IMAGE}),
        "'containers' must be a list of strings",
    ),
    ("containers empty", doc(containers=[]), "'containers' is empty"),
    (
        "containers list of lists",
        doc(containers=[[IMAGE]]),
        "'containers' must be a list of strings",
    ),
    (
        "containers holds a number",
        doc(containers=[IMAGE, 3]),
        "'containers' must be a list of strings",
    ),
    ("containers holds null", doc(containers=[None]), "'containers' must be a list of strings"),
    (
        "not pinned (tag only)",
        doc(containers=["registry.example.com/app:1.0"]),
        "not pinned by digest",
    ),
    ("not pinned (bare name)", doc(containers=["busybox"]), "not pinned by digest"),
    (
        "uppercase repository",
        doc(containers=[f"registry.example.com/App@{DIGEST}"]),
        "not pinned by digest",
    ),
    ("digest too short", doc(containers=[f"app@sha256:{'a' * 63}"]), "not pinned by digest"),
    ("digest too long", doc(containers=[f"app@sha256:{'a' * 65}"]), "not pinned by digest"),
    ("digest uppercase hex", doc(containers=[f"app@sha256:{'A' * 64}"]), "not pinned by digest"),
    (
        "digest other algorithm",
        doc(containers=[f"app@sha512:{'a' * 128}"]),
        "unsupported digest algorithm 'sha512' (only sha256)",
    ),
    ("reference with trailing newline", doc(containers=[IMAGE + "\n"]), "not pinned by digest"),
    ("reference with leading space", doc(containers=[" " + IMAGE]), "not pinned by digest"),
    (
        "reference with NUL",
        doc(containers=[IMAGE.replace("app", "a\u0000pp")]),
        "not pinned by digest",
    ),
    (
        "reference with shell metacharacters",
        doc(containers=[f"app;rm -rf /@{DIGEST}"]),
        "not pinned by digest",
    ),
    ("reference with $(...)", doc(containers=[f"$(reboot)/app@{DIGEST}"]), "not pinned by digest"),
    (
        "reference with unicode homoglyph",
        doc(containers=[f"regіstry.example.com/app@{DIGEST}"]),
        "not pinned by digest",
    ),
    (
        "reference of 100k characters",
        doc(containers=["a" * 100_000 + "@" + DIGEST]),
        "repository name is too long",
    ),
    # the shared grammar (imageref.py) takes what docker 20.10 and 23+ both take
    (
        "uppercase first component (a host to docker 23+, a path to 20.10)",
        doc(containers=[f"MyHost/app@{DIGEST}"]),
        "not pinned by digest (repo[:tag]@sha256:<64 hex>): repository name must be lowercase",
    ),
    (
        "IPv6 registry (docker 23+ only)",
        doc(containers=[f"[::1]:5000/app@{DIGEST}"]),
        "IPv6 registry addresses are not accepted",
    ),
    (
        "name of 256 characters with docker.io/library/ (docker 20.10 counts them)",
        doc(containers=["a" * 238 + "@" + DIGEST]),
        "repository name is too long (256 characters as docker.io/..., at most 255)",
    ),
    ("invalid registry host", doc(containers=[f"a_b.c/app@{DIGEST}"]), "invalid registry host"),
    ("tag after the digest", doc(containers=[f"app@{DIGEST}:1"]), "invalid digest"),
    # run_args
    ("run_args a list", doc(run_args=["-d"]), "'run_args' must be a string"),
    ("run_args a number", doc(run_args=1), "'run_args' must be a string"),
    ("run_args an object", doc(run_args={"d": True}), "'run_args' must be a string"),
    ("unbalanced double quote", doc(run_args='-e "A=1'), "run_args: cannot split run arguments"),
    ("unbalanced single quote", doc(run_args="-e 'A=1"), "run_args: cannot split run arguments"),
    ("trailing backslash", doc(run_args="-e A=\\"), "run_args: cannot split run arguments"),
    ("NUL in run_args", doc(run_args="-e A=\u0000"), "run_args: run arguments contain a NUL"),
    ("lone surrogate in run_args", doc(run_args="-e A=\ud800"), "unpaired surrogate"),
    (
        "--name without value",
        doc(run_args="-d --name"),
        "option '--name' needs a value",
    ),
    ("--name= empty", doc(run_args="--name="), "'--name' in run arguments needs a value"),
    # names and clashes
    (
        "names too short",
        doc(containers=[IMAGE, OTHER], names=["a"]),
        "'names' has 1 entries, 'containers' has 2",
    ),
    ("names too long", doc(names=["a", "b"]), "'names' has 2 entries, 'containers' has 1"),
    ("names not a list", doc(names="web"), "'names' must be a list of strs"),
    ("names list of lists", doc(names=[["web"]]), "'names' must be a list of strs"),
    ("name with a space", doc(names=["my web"]), "invalid container name 'my web'"),
    ("name with a slash", doc(names=["../../etc"]), "invalid container name"),
    ("name with a newline", doc(names=["web\n"]), "invalid container name 'web\\n'"),
    ("name starting with a dash", doc(names=["-web"]), "invalid container name '-web'"),
    ("name of 129 characters", doc(names=["a" * 129]), "invalid container name"),
    ("name with unicode", doc(names=["wéb"]), "invalid container name"),
    (
        "explicit name clash",
        doc(containers=[IMAGE, OTHER], names=["web", "web"]),
        "container name 'web' is used by both",
    ),
    (
        "clash via --name in run_args",
        doc(containers=[IMAGE, OTHER], run_args="--name web"),
        "container name 'web' is used by both",
    ),
    (
        "clash via --name= in container_args",
        doc(containers=[IMAGE, OTHER], names=["web", ""], container_args=["", "--name=web"]),
        "container name 'web' is used by both",
    ),
    (
        "clash with a derived name",
        doc(containers=[IMAGE, IMAGE, IMAGE], names=["", "", "app-2"]),
        "container name 'app-2' is used by both",
    ),
    ("bad name via --name", doc(run_args="--name 'a;b'"), "invalid container name 'a;b'"),
    # container_args
    (
        "container_args length mismatch",
        doc(container_args=["-d", "-d"]),
        "'container_args' has 2 entries, 'containers' has 1",
    ),
    (
        "container_args holds a number",
        doc(container_args=[1]),
        "'container_args' must be a list of strs",
    ),
    (
        "container_args unbalanced quote",
        doc(container_args=["-e 'x"]),
        "container_args[0]: cannot split run arguments",
    ),
    (
        "container_args NUL",
        doc(container_args=["-e \u0000"]),
        "container_args[0]: run arguments contain a NUL",
    ),
    # image_ids and image_sizes
    (
        "image_ids not a digest",
        doc(image_ids=["abc"]),
        "'image_ids' entry 'abc' is not sha256:<64 hex>",
    ),
    ("image_ids trailing newline", doc(image_ids=[DIGEST + "\n"]), "is not sha256:<64 hex>"),
    ("image_ids length mismatch", doc(image_ids=[DIGEST, DIGEST]), "'image_ids' has 2 entries"),
    ("image_sizes negative", doc(image_sizes=[-1]), "'image_sizes' entries must be from 0 to"),
    ("image_sizes float", doc(image_sizes=[1.5]), "'image_sizes' must be a list of ints"),
    ("image_sizes bool", doc(image_sizes=[True]), "'image_sizes' must be a list of ints"),
    ("image_sizes string", doc(image_sizes=["10"]), "'image_sizes' must be a list of ints"),
    (
        "image_sizes overflowing float",
        doc().replace('""}', '"", "image_sizes": [1e400]}'),
        "'image_sizes' must be a list of ints",
    ),
    # timeouts
    (
        "negative timeout",
        doc(health_timeout=-1),
        "'health_timeout' must be a number of seconds from 0 to",
    ),
    (
        "bool as number",
        doc(stop_timeout=True),
        "'stop_timeout' must be a number of seconds from 0 to",
    ),
    (
        "timeout as string",
        doc(health_window="5"),
        "'health_window' must be a number of seconds from 0 to",
    ),
    (
        "timeout as list",
        doc(health_window=[5]),
        "'health_window' must be a number of seconds from 0 to",
    ),
    (
        "NaN timeout",
        doc().replace('""}', '"", "health_timeout": NaN}'),
        "'health_timeout' must be a number of seconds from 0 to",
    ),
    (
        "Infinity timeout",
        doc().replace('""}', '"", "stop_timeout": Infinity}'),
        "'stop_timeout' must be a number of seconds from 0 to",
    ),
    (
        "-Infinity timeout",
        doc().replace('""}', '"", "stop_timeout": -Infinity}'),
        "'stop_timeout' must be a number of seconds from 0 to",
    ),
    # issue 10 item 14: bounds on every number and string
    (
        "400-digit timeout",
        doc().replace('""}', '"", "stop_timeout": ' + "9" * 400 + "}"),
        "'stop_timeout' must be a number of seconds from 0 to 3600",
    ),
    ("timeout 3e6", doc(health_timeout=3e6), "'health_timeout' must be a number of seconds"),
    ("image size 2**60", doc(image_sizes=[2**60]), "'image_sizes' entries must be from 0 to"),
    (
        "1001 containers",
        doc(containers=[IMAGE] * 1001),
        "'containers' lists 1001 images, at most 1000",
    ),
    ("run_args of 200 KB", doc(run_args="-e A=" + "x" * 200_000), "at most 131072"),
    (
        "container_args of 1.2 MB in all",
        doc(containers=[IMAGE] * 10, container_args=["-e A=" + "x" * 120_000] * 10),
        "more than 1048576 characters in all",
    ),
    ("unicode tag", doc(containers=[f"registry.example.com/app:١@{DIGEST}"]), "not pinned"),
    # what no device runs (spec.refuse_always)
    ("--rm", doc(run_args="--rm"), "'--rm' is never allowed"),
    ("namespace label", doc(run_args="-l io.mender.docker.managed=0"), "are the module's own"),
    ("positional", doc(run_args="-e A=1 busybox"), "positional argument 'busybox'"),
    ("unknown option", doc(run_args="--bogus"), "unknown option '--bogus'"),
    (
        "offline --pull=always",
        doc(run_args="--pull=always", images_file="images.tar", image_ids=[DIGEST]),
        "would fetch the image from a registry",
    ),
    # flatness: Mender meta-data allows no nested objects
    ("unknown key with an object", doc(extra={"a": 1}), "'extra': nested objects are not allowed"),
    (
        "unknown key with a list of lists",
        doc(extra=[[1]]),
        "'extra': nested objects are not allowed",
    ),
    (
        "unknown key with a list of objects",
        doc(extra=[{}]),
        "'extra': nested objects are not allowed",
    ),
]


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30
    assert len({case_id for case_id, _, _ in CASES}) == len(CASES)


def test_unknown_keys_warn_at_most_ten_times() -> None:
    meta = parse_metadata_json(doc(**{f"k{i}": i for i in range(50)}))
    assert len(meta.warnings) == 11 and "and 40 more" in meta.warnings[-1]


@pytest.mark.parametrize(("text", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_metadata_is_refused(text: str, fragment: str) -> None:
    with pytest.raises(MetadataError) as info:
        parse_metadata_json(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message  # one line, whatever the input held


def test_the_valid_base_document_parses() -> None:
    # Every case above differs from this one by the broken part only.
    meta = parse_metadata_json(doc())
    assert [p.name for p in meta.plan()] == ["app"]


def test_unknown_keys_are_warnings_not_errors() -> None:
    meta = parse_metadata_json(doc(future_key="x", another=[1, "two"], number=3.5))
    assert meta.containers == (IMAGE,)
    assert sorted(meta.warnings) == [
        "unknown meta-data key 'another' ignored",
        "unknown meta-data key 'future_key' ignored",
        "unknown meta-data key 'number' ignored",
    ]
    assert parse_metadata_json(doc()).warnings == ()


def test_null_optional_keys_mean_absent() -> None:
    meta = parse_metadata_json(doc(run_args=None, names=None, stop_timeout=None))
    assert meta.run_args == "" and meta.names is None and meta.stop_timeout is None


def test_duplicate_keys_last_one_wins_like_json_loads() -> None:
    # The Go client's decoder also keeps the last value; both sides see the same document.
    text = '{"containers": ["not-pinned"], "containers": [' + json.dumps(IMAGE) + "]}"
    assert parse_metadata_json(text).containers == (IMAGE,)

"""Property-based fuzzing of the meta-data parser (and the policy that reads its plan).

Whatever bytes an artifact carries, `parse_metadata_json` either accepts them or
raises MetadataError (never anything else); whatever it accepts plans into
argument lists (no shell) with valid, unique container names; and the policy
check over an accepted plan raises PolicyError or nothing.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mender_docker.module.policy import PolicyError, check, find_violations, policy_from_settings
from mender_docker.spec import (
    KNOWN_KEYS,
    NAME_RE,
    PINNED_REF_RE,
    DockerMetadata,
    MetadataError,
    parse_metadata_json,
)
from tests.hostile.planning import planned

# A few seconds in all (raise MENDER_DOCKER_FUZZ_EXAMPLES for a soak run); no example
# database left behind in the checkout.
FUZZ = settings(
    max_examples=int(os.environ.get("MENDER_DOCKER_FUZZ_EXAMPLES", "120")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
POLICY = policy_from_settings(
    {"deny_run_args": "dangerous", "allowed_registries": "registry.example.com,docker.io"}
)
DIGESTS = st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: "sha256:" + h)
REPOS = st.sampled_from(
    ["busybox", "library/busybox", "registry.example.com/app", "127.0.0.1:5000/a/b",
     "localhost/x_y", "docker.io/org/app-1", "Host.Example/app", "a.b-c/d__e/f"]
)  # fmt: skip
TAGS = st.one_of(st.just(""), st.from_regex(r"\A:[\w][\w.-]{0,10}\Z", fullmatch=True))
PINNED = st.builds(lambda repo, tag, digest: f"{repo}{tag}@{digest}", REPOS, TAGS, DIGESTS)
# Shell metacharacters, quotes and option-like words are what run arguments get wrong.
ARG_ALPHABET = st.sampled_from(
    list(" \t\n'\"\\$`;|&<>(){}*?!#~=:,/.-") + ["--name", "-v", "/", "x", "web", "-", "\x00", "é"]
)
# Whole option words, so that a fair share of the documents parse (a value may
# still carry any metacharacter), mixed with single characters.
OPTION_WORDS = st.sampled_from(
    ["-e A=1", "--label x=$(id)", "-p 80:80", "-itv /:/h", "--name web", "-e 'a; b'",
     "--privileged", "-l ';'", "--net=host", "-dt", "--restart always", " "]
)  # fmt: skip
RUN_ARGS = st.lists(st.one_of(OPTION_WORDS, ARG_ALPHABET), max_size=30).map(" ".join)
NAMES = st.one_of(
    st.just(""), st.from_regex(r"\A[a-z][a-z0-9_.-]{0,12}\Z", fullmatch=True), st.text()
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(), RUN_ARGS, PINNED,
)  # fmt: skip
JSONISH = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KNOWN_KEYS), st.text()), children, max_size=4),
    ),
    max_leaves=12,
)


@st.composite
def valid_documents(draw: st.DrawFn) -> Dict[str, Any]:
    """Documents built from the contract's own parts: mostly valid, sometimes not."""
    containers = draw(st.lists(PINNED, min_size=1, max_size=4))
    count = len(containers)
    doc: Dict[str, Any] = {"containers": containers, "run_args": draw(RUN_ARGS)}
    if draw(st.booleans()):
        doc["names"] = draw(st.lists(NAMES, min_size=count, max_size=count))
    if draw(st.booleans()):
        doc["container_args"] = draw(st.lists(RUN_ARGS, min_size=count, max_size=count))
    if draw(st.booleans()):
        doc["image_ids"] = draw(st.lists(DIGESTS, min_size=count, max_size=count))
    if draw(st.booleans()):
        doc["image_sizes"] = draw(
            st.lists(st.integers(min_value=0, max_value=2**50), min_size=count, max_size=count)
        )
    for key in ("health_timeout", "health_window", "stop_timeout"):
        if draw(st.booleans()):
            doc[key] = draw(st.one_of(st.integers(0, 3600), st.floats(0, 3600)))
    return doc


@st.composite
def mutated_documents(draw: st.DrawFn) -> str:
    """A document, then one structural mutation and a few character-level ones."""
    doc = draw(valid_documents())
    key = draw(st.sampled_from(sorted(set(doc) | set(KNOWN_KEYS) | {"extra"})))
    action = draw(st.sampled_from(["keep", "delete", "replace"]))
    if action == "delete":
        doc.pop(key, None)
    elif action == "replace":
        doc[key] = draw(JSONISH)
    text = json.dumps(doc)
    for _ in range(draw(st.integers(0, 3))):
        if not text:
            break
        pos = draw(st.integers(0, len(text) - 1))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(st.characters(codec="utf-8") | st.sampled_from(list('[]{}",:\\0-')))
        if edit == "insert":
            text = text[:pos] + char + text[pos:]
        elif edit == "delete":
            text = text[:pos] + text[pos + 1 :]
        else:
            text = text[:pos] + char + text[pos + 1 :]
    return text


def parse_or_none(text: str) -> DockerMetadata | None:
    """The property itself: MetadataError or success, nothing else ever escapes."""
    try:
        return parse_metadata_json(text)
    except MetadataError as exc:
        assert str(exc) and "\n" not in str(exc), repr(str(exc))
        return None


def assert_plan_is_safe(meta: DockerMetadata) -> None:
    planned = meta.plan()
    assert len(planned) == len(meta.containers)
    names = [item.name for item in planned]
    assert len(set(names)) == len(names)
    for item in planned:
        assert NAME_RE.fullmatch(item.name), item.name
        assert PINNED_REF_RE.fullmatch(item.image), item.image
        assert isinstance(item.args, tuple)
        assert all(isinstance(arg, str) and "\x00" not in arg for arg in item.args)
        for arg in item.args:  # what subprocess will do with it must not fail
            arg.encode("utf-8")
        assert "--name" not in item.args and not any(a.startswith("--name=") for a in item.args)
    # Accepted meta-data is stable: what the generator writes back parses the same.
    again = parse_metadata_json(meta.to_json())
    assert again == meta and again.plan() == planned
    # The policy reads any accepted plan without crashing.
    try:
        check(planned, POLICY)
    except PolicyError as exc:
        assert exc.violations and "\n" not in str(exc)


@FUZZ
@given(st.text())
def test_any_text(text: str) -> None:
    meta = parse_or_none(text)
    if meta is not None:
        assert_plan_is_safe(meta)


@FUZZ
@given(JSONISH)
def test_any_json_value(value: Any) -> None:
    meta = parse_or_none(json.dumps(value))
    if meta is not None:
        assert_plan_is_safe(meta)


@FUZZ
@given(st.dictionaries(st.sampled_from(KNOWN_KEYS + ("extra",)), JSONISH, min_size=1))
def test_objects_with_known_keys_and_random_values(value: Dict[str, Any]) -> None:
    meta = parse_or_none(json.dumps(value))
    if meta is not None:
        assert_plan_is_safe(meta)


@FUZZ
@given(valid_documents())
def test_documents_from_the_contracts_parts(doc: Dict[str, Any]) -> None:
    meta = parse_or_none(json.dumps(doc))
    if meta is not None:
        assert_plan_is_safe(meta)
        assert list(meta.containers) == doc["containers"]


@FUZZ
@given(mutated_documents())
def test_mutated_documents(text: str) -> None:
    meta = parse_or_none(text)
    if meta is not None:
        assert_plan_is_safe(meta)


@FUZZ
@given(st.lists(st.one_of(RUN_ARGS, st.text(), st.sampled_from(["-v", "--mount", "--", "-itv"]))))
def test_policy_scans_any_argv(args: Sequence[str]) -> None:
    try:
        plan = planned(args)
    except MetadataError as exc:
        assert "\n" not in str(exc)
        return
    for violation in find_violations(plan, POLICY):
        assert violation.rule and "\n" not in str(violation)


def test_the_fuzzers_reach_acceptance() -> None:
    # A fuzzer that never produces an accepted document tests only the error path.
    accepted: List[DockerMetadata] = []

    @settings(max_examples=60, deadline=None, database=None, derandomize=True)
    @given(valid_documents())
    def collect(doc: Dict[str, Any]) -> None:
        meta = parse_or_none(json.dumps(doc))
        if meta is not None:
            accepted.append(meta)

    collect()
    assert accepted, "valid_documents() never produced an accepted document"
    assert any(len(m.containers) > 1 for m in accepted)

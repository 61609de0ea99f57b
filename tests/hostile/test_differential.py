"""Differential test: our reading of `run` arguments against the real engines' (issues 10, 19).

A few hundred generated argvs per engine through the oracle in differential.py
(read its docstring); bench/oracle_bench.py runs the same machinery on 10,000+.
The table checks need no engine.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Iterator

import pytest

from mender_docker.runopts import OPTIONS
from tests.hostile.differential import (
    CASES,
    FEATURES,
    TABLE_LEFT_OUT,
    TABLE_VALUES,
    Case,
    Engine,
    judge_ours,
    run_differential,
)
from tests.podman import fixtures as engine_fixtures
from tests.realstack import ImageFactory, PodmanStore, unique

podman_store = engine_fixtures.podman_store


@pytest.fixture(scope="module")
def image(image_factory: ImageFactory) -> str:
    return image_factory.build(unique("differential"), cmd=["sleep", "3600"])


@pytest.fixture
def docker(docker_engine: None, image: str, tmp_path: Path) -> Iterator[Engine]:
    engine = Engine("docker", tmp_path)
    try:
        engine.setup(image)
        yield engine
    finally:
        engine.cleanup()


@pytest.fixture
def podman(podman_store: PodmanStore, image: str, tmp_path: Path) -> Iterator[Engine]:
    engine = Engine("podman", tmp_path, podman_store)
    try:
        engine.setup(image)
        yield engine
    finally:
        engine.cleanup()


def check(engine: Engine) -> None:
    outcome = run_differential(engine, CASES[engine.name])
    assert outcome.compared > CASES[engine.name] // 3, "too few argvs reached the comparison"
    assert not outcome.failures, "\n".join(outcome.failures)


def test_docker_creates_what_describe_says(docker: Engine) -> None:
    check(docker)


def test_podman_creates_what_describe_says(podman: Engine) -> None:
    check(podman)


def test_every_option_of_the_table_is_generated_or_left_out_for_a_reason() -> None:
    names = {name for name, *_ in OPTIONS}
    assert set(TABLE_VALUES) | set(TABLE_LEFT_OUT) == names
    assert not set(TABLE_VALUES) & set(TABLE_LEFT_OUT)


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_non_ascii_in_folded_values_is_refused_by_us(engine: str) -> None:
    """Go folds `İ` to `i` and `ſ` to `S` where Python does not: no engine needed to
    know our side refuses them (the differential test also sees what the engine does)."""
    feature = next(f for f in FEATURES if f.refused_by_us)
    accepted = []
    for spelling in feature.for_engine(engine):
        text = spelling.format(src="/etc", dst="/d", vol="v", peer="peer", ns="x", uniq="u")
        case = Case(spelling, shlex.split(text), shlex.split(text))
        judge_ours(case, engine)
        if feature.refused_by_us not in case.refused:
            accepted.append(f"{spelling}: {case.refused or 'accepted'}")
    assert not accepted, "\n".join(accepted)

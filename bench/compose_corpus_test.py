"""Real-world Compose files against the real `docker compose config`, then the generator.

    MENDER_DOCKER_COMPOSE_CORPUS=DIR python3 -m pytest bench/compose_corpus_test.py

The corpus is not in the repository (the files are other projects' work): DIR holds
one directory per file, as its repository has it (compose.yaml, with the `.env`
beside it if there was one) and source.json naming the repository, the path and the
commit it was taken from; bench/compose_corpus_sources.json lists the 87 we took
from docker/awesome-compose and Haxxnet/Compose-Examples. For each file:

- the reader agrees with Compose: both refuse it, or both read the same project
  (tests/compose/canonical.py: names, mounts, network aliases, health checks and the
  rest), or we refuse a key Compose accepts, in one line naming it;
- the generator turns the project into containers, or refuses in one line naming the
  service or network and the key, for one of the reasons listed in GENERATOR_REFUSALS.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Dict, List

import pytest

from mender_docker.compose import ComposeError, load_project
from mender_docker.gen_compose import application
from tests.compose import canonical
from tests.compose.composetool import compose_config, require_compose

CORPUS = Path(os.environ.get("MENDER_DOCKER_COMPOSE_CORPUS", "/nonexistent"))
CASES = sorted(
    p.name for p in (CORPUS.iterdir() if CORPUS.is_dir() else ()) if (p / "compose.yaml").is_file()
)
ENV = {"HOME": "/home/tester", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

# What the reader refuses although Compose reads it: a link under another name.
READER_REFUSALS = re.compile(r": service '[^']+': links: '[^']+': a link alias")
# What the generator refuses: a build without an image (without --resolver docker),
# a bind of a workstation path, a secret's or config's file relative to the project
# (project files do not travel with the release yet), a secret or config not in a file,
# a network that is not a bridge (or has labels, attachable, an ipam driver).
GENERATOR_REFUSALS = re.compile(
    r"^service '[^']+': build: the device does not build images"
    r"|^service '[^']+': (volumes|secrets|configs)\[\d+\]: bind source '[^']*'"
    r"( is relative|: `~`)"
    r"|^service '[^']+': (secrets|configs)\[\d+\]: '[^']+' is (external|from an env|inline)"
    r"|^network '[^']+': (driver|attachable|ipam)"
)

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def compose_argv() -> List[str]:
    return require_compose()


def test_the_corpus_is_large_and_sourced() -> None:
    assert len(CASES) >= 60
    for name in CASES:
        source: Dict[str, str] = json.loads((CORPUS / name / "source.json").read_text())
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", source["repository"]), name
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]), name
        assert source["path"].endswith((".yml", ".yaml")), name


@pytest.mark.parametrize("name", CASES)
def test_reader_and_generator_on_a_real_file(name: str, compose_argv: List[str]) -> None:
    file = CORPUS / name / "compose.yaml"
    tool = compose_config(compose_argv, file, ENV)
    try:
        project = load_project(str(file), environ=ENV)
    except ComposeError as exc:
        message = str(exc)
        assert "\n" not in message
        if tool.ok:
            assert READER_REFUSALS.search(message), message
        return
    assert tool.ok, f"we read what Compose refuses: {tool.message}"
    assert tool.config is not None
    assert canonical.from_project(project) == canonical.from_tool(tool.config)
    try:
        app = application(project)
    except ComposeError as exc:
        message = str(exc)
        assert "\n" not in message
        assert GENERATOR_REFUSALS.search(message), message
        return
    assert app.services == tuple(s.name for s in project.services)

"""Our reader against the real `docker compose config --format json` (Compose v2).

Each directory of tests/compose/corpus is one case: compose.yaml, maybe a .env and env
files, and maybe a case.json with
    env           the environment both readers get (besides HOME=/home/tester, PATH)
    project_name  given as --project-name / project_name=
    profiles      given as --profile / profiles=
    files         the Compose files, merged in order (default: ["compose.yaml"])
    project_directory  given as --project-directory (relative to the case)
    expect        "ok" (default): both read it and agree;
                  "error": both refuse it;
                  "refused": Compose reads it, we refuse it on purpose (the device cannot).
The tool is required: these tests fail, never skip, without it (see composetool.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from mender_docker.compose import ComposeError, load_project
from tests.compose import canonical
from tests.compose.composetool import compose_config, require_compose

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "compose.yaml").is_file())

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def compose_argv() -> List[str]:
    return require_compose()


def _case(name: str) -> Dict[str, Any]:
    meta = CORPUS / name / "case.json"
    return json.loads(meta.read_text()) if meta.is_file() else {}


def _environ(meta: Dict[str, Any]) -> Dict[str, str]:
    env = {"HOME": "/home/tester", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update(meta.get("env", {}))
    return env


def test_corpus_is_large_enough() -> None:
    valid = [c for c in CASES if _case(c).get("expect", "ok") == "ok"]
    errors = [c for c in CASES if _case(c).get("expect") == "error"]
    assert len(valid) >= 30 and len(errors) >= 10, (len(valid), len(errors))


@pytest.mark.parametrize("name", CASES)
def test_agrees_with_compose(name: str, compose_argv: List[str]) -> None:
    meta = _case(name)
    expect = meta.get("expect", "ok")
    files = [CORPUS / name / f for f in meta.get("files", ["compose.yaml"])]
    env = _environ(meta)
    profiles = meta.get("profiles", [])
    project_name: Optional[str] = meta.get("project_name")
    folder = meta.get("project_directory")
    project_dir = None if folder is None else CORPUS / name / folder

    tool = compose_config(compose_argv, files, env, project_name, profiles, project_dir)
    ours_error: Optional[str] = None
    project = None
    try:
        project = load_project(
            [str(f) for f in files], project_name, profiles, environ=env,
            project_directory=None if project_dir is None else str(project_dir),
        )
    except ComposeError as exc:
        ours_error = str(exc)
    print(f"compose: {'ok' if tool.ok else 'error: ' + tool.message}")
    print(f"ours:    {'ok' if ours_error is None else 'error: ' + ours_error}")

    if expect == "error":
        assert not tool.ok, "compose accepted a case marked as an error"
        assert ours_error is not None, "we accepted what compose refuses: " + tool.message
        assert "\n" not in ours_error
        return
    assert tool.ok, f"compose refused: {tool.message}"
    if expect == "refused":
        assert ours_error is not None, "we accepted what we mean to refuse"
        assert "\n" not in ours_error
        return
    assert ours_error is None, ours_error
    assert project is not None and tool.config is not None
    theirs = canonical.from_tool(tool.config)
    ours = canonical.from_project(project)
    assert ours == theirs

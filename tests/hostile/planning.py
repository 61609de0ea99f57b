"""Planned containers for policy tests, built the way the module builds them."""

from __future__ import annotations

import shlex
from typing import List, Optional, Sequence

from mender_docker.spec import DockerMetadata, PlannedContainer

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"registry.example.com/app@{DIGEST}"


def planned(
    args: Sequence[str], image: str = IMAGE, name: str = "web", engine: Optional[str] = "docker"
) -> List[PlannedContainer]:
    """Meta-data with these run arguments, planned for `engine` (MetadataError for
    what no device runs)."""
    meta = DockerMetadata(containers=(image,), run_args=shlex.join(args), names=(name,))
    return meta.plan(engine)

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


def planned_many(
    container_args: Sequence[str], engine: Optional[str] = "docker"
) -> List[PlannedContainer]:
    """One container per entry of `container_args` (named c0, c1, ...)."""
    count = len(container_args)
    meta = DockerMetadata(
        containers=(IMAGE,) * count,
        container_args=tuple(container_args),
        names=tuple(f"c{i}" for i in range(count)),
    )
    return meta.plan(engine)

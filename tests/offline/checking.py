"""Feeding payload bytes through the device's checker, for the payload tests."""

from __future__ import annotations

import io
from typing import Dict, List, Tuple

from mender_docker.module.errors import DeploymentError
from mender_docker.module.offline import PayloadChecker


def run_check(
    data: bytes, want: Dict[str, str], chunk: int = 700, require_manifests: bool = False
) -> Tuple[bytes, str]:
    """Feed `data` through the checker; return what it forwarded and the error, if any."""
    forwarded: List[bytes] = []
    try:
        source = io.BufferedReader(io.BytesIO(data), chunk)
        for _, _, part in PayloadChecker(source, want, require_manifests).events():
            forwarded.append(part)
    except DeploymentError as exc:  # PayloadError, ProvenanceError
        return b"".join(forwarded), str(exc)
    return b"".join(forwarded), ""

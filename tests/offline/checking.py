"""Feeding payload bytes through the device's checker, for the payload tests."""

from __future__ import annotations

import io
from typing import Dict, List, Tuple

from mender_docker.module.offline import PayloadError, verified_chunks


def run_check(data: bytes, want: Dict[str, str], chunk: int = 700) -> Tuple[bytes, str]:
    """Feed `data` through the checker; return what it forwarded and the error, if any."""
    forwarded: List[bytes] = []
    try:
        for part in verified_chunks(io.BufferedReader(io.BytesIO(data), chunk), want):
            forwarded.append(part)
    except PayloadError as exc:
        return b"".join(forwarded), str(exc)
    return b"".join(forwarded), ""

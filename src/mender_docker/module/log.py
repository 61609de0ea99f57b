"""One concise line per action on stderr; the Mender client stores it with the deployment log."""

from __future__ import annotations

import sys

PREFIX = "mender-docker"


def log(message: str) -> None:
    print(f"{PREFIX}: {message}", file=sys.stderr, flush=True)


def short(container_id: str) -> str:
    return container_id[:12]

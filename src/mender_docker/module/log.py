"""One concise line per action on stderr; the Mender client stores it with the deployment log."""

from __future__ import annotations

import sys

PREFIX = "mender-docker"


def log(message: str) -> None:
    # One write per line (print() writes the text and the newline apart when Python
    # runs unbuffered): the 5.x client logs each chunk it reads as a line of its own.
    sys.stderr.write(f"{PREFIX}: {message}\n")
    sys.stderr.flush()


def short(container_id: str) -> str:
    return container_id[:12]

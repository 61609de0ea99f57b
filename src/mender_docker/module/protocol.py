"""The Update Module protocol's fixed answers: cheap to import, so the client's
frequent queries are answered without loading the state handlers. The payload
pipes of the protocol (`stream-next`, `streams/`) are read by module/streams.py."""

from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional

QUERIES: Dict[str, str] = {
    "SupportsRollback": "Yes",
    "NeedsArtifactReboot": "No",
    "ProvidePayloadFileSizes": "No",
}
STATE_NAMES = (
    "Download",
    "ArtifactInstall",
    "ArtifactCommit",
    "ArtifactRollback",
    "ArtifactFailure",
    "Cleanup",
)


def quick_answer(args: List[str]) -> Optional[int]:
    """Handle what needs no state handler (queries, unknown states, bad usage) and
    return the exit code; None means a state for the handlers."""
    if not args:
        print("mender-docker: error: usage: docker STATE FILE_TREE_DIR", file=sys.stderr)
        return 2
    if args[0] in QUERIES:
        answer(QUERIES[args[0]])
        return 0
    if args[0] not in STATE_NAMES:
        return 0  # the protocol grows: unknown states are no-ops
    return None


def answer(text: str) -> None:
    """Write one answer line in ONE write(2): the 5.x client takes the first chunk it
    reads as the answer and any further chunk as a second line ("Too many lines"), and
    print() may split "No" and "\n" (unbuffered or line-buffered stdout). A pipe write
    of up to PIPE_BUF bytes is atomic, so the reader sees the whole line at once."""
    data = (text + "\n").encode()
    assert len(data) <= 512  # POSIX guarantees PIPE_BUF >= 512
    sys.stdout.flush()  # nothing written earlier may follow the answer
    os.write(1, data)

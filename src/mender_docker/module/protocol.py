"""The Update Module protocol's fixed answers: cheap to import, so the client's
frequent queries are answered without loading the state handlers."""

from __future__ import annotations

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
        print(QUERIES[args[0]])
        return 0
    if args[0] not in STATE_NAMES:
        return 0  # the protocol grows: unknown states are no-ops
    return None

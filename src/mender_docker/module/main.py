"""The Update Module's entry point: `docker STATE FILE_TREE_DIR` (protocol v3).

Each state goes to its handler: `download`, `install`, `rollback` and `finish`
(commit, failure, cleanup). The handlers never import each other; what they share
(the phases, undo, the cleanups) is in `deployment`. Every failure is one line on
stderr and a non-zero exit; no traceback escapes.
"""

from __future__ import annotations

import fcntl
import os
import sys
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional

from mender_docker.module.config import Config, load_config
from mender_docker.module.context import Context
from mender_docker.module.download import download
from mender_docker.module.engine import ContainerEngine, Engine
from mender_docker.module.errors import JournalError, ModuleError
from mender_docker.module.finish import cleanup, commit, failure
from mender_docker.module.install import install
from mender_docker.module.journal import JournalStore
from mender_docker.module.log import log
from mender_docker.module.protocol import STATE_NAMES, quick_answer
from mender_docker.module.rollback import rollback
from mender_docker.spec import MetadataError

STATES: Dict[str, Callable[[Context], None]] = {
    "Download": download,
    "ArtifactInstall": install,
    "ArtifactCommit": commit,
    "ArtifactRollback": rollback,
    "ArtifactFailure": failure,
    "Cleanup": cleanup,
}
assert tuple(STATES) == STATE_NAMES


@contextmanager
def locked(directory: str) -> Iterator[None]:
    """One state at a time: a second module run waits for the first."""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        handle = open(os.path.join(directory, "lock"), "a")
    except OSError as exc:
        raise JournalError(f"cannot use data directory {directory}: {exc}") from None
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def run_state(
    state: str, tree: str, config: Config, engine: Optional[ContainerEngine] = None
) -> None:
    """Run one protocol state; raises the module's errors (tests call this directly)."""
    real = engine or Engine(config.engine, timeout=config.command_timeout)
    ctx = Context(config=config, engine=real, store=JournalStore(config.journal_dir), tree=tree)
    with locked(config.journal_dir):
        STATES[state](ctx)


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    answered = quick_answer(args)
    if answered is not None:
        return answered
    state = args[0]
    if len(args) < 2:
        log(f"error: {state} needs the FILE_TREE_DIR argument")
        return 2
    try:
        run_state(state, args[1], load_config())
        return 0
    except (ModuleError, MetadataError) as exc:
        log(f"error: {state}: {exc}")
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        log(f"error: {state}:{where} {exc.strerror or exc}")
    except KeyboardInterrupt:
        log(f"error: {state}: interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the protocol wants one line, never a traceback
        log(f"error: {state}: unexpected {type(exc).__name__}: {exc}")
    return 1

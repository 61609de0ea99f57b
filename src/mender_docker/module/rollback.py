"""ArtifactRollback: back to exactly the containers that ran before the install.

Idempotent, and correct from any point of ArtifactInstall and after a commit:
the work is `deployment.undo`, which ArtifactFailure, Cleanup and the next
deployment's Download use too.
"""

from __future__ import annotations

from mender_docker.module.context import Context
from mender_docker.module.deployment import NOTHING_TO_UNDO, Phase, this_deployment, undo
from mender_docker.module.log import log


def rollback(ctx: Context) -> None:
    journal = ctx.store.load()
    deployment = this_deployment(ctx, journal)
    if deployment is None:
        log("nothing was installed by this deployment: nothing to roll back")
        return
    if deployment.phase in NOTHING_TO_UNDO:
        log(f"deployment {deployment.artifact} changed nothing: nothing to roll back")
        return
    if deployment.phase == Phase.CLEANED:
        log(f"deployment {deployment.artifact} is already cleaned up: cannot roll back")
        return
    undo(ctx, journal)

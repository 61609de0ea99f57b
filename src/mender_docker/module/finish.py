"""ArtifactCommit, Cleanup and ArtifactFailure: finish a deployment either way.

Cleanup after a commit removes the replaced containers we own and the images of
earlier deployments no container uses; after a failure it removes what the
deployment created (`deployment.cleanup_committed`, `deployment.cleanup_failed`).
Containers without our label are never removed.
"""

from __future__ import annotations

from mender_docker.module.context import Context
from mender_docker.module.deployment import (
    CHANGED,
    COMMITTED_PHASES,
    UNFINISHED,
    Phase,
    cleanup_committed,
    cleanup_failed,
    this_deployment,
    undo,
)
from mender_docker.module.errors import DeploymentError
from mender_docker.module.log import log


def commit(ctx: Context) -> None:
    journal = ctx.store.load()
    deployment = this_deployment(ctx, journal)
    if deployment is None:
        raise DeploymentError("no deployment of this artifact was installed: nothing to commit")
    if deployment.phase in COMMITTED_PHASES:
        log(f"{deployment.artifact} is already committed")
        return
    if deployment.phase != Phase.INSTALLED:
        raise DeploymentError(f"cannot commit {deployment.artifact}: it is {deployment.phase}")
    deployment.phase = Phase.COMMITTED
    ctx.store.save(journal)
    log(f"committed {deployment.artifact}")


def failure(ctx: Context) -> None:
    """Leave the device as it was before the deployment, whatever happened."""
    journal = ctx.store.load()
    deployment = this_deployment(ctx, journal)
    if deployment is not None and deployment.phase in CHANGED:
        undo(ctx, journal)


def cleanup(ctx: Context) -> None:
    journal = ctx.store.load()
    deployment = this_deployment(ctx, journal)
    if deployment is None:
        log("no deployment recorded for this artifact: nothing to clean up")
        return
    if deployment.phase in COMMITTED_PHASES:
        cleanup_committed(ctx, journal)
        return
    if deployment.phase in UNFINISHED:
        # neither committed nor rolled back, yet the client ends it: keep the old state
        undo(ctx, journal)
    cleanup_failed(ctx, journal)

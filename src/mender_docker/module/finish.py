"""ArtifactCommit, Cleanup and ArtifactFailure: finish a deployment either way.

Cleanup after a commit removes the replaced containers we own and the images of
earlier deployments no container uses; after a failure it removes what the
deployment created. Containers without our label are never removed.
"""

from __future__ import annotations

from typing import List, Sequence

from mender_docker.module.application import remove_unused_networks, stale_networks
from mender_docker.module.context import Context
from mender_docker.module.errors import DeploymentError, EngineError, NoSuchObjectError
from mender_docker.module.journal import (
    CLEANED,
    COMMITTED,
    FAILED,
    INSTALLED,
    INSTALLING,
    ROLLING_BACK,
    Journal,
)
from mender_docker.module.log import log, short
from mender_docker.module.rollback import this_deployment, undo


def commit(ctx: Context) -> None:
    journal = ctx.store.load()
    deployment = this_deployment(ctx, journal)
    if deployment is None:
        raise DeploymentError("no deployment of this artifact was installed: nothing to commit")
    if deployment.phase in (COMMITTED, CLEANED):
        log(f"{deployment.artifact} is already committed")
        return
    if deployment.phase != INSTALLED:
        raise DeploymentError(f"cannot commit {deployment.artifact}: it is {deployment.phase}")
    deployment.phase = COMMITTED
    ctx.store.save(journal)
    log(f"committed {deployment.artifact}")


def failure(ctx: Context) -> None:
    """Leave the device as it was before the deployment, whatever happened."""
    journal = ctx.store.load()
    deployment = this_deployment(ctx, journal)
    if deployment is not None and deployment.phase in (
        INSTALLING,
        INSTALLED,
        COMMITTED,
        ROLLING_BACK,
    ):
        undo(ctx, journal)


def cleanup(ctx: Context) -> None:
    journal = ctx.store.load()
    deployment = this_deployment(ctx, journal)
    if deployment is None:
        log("no deployment recorded for this artifact: nothing to clean up")
        return
    if deployment.phase in (COMMITTED, CLEANED):
        cleanup_committed(ctx, journal)
        return
    if deployment.phase in (INSTALLING, INSTALLED, ROLLING_BACK):
        # neither committed nor rolled back, yet the client ends it: keep the old state
        undo(ctx, journal)
    cleanup_failed(ctx, journal)


def cleanup_committed(ctx: Context, journal: Journal) -> None:
    deployment = journal.deployment
    assert deployment is not None
    managed_label = ctx.label("managed")
    replaced = list(dict.fromkeys([*deployment.stopped, *(r["id"] for r in deployment.renamed)]))
    for info in ctx.engine.inspect_containers(replaced):
        if info.labels.get(managed_label) != "1":
            log(f"leaving {info.name} ({short(info.id)}) stopped: not managed by mender-docker")
            continue
        log(f"removing replaced container {info.name} ({short(info.id)})")
        remove_container(ctx, info.id)
    remove_unused_networks(ctx, stale_networks(ctx, deployment.networks))
    candidates = [ref for ref in journal.previous_images if ref not in deployment.images]
    if ctx.config.keep_previous_images:
        leftover = candidates
    else:
        leftover = remove_unused_images(ctx, candidates)
    journal.previous_images = deployment.images + [
        ref for ref in leftover if ref not in deployment.images
    ]
    deployment.phase = CLEANED
    ctx.store.save(journal)
    log(f"cleaned up after {deployment.artifact}")


def cleanup_failed(ctx: Context, journal: Journal) -> None:
    deployment = journal.deployment
    assert deployment is not None
    labelled = ctx.engine.list_containers(
        all=True, label=f"{ctx.label('deployment')}={deployment.id}"
    )
    for container_id in dict.fromkeys([*deployment.created, *labelled]):
        log(f"removing new container {short(container_id)}")
        remove_container(ctx, container_id)
    remove_unused_networks(ctx, deployment.networks_created)
    pulled_only = [ref for ref in deployment.pulled if ref not in journal.previous_images]
    remove_unused_images(ctx, pulled_only)
    if deployment.phase != FAILED:
        deployment.phase = FAILED
        ctx.store.save(journal)
    log(f"cleaned up after failed deployment {deployment.artifact}")


def remove_container(ctx: Context, container_id: str) -> None:
    try:
        ctx.engine.remove_container(container_id)
    except NoSuchObjectError:
        pass


def remove_unused_images(ctx: Context, refs: Sequence[str]) -> List[str]:
    """Remove the images no container (running or not) uses; return those left."""
    if not refs:
        return []
    everything = ctx.engine.inspect_containers(ctx.engine.list_containers(all=True))
    used = {c.image_id for c in everything}
    leftover: List[str] = []
    for ref in refs:
        info = ctx.engine.inspect_image(ref)
        if info is None:
            continue
        if info.id in used:
            log(f"keeping image {ref}: a container still uses it")
            leftover.append(ref)
            continue
        log(f"removing image {ref}")
        try:
            ctx.engine.remove_image(ref)
        except EngineError as exc:
            log(f"warning: cannot remove image {ref}: {exc}")
            leftover.append(ref)
    return leftover

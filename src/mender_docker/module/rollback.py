"""ArtifactRollback: back to exactly the containers that ran before the install.

Idempotent, and correct from any point of ArtifactInstall: new containers are
found both in the journal and by their deployment label (one started just
before a crash is not in the journal yet).
"""

from __future__ import annotations

from typing import Optional

from mender_docker.module.application import remove_unused_networks
from mender_docker.module.context import Context
from mender_docker.module.errors import DaemonDownError, NoSuchObjectError, UnsupportedError
from mender_docker.module.journal import (
    CLEANED,
    DOWNLOADED,
    DOWNLOADING,
    FAILED,
    ROLLED_BACK,
    ROLLING_BACK,
    Deployment,
    Journal,
)
from mender_docker.module.log import log, short

ENGINE_WAIT = 30.0  # seconds a rollback waits for a daemon that does not answer


def this_deployment(ctx: Context, journal: Journal) -> Optional[Deployment]:
    """The journal's deployment if it is the one of this file tree, else None."""
    deployment_id = ctx.deployment_id()
    deployment = journal.deployment
    if deployment is None or deployment_id is None or deployment.id != deployment_id:
        return None
    return deployment


def rollback(ctx: Context) -> None:
    journal = ctx.store.load()
    deployment = this_deployment(ctx, journal)
    if deployment is None:
        log("nothing was installed by this deployment: nothing to roll back")
        return
    if deployment.phase in (DOWNLOADING, DOWNLOADED, FAILED):
        log(f"deployment {deployment.artifact} changed nothing: nothing to roll back")
        return
    if deployment.phase == CLEANED:
        log(f"deployment {deployment.artifact} is already cleaned up: cannot roll back")
        return
    undo(ctx, journal)


def wait_for_engine(ctx: Context, seconds: float) -> None:
    """A daemon restarting (crash, reboot) must not turn the rollback into a failure:
    the client runs ArtifactRollback right after the install failed, maybe because
    the daemon went away; give it time to come back."""
    deadline = ctx.clock() + seconds
    waited = False
    while True:
        try:
            ctx.engine.version()
            return
        except DaemonDownError:
            if ctx.clock() >= deadline:
                raise
            if not waited:
                log(f"container engine not answering: waiting up to {seconds:g} s for it")
                waited = True
            ctx.sleep(1.0)


def undo(ctx: Context, journal: Journal) -> None:
    """Restore the state recorded before the journal's deployment changed anything."""
    deployment = journal.deployment
    assert deployment is not None
    log(f"rolling back {deployment.artifact}")
    wait_for_engine(ctx, ENGINE_WAIT)
    deployment.phase = ROLLING_BACK
    ctx.store.save(journal)
    engine = ctx.engine
    labelled = engine.list_containers(all=True, label=f"{ctx.label('deployment')}={deployment.id}")
    for container_id in dict.fromkeys([*deployment.created, *labelled]):
        log(f"removing new container {short(container_id)}")
        try:
            engine.remove_container(container_id)
        except NoSuchObjectError:
            pass
    renamed = {c.id: c for c in engine.inspect_containers([r["id"] for r in deployment.renamed])}
    for entry in deployment.renamed:
        info = renamed.get(entry["id"])
        if info is not None and info.name != entry["from"]:
            log(f"renaming {info.name} ({short(info.id)}) back to {entry['from']}")
            engine.rename(info.id, entry["from"])
    previous = {c.id: c for c in engine.inspect_containers([p["id"] for p in deployment.previous])}
    for entry in deployment.previous:
        info = previous.get(entry["id"])
        if info is None:
            log(f"warning: previous container {entry['name']} ({short(entry['id'])}) is gone")
            continue
        if info.restart_policy != entry["restart_policy"]:
            try:
                engine.set_restart_policy(info.id, entry["restart_policy"])
            except UnsupportedError:  # podman 4: never changed by the install either
                log(f"note: cannot restore restart policy {entry['restart_policy']} "
                    f"of {info.name}: the engine cannot change it")
        if not info.running:
            log(f"starting previous container {info.name} ({short(info.id)})")
            engine.start(info.id)
    remove_unused_networks(ctx, deployment.networks_created)
    deployment.phase = ROLLED_BACK
    ctx.store.save(journal)
    log(f"rolled back {deployment.artifact}")

"""The phases of a deployment, which may follow which, and what the states share.

The state handlers (`download`, `install`, `rollback`, `finish`) stand side by side
over this module and never import each other. It holds the one table of phases
and the helpers more than one state uses: which deployment the journal holds
(`this_deployment`), what the owner's policy allows (`allowed_plan`), finishing
an earlier deployment, `undo`, and both cleanups.

A phase is recorded in the journal BEFORE the change it announces, so a crash
at any point leaves a phase from which every state can compute what to do:

  phase          set by                              what it leaves in the journal
  downloading    Download, ArtifactInstall           the deployment: id, artifact, tree, scope,
                 (record_deployment)                 images, `pulled` (the refs absent before it,
                                                     journalled before any is fetched; an
                                                     import's transient tag before its use).
                                                     Nothing running has changed.
  downloaded     prepare_images                      the same; every image is there and verified.
  installing     ArtifactInstall, before the first   + planned, previous (what ran: id, name,
                 change                              restart policy, managed), kept, stopped,
                                                     renamed, networks, inherited (the anonymous
                                                     volumes new containers take over);
                                                     networks_created and created grow, each
                                                     before it is made.
  installed      ArtifactInstall, after the health   the same: every new container passed the
                 gate                                gate; the replaced ones still exist, stopped.
  committed      ArtifactCommit                      the same; the client committed.
  rolling-back   undo, before its first change       the same, so that undo can run again.
  rolled-back    undo, at its end                    the same; the previous containers run again,
                                                     the new ones and networks are gone; what was
                                                     pulled or loaded stays until Cleanup.
  cleaned        cleanup_committed                   final: replaced containers and unused images
                                                     removed; `previous_images` = the release's
                                                     images + those that could not be removed;
                                                     `owned` = the release's containers.
                                                     `orphan_volumes` (the anonymous volumes of
                                                     the containers it removes, recorded before)
                                                     are removed once no container uses them;
                                                     undo and cleanup_failed do the same for the
                                                     new containers' own volumes. Volume
                                                     snapshots (`snapshots`, their states in
                                                     module/snapshots.py) are taken between stop
                                                     and start, restored by undo before the
                                                     previous containers start, deleted by both
                                                     cleanups.
  failed         cleanup_failed                      final: what the deployment created, pulled or
                                                     loaded is removed; `owned` = the containers
                                                     of the release that runs again.

`owned` (the journal's, outside the deployment record) is what makes a container
this installation's: labels alone do not (`is_ours`).

A new deployment's record replaces the journal's only once the earlier one is
final (`finish_earlier_deployment`). A save that keeps the phase records more of
the same step (one more created container, one more transient tag) or a step
run again; `NEXT` lists the changes.

This module imports at run time only `errors`, `log`, `policy` and `snapshots`
(which itself imports only `errors` and `log`): the journal
takes `Phase` from here, so nothing here may import the journal or the context
but for type hints.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Collection, Dict, FrozenSet, List, Optional, Sequence

from mender_docker.module.errors import (
    DaemonDownError,
    DeploymentError,
    EngineError,
    NoSuchObjectError,
    UnsupportedError,
)
from mender_docker.module.log import log, short
from mender_docker.module.policy import check, policy_from_settings
from mender_docker.module.snapshots import drop as drop_snapshots
from mender_docker.module.snapshots import restore as restore_snapshots

if TYPE_CHECKING:
    from mender_docker.module.context import Context
    from mender_docker.module.engine import ContainerInfo
    from mender_docker.module.journal import Deployment, Journal
    from mender_docker.spec import DockerMetadata, PlannedContainer


class Phase(str, Enum):
    """Where a deployment is; the value is what the journal's JSON holds."""

    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    INSTALLING = "installing"
    INSTALLED = "installed"
    COMMITTED = "committed"
    ROLLING_BACK = "rolling-back"
    ROLLED_BACK = "rolled-back"
    CLEANED = "cleaned"  # committed and cleaned up: the normal end
    FAILED = "failed"  # rolled back (or never installed) and cleaned up

    def __str__(self) -> str:  # the value in messages, on every Python version
        return self.value


# Which phase may follow which (a save that keeps the phase is always allowed).
# A deployment starts in DOWNLOADING; a new one may start once the earlier is FINAL.
NEXT: Dict[Phase, FrozenSet[Phase]] = {
    Phase.DOWNLOADING: frozenset({Phase.DOWNLOADED, Phase.FAILED}),
    # ArtifactInstall records the deployment again (re-checks its images)
    Phase.DOWNLOADED: frozenset({Phase.DOWNLOADING, Phase.INSTALLING, Phase.FAILED}),
    Phase.INSTALLING: frozenset({Phase.INSTALLED, Phase.ROLLING_BACK}),
    Phase.INSTALLED: frozenset({Phase.COMMITTED, Phase.ROLLING_BACK}),
    Phase.COMMITTED: frozenset({Phase.CLEANED, Phase.ROLLING_BACK}),
    Phase.ROLLING_BACK: frozenset({Phase.ROLLED_BACK}),
    # undo again (ArtifactRollback re-run), ArtifactInstall again, or Cleanup
    Phase.ROLLED_BACK: frozenset({Phase.ROLLING_BACK, Phase.DOWNLOADING, Phase.FAILED}),
    Phase.CLEANED: frozenset(),
    Phase.FAILED: frozenset(),
}
FINAL = frozenset({Phase.CLEANED, Phase.FAILED})
# Changed the device, neither committed nor rolled back: undo before anything else.
UNFINISHED = frozenset({Phase.INSTALLING, Phase.INSTALLED, Phase.ROLLING_BACK})
# The engine holds this deployment's changes: ArtifactFailure undoes them.
CHANGED = UNFINISHED | {Phase.COMMITTED}
# ArtifactRollback has nothing to undo: never installed, or rolled back and cleaned up.
NOTHING_TO_UNDO = frozenset({Phase.DOWNLOADING, Phase.DOWNLOADED, Phase.FAILED})
# Nothing of it runs, Cleanup did not finish: cleanup_failed removes what it added;
# ArtifactInstall may (re)start the same deployment from these.
ABANDONED = frozenset({Phase.DOWNLOADING, Phase.DOWNLOADED, Phase.ROLLED_BACK})
COMMITTED_PHASES = frozenset({Phase.COMMITTED, Phase.CLEANED})

ENGINE_WAIT = 30.0  # seconds an undo waits for a daemon that does not answer


def this_deployment(ctx: Context, journal: Journal) -> Optional[Deployment]:
    """The journal's deployment if it is the one of this file tree, else None."""
    deployment_id = ctx.deployment_id()
    deployment = journal.deployment
    if deployment is None or deployment_id is None or deployment.id != deployment_id:
        return None
    return deployment


def allowed_plan(
    ctx: Context, meta: DockerMetadata, everything: Optional[Sequence[ContainerInfo]] = None
) -> List[PlannedContainer]:
    """The containers to run, once the owner's policy allows every one of them.
    `everything`: every container on the device (inspected here if not given)."""
    plan = ctx.plan(meta)
    check_policy(ctx, plan, everything)
    return plan


def check_policy(
    ctx: Context,
    plan: Sequence[PlannedContainer],
    everything: Optional[Sequence[ContainerInfo]] = None,
) -> None:
    """Raise PolicyError unless the owner's policy allows `plan` on the device as
    it is now (host paths resolved now, what containers can write now)."""
    policy = policy_from_settings(ctx.config.policy_settings())
    if not policy.active:
        return
    if everything is None and policy.judges_binds:
        everything = all_containers(ctx)
    engine_dirs = ctx.engine.state_dirs() if policy.judges_binds else ()
    check(
        plan,
        policy,
        protected=(ctx.config.journal_dir, *engine_dirs, *ctx.mender_dirs()),
        # the engine's own directories hold every container's writable layer and volumes;
        # a container that does not run writes nothing now (SECURITY.md: what is left)
        writable_elsewhere=[
            *engine_dirs,
            *(path for c in everything or () if c.running for path in c.writable_binds),
        ],
    )


def all_containers(ctx: Context) -> List[ContainerInfo]:
    return ctx.engine.inspect_containers(ctx.engine.list_containers(all=True))


def ours_among(
    ctx: Context, journal: Journal, everything: Sequence[ContainerInfo]
) -> Optional[FrozenSet[str]]:
    """What the journal records as this installation's (see Journal.ours), plus the
    containers of its deployment created just before a crash, before the record
    (found by their deployment label, as undo finds them)."""
    ours = journal.ours()
    if ours is None or journal.deployment is None:
        return ours
    label = ctx.label("deployment")
    return ours | {c.id for c in everything if c.labels.get(label) == journal.deployment.id}


def is_ours(ctx: Context, info: ContainerInfo, ours: Optional[FrozenSet[str]]) -> bool:
    """Deployed by this installation: its label says so AND the journal recorded it
    (a label alone can be written by an artifact of another installation that
    shares the engine). `ours` None: a journal from before the record (labels decide)."""
    return info.labels.get(ctx.label("managed")) == "1" and (ours is None or info.id in ours)


def check_names(
    ctx: Context,
    plan: Sequence[PlannedContainer],
    everything: Sequence[ContainerInfo],
    ours: Optional[FrozenSet[str]],
) -> None:
    """A container this installation did not deploy that holds a name the release
    needs is never renamed, stopped or removed for it: the deployment is refused."""
    by_name = {c.name: c for c in everything}
    for item in plan:
        holder = by_name.get(item.name)
        if holder is not None and not is_ours(ctx, holder, ours):
            raise DeploymentError(
                f"container name {item.name!r} is taken by container {short(holder.id)} "
                f"({holder.image}), which mender-docker did not deploy: remove or rename it"
            )


def finish_earlier_deployment(ctx: Context) -> None:
    """A new deployment must not overwrite the journal of an unfinished one."""
    journal = ctx.store.load()
    earlier = journal.deployment
    if earlier is None:
        return
    if earlier.phase in UNFINISHED:
        log(f"deployment {earlier.artifact} was left {earlier.phase}: rolling it back first")
        undo(ctx, journal)
    elif earlier.phase == Phase.COMMITTED:
        log(f"deployment {earlier.artifact} was committed but not cleaned up: cleaning up")
        cleanup_committed(ctx, journal)
        return
    if earlier.phase in ABANDONED:
        # its Cleanup never ran (killed, or a client that forgot the deployment):
        # without this, the images it pulled would stay on the device for good
        log(f"deployment {earlier.artifact} was not cleaned up: removing what it added")
        cleanup_failed(ctx, journal)


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
    """Restore the state recorded before the journal's deployment changed anything.

    Idempotent, and correct from any point of ArtifactInstall: new containers are
    found both in the journal and by their deployment label (one created just
    before a crash is not in the journal yet)."""
    deployment = journal.deployment
    assert deployment is not None
    log(f"rolling back {deployment.artifact}")
    wait_for_engine(ctx, ENGINE_WAIT)
    deployment.phase = Phase.ROLLING_BACK
    ctx.store.save(journal)
    engine = ctx.engine
    remove_new_containers(ctx, journal)
    renamed = {c.id: c for c in engine.inspect_containers([r.id for r in deployment.renamed])}
    for rename in deployment.renamed:
        info = renamed.get(rename.id)
        if info is not None and info.name != rename.from_name:
            log(f"renaming {info.name} ({short(info.id)}) back to {rename.from_name}")
            engine.rename(info.id, rename.from_name)
    restore_snapshots(ctx, journal)  # before the previous containers start on the data
    previous = {c.id: c for c in engine.inspect_containers([p.id for p in deployment.previous])}
    for before in deployment.previous:
        info = previous.get(before.id)
        if info is None:
            log(f"warning: previous container {before.name} ({short(before.id)}) is gone")
            continue
        if info.restart_policy != before.restart_policy:
            try:
                engine.set_restart_policy(info.id, before.restart_policy)
            except UnsupportedError:  # podman 4: never changed by the install either
                log(f"note: cannot restore restart policy {before.restart_policy} "
                    f"of {info.name}: the engine cannot change it")
        if not info.running:
            log(f"starting previous container {info.name} ({short(info.id)})")
            engine.start(info.id)
    remove_unused_networks(ctx, deployment.networks_created)
    deployment.phase = Phase.ROLLED_BACK
    ctx.store.save(journal)
    log(f"rolled back {deployment.artifact}")


def cleanup_committed(ctx: Context, journal: Journal) -> None:
    """After a commit: remove the replaced containers we own, our networks the
    release does not use, and the images of earlier deployments nothing uses.
    The committed release's images stay (`previous_images`): they are what the
    next delta offline artifact is built against."""
    deployment = journal.deployment
    assert deployment is not None
    ours = {p.id for p in deployment.previous if p.managed}  # decided at install
    replaced = list(dict.fromkeys([*deployment.stopped, *(r.id for r in deployment.renamed)]))
    found = ctx.engine.inspect_containers(replaced)
    record_orphan_volumes(ctx, journal, [info for info in found if info.id in ours])
    for info in found:
        if info.id not in ours:
            log(f"leaving {info.name} ({short(info.id)}) stopped: not managed by mender-docker")
            continue
        log(f"removing replaced container {info.name} ({short(info.id)})")
        remove_container(ctx, info.id)
    remove_unused_volumes(ctx, deployment.orphan_volumes)
    drop_snapshots(ctx, journal, committed=True)
    remove_unused_networks(ctx, stale_networks(ctx, deployment.networks))
    candidates = [ref for ref in journal.previous_images if ref not in deployment.images]
    if ctx.config.keep_previous_images:
        leftover = candidates
    else:
        leftover = remove_unused_images(ctx, candidates)
    journal.previous_images = deployment.images + [
        ref for ref in leftover if ref not in deployment.images
    ]
    journal.owned = [*deployment.created, *deployment.kept]
    deployment.phase = Phase.CLEANED
    ctx.store.save(journal)
    log(f"cleaned up after {deployment.artifact}")


def cleanup_failed(ctx: Context, journal: Journal) -> None:
    """After a failure (rolled back, or never installed): remove what it added."""
    deployment = journal.deployment
    assert deployment is not None
    remove_new_containers(ctx, journal)
    drop_snapshots(ctx, journal, committed=False)
    remove_unused_networks(ctx, deployment.networks_created)
    pulled_only = [ref for ref in deployment.pulled if ref not in journal.previous_images]
    remove_unused_images(ctx, pulled_only)
    journal.owned = journal.release_containers()  # the release that runs is the one before
    if deployment.phase != Phase.FAILED:
        deployment.phase = Phase.FAILED
        ctx.store.save(journal)
    log(f"cleaned up after failed deployment {deployment.artifact}")


def remove_new_containers(ctx: Context, journal: Journal) -> None:
    """Remove the deployment's new containers: those the journal recorded and those
    carrying its deployment label (created just before a crash, not journalled),
    then the anonymous volumes they alone had (never one they inherited)."""
    deployment = journal.deployment
    assert deployment is not None
    labelled = ctx.engine.list_containers(
        all=True, label=f"{ctx.label('deployment')}={deployment.id}"
    )
    ids = list(dict.fromkeys([*deployment.created, *labelled]))
    inherited = {entry["volume"] for entry in deployment.inherited}
    record_orphan_volumes(ctx, journal, ctx.engine.inspect_containers(ids), inherited)
    for container_id in ids:
        log(f"removing new container {short(container_id)}")
        remove_container(ctx, container_id)
    remove_unused_volumes(ctx, [v for v in deployment.orphan_volumes if v not in inherited])


def record_orphan_volumes(
    ctx: Context,
    journal: Journal,
    containers: Sequence[ContainerInfo],
    keep: Collection[str] = (),
) -> None:
    """Journal the anonymous volumes of containers about to be removed (but those in
    `keep`): after a crash the cleanup still knows which ones to look at."""
    deployment = journal.deployment
    assert deployment is not None
    found = [
        v.name
        for c in containers
        for v in c.volumes
        if v.anonymous and v.name not in keep and v.name not in deployment.orphan_volumes
    ]
    if found:
        deployment.orphan_volumes.extend(dict.fromkeys(found))
        ctx.store.save(journal)


def remove_unused_volumes(ctx: Context, names: Sequence[str]) -> None:
    """Remove those of the volumes no container (ours or not, in any state) uses."""
    if not names:
        return
    everything = ctx.engine.inspect_containers(ctx.engine.list_containers(all=True))
    used = {v.name for c in everything for v in c.volumes}
    for name in names:
        if name in used:
            continue
        log(f"removing unused anonymous volume {short(name)}")
        try:
            ctx.engine.remove_volume(name)
        except NoSuchObjectError:
            pass
        except EngineError as exc:  # taken by a container created meanwhile
            log(f"warning: cannot remove volume {short(name)}: {exc}")


def remove_container(ctx: Context, container_id: str) -> None:
    try:
        ctx.engine.remove_container(container_id)
    except NoSuchObjectError:
        pass


def remove_unused_images(ctx: Context, refs: Sequence[str]) -> List[str]:
    """Remove the images no container (running or not) uses; return those left."""
    if not refs:
        return []
    used = {c.image_id for c in all_containers(ctx)}
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


def remove_unused_networks(ctx: Context, names: Sequence[str]) -> None:
    """Remove the networks no container (in any state) is on: a stopped container
    on a removed network could not start again."""
    if not names:
        return
    used = {network for c in all_containers(ctx) for network in c.networks}
    for name in names:
        if name in used:
            log(f"keeping network {name}: a container is on it")
            continue
        log(f"removing network {name}")
        try:
            ctx.engine.remove_network(name)
        except NoSuchObjectError:
            pass
        except EngineError as exc:
            log(f"warning: cannot remove network {name}: {exc}")


def stale_networks(ctx: Context, keep: Sequence[str]) -> List[str]:
    """Our networks the deployed release does not use."""
    return [n for n in ctx.engine.list_networks(f"{ctx.label('managed')}=1") if n not in keep]

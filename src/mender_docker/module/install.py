"""ArtifactInstall: journal first, then stop what changes, start the new, gate on health.

Containers whose name, image digest and arguments are unchanged (same
config-hash label) keep running untouched. Every change is recorded in the
journal before it is made, so `deployment.undo` can restore the previous state
from any point, even after SIGKILL. The images are prepared (again) by
module/images.py.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence

from mender_docker.module.application import (
    compose_labels,
    ensure_networks_and_volumes,
    start_in_order,
)
from mender_docker.module.context import Context
from mender_docker.module.deployment import (
    ABANDONED,
    UNFINISHED,
    Phase,
    all_containers,
    allowed_plan,
    check_names,
    check_policy,
    finish_earlier_deployment,
    is_ours,
    ours_among,
    undo,
)
from mender_docker.module.engine import ContainerInfo
from mender_docker.module.errors import DeploymentError, UnsupportedError
from mender_docker.module.health import wait_healthy
from mender_docker.module.images import prepare_images
from mender_docker.module.journal import PreviousContainer, Rename
from mender_docker.module.log import log, short
from mender_docker.module.snapshots import take as take_snapshots
from mender_docker.module.snapshots import volumes_to_snapshot
from mender_docker.module.volumes import inheritance, inherited_arguments
from mender_docker.spec import DockerMetadata, PlannedContainer

PREVIOUS_SUFFIX = "mender-prev"


def config_hash(item: PlannedContainer) -> str:
    """Identifies what a container runs: same hash, nothing to redeploy."""
    fields = [item.name, item.image, list(item.args)]
    if item.command:  # kept out when empty: the hash of earlier releases stays the same
        fields.append(list(item.command))
    payload = json.dumps(fields, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def run_arguments(item: PlannedContainer, tty: bool, restart_policy: str) -> List[str]:
    """The artifact's arguments, plus a restart policy unless they choose one, and a
    terminal like the original's `docker run -dt` unless `tty = false`."""
    extra = [] if item.run.values("restart") else [f"--restart={restart_policy}"]
    if tty:
        extra.append("--tty=true")
    return [*extra, *item.args]


def engine_reference(meta: DockerMetadata, item: PlannedContainer) -> str:
    """What to create a container from: the pinned reference, or for loaded images
    (which have no repo digest) the image ID the signed header names: a tag could
    be moved, and `--pull=always` would fetch it again."""
    if meta.images_file is not None and item.image_id is not None:
        return item.image_id
    return item.image


def install(ctx: Context) -> None:
    meta = ctx.read_metadata()
    plan = allowed_plan(ctx, meta)
    deployment_id = ctx.deployment_id(create=True)
    assert deployment_id is not None
    journal = ctx.store.load()
    current = journal.deployment
    if current is not None and current.id == deployment_id and current.phase in UNFINISHED:
        log(f"an earlier install of {current.artifact} did not finish: undoing it first")
        undo(ctx, journal)
    elif current is not None and current.id == deployment_id and current.phase not in ABANDONED:
        raise DeploymentError(f"deployment {current.artifact} is already {current.phase}")
    if current is None or current.id != deployment_id:
        finish_earlier_deployment(ctx)
    # Download normally did this; re-checking is cheap and covers a lost image.
    prepare_images(ctx, meta, deployment_id)
    journal = ctx.store.load()
    deployment = journal.deployment
    assert deployment is not None

    everything = all_containers(ctx)
    ours = ours_among(ctx, journal, everything)
    check_names(ctx, plan, everything, ours)  # Download checked; a container may have come since
    by_name = {c.name: c for c in everything}
    in_scope = [
        c for c in everything if c.running and (ctx.config.scope == "all" or is_ours(ctx, c, ours))
    ]
    hashes = {item.name: config_hash(item) for item in plan}
    kept = [
        c
        for c in in_scope
        if is_ours(ctx, c, ours) and hashes.get(c.name) == c.labels.get(ctx.label("config-hash"))
    ]
    kept_names = {c.name for c in kept}
    to_create = [item for item in plan if item.name not in kept_names]
    to_stop = [c for c in in_scope if c not in kept]
    renames: List[Rename] = []
    for item in to_create:
        holder = by_name.get(item.name)
        if holder is None:
            continue
        new_name = f"{item.name}-{PREVIOUS_SUFFIX}-{deployment_id[:8]}"
        renames.append(Rename(id=holder.id, from_name=item.name, to=new_name))

    deployment.phase = Phase.INSTALLING
    deployment.scope = ctx.config.scope
    deployment.planned = [
        {"name": i.name, "image": i.image, "config_hash": hashes[i.name]} for i in plan
    ]
    deployment.previous = [
        PreviousContainer(
            id=c.id, name=c.name, restart_policy=c.restart_policy, managed=is_ours(ctx, c, ours)
        )
        for c in in_scope
    ]
    deployment.kept = [c.id for c in kept]
    deployment.stopped = [c.id for c in to_stop]
    deployment.renamed = renames
    deployment.created = []
    deployment.networks = list(meta.networks or ())
    deployment.inherited = inheritance(to_create, by_name)
    ctx.store.save(journal)  # the previous state is safe: now change things
    ensure_networks_and_volumes(ctx, meta, deployment, journal)

    for c in kept:
        log(f"keeping {c.name} ({short(c.id)}): unchanged")
    # Everything that can happen while the old containers still serve happens first
    # (a running container can be renamed; a created one holds no port yet): the
    # outage is then one stop plus one start.
    for rename in renames:
        log(f"renaming {rename.from_name} ({short(rename.id)}) to {rename.to}")
        ctx.engine.rename(rename.id, rename.to)
    created: Dict[str, str] = {}  # name -> id
    for item in to_create:
        log(f"creating {item.name} from {item.image}")
        labels = {
            ctx.label("managed"): "1",
            ctx.label("artifact"): deployment.artifact,
            ctx.label("deployment"): deployment.id,
            ctx.label("config-hash"): hashes[item.name],
            ctx.label("image"): item.image,  # the pinned reference, pulled or loaded
            **compose_labels(meta, item, hashes[item.name]),
        }
        args = run_arguments(item, ctx.config.tty, ctx.engine.lasting_restart_policy())
        args = inherited_arguments(args, deployment.inherited, item.name)
        image = engine_reference(meta, item)
        container_id = ctx.engine.create(item.name, image, args, labels, item.command)
        deployment.created.append(container_id)
        created[item.name] = container_id
        ctx.store.save(journal)
    stop_all(ctx, to_stop, meta.stop_timeout)
    take_snapshots(ctx, journal, volumes_to_snapshot(to_create, by_name))  # stopped: consistent
    timeout = ctx.config.health_timeout if meta.health_timeout is None else meta.health_timeout
    window = ctx.config.health_window if meta.health_window is None else meta.health_window
    by_id = {created[item.name]: item for item in plan if item.name in created}

    def start(ids: Sequence[str]) -> None:
        # a bind source is resolved by the engine only now: judged again as it is now
        check_policy(ctx, [by_id[i] for i in ids if i in by_id])
        start_all(ctx, ids)

    if meta.depends_on:
        running = {**{c.name: c.id for c in kept}, **created}
        gated = start_in_order(ctx, plan, created, running, timeout, start)
    else:
        start(deployment.created)
        gated = deployment.created
    wait_healthy(ctx, gated, timeout, window)
    deployment.phase = Phase.INSTALLED
    ctx.store.save(journal)
    log(f"installed {deployment.artifact}: {len(deployment.created)} started, {len(kept)} kept")


def start_all(ctx: Context, container_ids: Sequence[str]) -> None:
    """Start the new containers in parallel: the outage does not grow with their number."""
    if not container_ids:
        return

    def start(container_id: str) -> None:
        log(f"starting {short(container_id)}")
        ctx.engine.start(container_id)

    with ThreadPoolExecutor(max_workers=min(8, len(container_ids))) as pool:
        for future in [pool.submit(start, i) for i in container_ids]:
            future.result()


def stop_all(ctx: Context, containers: Sequence[ContainerInfo], timeout: Optional[float]) -> None:
    """No restart while pending (a dockerd restart must not revive them), then stop in
    parallel: the outage is one stop timeout, not one per container."""
    seconds = ctx.config.stop_timeout if timeout is None else timeout
    for c in containers:
        if c.restart_policy != "no":
            try:
                ctx.engine.set_restart_policy(c.id, "no")
            except UnsupportedError:
                # podman 4: nothing revives a stopped container but podman-restart.service
                # at boot; after such a reboot the client's rollback or commit settles it.
                log(
                    f"note: {c.name} keeps restart policy {c.restart_policy} "
                    "(the engine cannot change it)"
                )
    if not containers:
        return

    def stop(c: ContainerInfo) -> None:
        log(f"stopping {c.name} ({short(c.id)})")
        ctx.engine.stop(c.id, seconds)

    with ThreadPoolExecutor(max_workers=min(8, len(containers))) as pool:
        for future in [pool.submit(stop, c) for c in containers]:
            future.result()

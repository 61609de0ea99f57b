"""Volume snapshots: a release's data rolls back with it.

A release asks for them per container (meta-data `snapshot_volumes`, written by
`docker-artifact-gen --snapshot-volumes` or a service's `x-mender-snapshot:
true`): the volumes, named and anonymous, of the container it replaces (the one
holding its name) are copied once the old containers have stopped and before
the new ones start, so the copy is consistent. A rollback (health gate,
explicit, after a crash, after a commit) copies them back before the previous
containers start again; the cleanup after a commit, or after the rolled-back
failure, deletes them. The device may forbid them (`snapshot_volumes = never`).

Copies are `cp -a -T --reflink=auto --sparse=always` of the volume's mountpoint
on the host (owners, modes, xattrs, hard links and holes kept; extents shared
where the filesystem can: btrfs, XFS) into `<data_dir>/snapshots/<deployment>/`.
Each step is journalled (`Deployment.snapshots`: volume, mountpoint, state):

  copying    before the copy to `<volume>.partial`; renamed to `<volume>` once
             complete and flushed. A crash here leaves the volume untouched (no
             new container has started yet): undo deletes the partial copy.
  taken      the snapshot is complete.
  restoring  before the volume's contents are cleared and the snapshot copied
             in. A crash here leaves the volume partly restored but nothing runs
             on it: the previous containers start only after undo, run again,
             has finished the restore from the intact snapshot.
  restored   the volume holds the snapshot again.
  dropped    a copy that never completed, deleted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import TYPE_CHECKING, Dict, List, Mapping, Sequence

from mender_docker.module.errors import DeploymentError
from mender_docker.module.log import log, short

if TYPE_CHECKING:  # deployment.py imports this module: no journal or context at run time
    from mender_docker.module.context import Context
    from mender_docker.module.engine import ContainerInfo
    from mender_docker.module.journal import Journal
    from mender_docker.spec import PlannedContainer

COPYING, TAKEN, RESTORING, RESTORED, DROPPED = (
    "copying", "taken", "restoring", "restored", "dropped"
)  # fmt: skip
COPY = ["cp", "-a", "-T", "--reflink=auto", "--sparse=always"]


def refuse_if_forbidden(ctx: Context, plan: Sequence[PlannedContainer]) -> None:
    """Download: the device's owner may forbid snapshots (`snapshot_volumes = never`)."""
    if ctx.config.snapshot_volumes == "never" and any(item.snapshot for item in plan):
        asking = ", ".join(item.name for item in plan if item.snapshot)
        raise DeploymentError(
            f"the release asks for volume snapshots ({asking}); this device's setting "
            "snapshot_volumes = never forbids them"
        )


def volumes_to_snapshot(
    plan: Sequence[PlannedContainer], holders: Mapping[str, ContainerInfo]
) -> List[str]:
    """The volumes of the containers the release replaces where it asks for a snapshot."""
    names = [
        volume.name
        for item in plan
        if item.snapshot and item.name in holders
        for volume in holders[item.name].volumes
    ]
    return list(dict.fromkeys(names))


def tree_bytes(path: str) -> int:
    """The disk space the files under `path` take (holes not counted)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def space_needed(ctx: Context, plan: Sequence[PlannedContainer]) -> int:
    """Bytes the snapshots of this release would take (a plain copy: no reflinks assumed)."""
    if not any(item.snapshot for item in plan):
        return 0
    everything = ctx.engine.inspect_containers(ctx.engine.list_containers(all=True))
    holders = {c.name: c for c in everything}
    total = 0
    for name in volumes_to_snapshot(plan, holders):
        mountpoint = ctx.engine.volume_mountpoint(name)
        if mountpoint and os.path.isdir(mountpoint):
            total += tree_bytes(mountpoint)
    return total


def check_space(ctx: Context, plan: Sequence[PlannedContainer]) -> None:
    """Download: refuse a release whose snapshots would not fit in the data directory."""
    need = space_needed(ctx, plan)
    if not need:
        return
    directory = ctx.config.journal_dir
    os.makedirs(directory, mode=0o700, exist_ok=True)
    stat = os.statvfs(directory)
    free = stat.f_bavail * stat.f_frsize
    if need > free:
        raise DeploymentError(
            f"not enough space for the volume snapshots in {directory}: they need "
            f"{need // 2**20} MiB, {free // 2**20} MiB free"
        )
    log(f"volume snapshots need {need // 2**20} MiB, {free // 2**20} MiB free in {directory}")


def snapshot_dir(ctx: Context, deployment_id: str) -> str:
    return os.path.join(ctx.config.journal_dir, "snapshots", deployment_id)


def copy_tree(source: str, target: str) -> None:
    """`target` becomes a copy of `source` (created, or filled if it exists)."""
    done = subprocess.run(  # noqa: S603 - argument list, no shell
        [*COPY, "--", source, target], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        said = (done.stderr or "").strip().splitlines()
        raise DeploymentError(f"cannot copy {source} to {target}: {said[-1] if said else ''}")


def clear_dir(path: str) -> None:
    """Remove everything inside `path` (symbolic links are removed, never followed)."""
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def take(ctx: Context, journal: Journal, names: Sequence[str]) -> None:
    """Install, between stop and start: snapshot each volume, journalled step by step."""
    deployment = journal.deployment
    assert deployment is not None
    if not names:
        return
    running = ctx.engine.inspect_containers(ctx.engine.list_containers())
    in_use = {v.name: c.name for c in running for v in c.volumes}
    root = snapshot_dir(ctx, deployment.id)
    for name in names:
        if name in in_use:  # a copy under a running writer would not be consistent
            log(f"warning: not snapshotting volume {short(name)}: {in_use[name]} runs on it")
            continue
        mountpoint = ctx.engine.volume_mountpoint(name)
        if not mountpoint or not os.path.isdir(mountpoint):
            raise DeploymentError(
                f"cannot snapshot volume {name}: its mountpoint {mountpoint!r} is not "
                "a directory on this host (a volume driver other than local?)"
            )
        entry: Dict[str, str] = {"volume": name, "mountpoint": mountpoint, "state": COPYING}
        # an install run again (after undo restored the earlier attempt's) takes a new one
        deployment.snapshots = [e for e in deployment.snapshots if e["volume"] != name]
        deployment.snapshots.append(entry)
        ctx.store.save(journal)
        os.makedirs(root, mode=0o700, exist_ok=True)
        partial, final = os.path.join(root, name + ".partial"), os.path.join(root, name)
        _remove(partial)
        _remove(final)
        started = time.monotonic()
        copy_tree(mountpoint, partial)
        os.sync()  # the snapshot is on disk before the journal says it is complete
        os.rename(partial, final)
        _sync_dir(root)
        entry["state"] = TAKEN
        ctx.store.save(journal)
        log(f"snapshot of volume {short(name)} taken in {time.monotonic() - started:.2f} s")


def restore(ctx: Context, journal: Journal) -> None:
    """Undo, before the previous containers start: put every snapshot back."""
    deployment = journal.deployment
    assert deployment is not None
    root = snapshot_dir(ctx, deployment.id)
    for entry in deployment.snapshots:
        name, state = entry["volume"], entry["state"]
        final = os.path.join(root, name)
        if state == COPYING:  # never complete: no new container ran, the volume is as it was
            _remove(os.path.join(root, name + ".partial"))
            _remove(final)
            entry["state"] = DROPPED
            ctx.store.save(journal)
        elif state in (TAKEN, RESTORING):
            mountpoint = ctx.engine.volume_mountpoint(name) or entry["mountpoint"]
            if not os.path.isdir(final) or not os.path.isdir(mountpoint):
                log(f"warning: cannot restore volume {short(name)}: snapshot or volume gone")
                continue
            entry["state"] = RESTORING
            ctx.store.save(journal)
            log(f"restoring volume {short(name)} from its snapshot")
            clear_dir(mountpoint)
            copy_tree(final, mountpoint)
            os.sync()
            entry["state"] = RESTORED
            ctx.store.save(journal)


def drop(ctx: Context, journal: Journal, committed: bool) -> None:
    """Cleanup: delete the deployment's snapshots, after a commit or once restored."""
    deployment = journal.deployment
    assert deployment is not None
    if not deployment.snapshots:
        return
    if not committed and any(e["state"] in (TAKEN, RESTORING) for e in deployment.snapshots):
        log("warning: keeping volume snapshots that were never restored")
        return
    root = snapshot_dir(ctx, deployment.id)
    if os.path.lexists(root):
        log(f"deleting the volume snapshots of {deployment.artifact}")
        _remove(root)

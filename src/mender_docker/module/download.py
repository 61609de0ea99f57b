"""Download: validate, check space, pull every image by digest and verify it.

Nothing running is touched here: the client verifies the artifact only after
Download, and pulling before anything stops keeps the outage short.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

from mender_docker.module.context import Context
from mender_docker.module.errors import DeploymentError, EngineError
from mender_docker.module.finish import cleanup_committed
from mender_docker.module.journal import (
    COMMITTED,
    DOWNLOADED,
    DOWNLOADING,
    INSTALLED,
    INSTALLING,
    ROLLING_BACK,
    Deployment,
)
from mender_docker.module.log import log
from mender_docker.module.policy import check, policy_from_settings
from mender_docker.module.rollback import undo
from mender_docker.spec import DockerMetadata, PlannedContainer

UNFINISHED = (INSTALLING, INSTALLED, ROLLING_BACK)


def allowed_plan(ctx: Context, meta: DockerMetadata) -> List[PlannedContainer]:
    """The containers to run, once the owner's policy allows every one of them."""
    plan = meta.plan()
    policy = policy_from_settings(ctx.config.policy_settings())
    if policy.active:
        check(plan, policy)
    return plan


def download(ctx: Context) -> None:
    meta = ctx.read_metadata()
    for warning in meta.warnings:
        log(f"warning: {warning}")
    allowed_plan(ctx, meta)
    drain_streams(ctx.tree)
    # fail early, before the journal changes, when the engine does not answer
    log(f"container engine {ctx.config.engine} {ctx.engine.version()}")
    finish_earlier_deployment(ctx)
    deployment_id = ctx.deployment_id(fresh=True)
    assert deployment_id is not None
    prepare_images(ctx, meta, deployment_id)


def finish_earlier_deployment(ctx: Context) -> None:
    """A new deployment must not overwrite the journal of an unfinished one."""
    journal = ctx.store.load()
    earlier = journal.deployment
    if earlier is None:
        return
    if earlier.phase in UNFINISHED:
        log(f"deployment {earlier.artifact} was left {earlier.phase}: rolling it back first")
        undo(ctx, journal)
    elif earlier.phase == COMMITTED:
        log(f"deployment {earlier.artifact} was committed but not cleaned up: cleaning up")
        cleanup_committed(ctx, journal)


def prepare_images(ctx: Context, meta: DockerMetadata, deployment_id: str) -> Deployment:
    """Record, then pull, what is missing; verify every image. Returns the new deployment."""
    plan = meta.plan()
    images: List[str] = []
    expected_ids: Dict[str, Optional[str]] = {}
    sizes: Dict[str, Optional[int]] = {}
    for item in plan:
        if item.image not in expected_ids:
            images.append(item.image)
        expected_ids[item.image] = item.image_id
        sizes[item.image] = item.image_size
    missing = [ref for ref in images if not image_present(ctx, ref)]
    check_space(ctx, [sizes[ref] for ref in missing], meta.image_sizes is not None)
    journal = ctx.store.load()
    pulled = missing
    if journal.deployment is not None and journal.deployment.id == deployment_id:
        # the same deployment again (Install after Download): keep what Download pulled
        before = journal.deployment.pulled
        pulled = before + [ref for ref in missing if ref not in before]
    deployment = Deployment(
        id=deployment_id,
        artifact=ctx.artifact_name(),
        phase=DOWNLOADING,
        tree=os.path.abspath(ctx.tree),
        scope=ctx.config.scope,
        images=images,
        pulled=pulled,
    )
    journal.deployment = deployment
    ctx.store.save(journal)  # before pulling: Cleanup then knows what to remove
    for ref in missing:
        pull(ctx, ref)
    for ref in images:
        verify_image(ctx, ref, expected_ids[ref])
    deployment.phase = DOWNLOADED
    ctx.store.save(journal)
    return deployment


def image_present(ctx: Context, ref: str) -> bool:
    info = ctx.engine.inspect_image(ref)
    return info is not None and has_digest(info.repo_digests, ref)


def has_digest(repo_digests: Sequence[str], ref: str) -> bool:
    digest = ref.rsplit("@", 1)[1]
    return any(entry.endswith("@" + digest) for entry in repo_digests)


def pull(ctx: Context, ref: str) -> None:
    attempts = ctx.config.pull_retries + 1
    for attempt in range(1, attempts + 1):
        log(f"pulling {ref}" + (f" (attempt {attempt} of {attempts})" if attempt > 1 else ""))
        try:
            ctx.engine.pull(ref)
            return
        except EngineError as exc:
            if attempt == attempts:
                raise DeploymentError(f"cannot pull {ref}: {exc}") from None
            log(f"pull failed: {exc}")
            ctx.sleep(float(2**attempt))


def verify_image(ctx: Context, ref: str, expected_id: Optional[str]) -> None:
    info = ctx.engine.inspect_image(ref)
    if info is None:
        raise DeploymentError(f"image {ref} is not on the device after the pull")
    if not has_digest(info.repo_digests, ref):
        raise DeploymentError(
            f"image {ref} does not match its digest (engine reports {list(info.repo_digests)})"
        )
    if expected_id and info.id != expected_id:
        raise DeploymentError(f"image {ref} has ID {info.id}, the artifact expects {expected_id}")


def check_space(ctx: Context, sizes: List[Optional[int]], have_sizes: bool) -> None:
    if not sizes:
        return
    if not have_sizes:
        log("meta-data has no image_sizes: skipping the free-space check")
        return
    root = ctx.engine.data_root()
    try:
        if not root:
            raise OSError("the engine reports no data root")
        stat = os.statvfs(root)
    except OSError as exc:
        log(f"cannot check free space ({exc}): skipping the free-space check")
        return
    need = sum(size or 0 for size in sizes)
    free = stat.f_bavail * stat.f_frsize
    if need > free:
        raise DeploymentError(
            f"not enough space in {root}: the images need {need // 2**20} MiB, "
            f"{free // 2**20} MiB free"
        )
    log(f"free space in {root}: {free // 2**20} MiB, images need {need // 2**20} MiB")


def drain_streams(tree: str) -> None:
    """Read `stream-next` until an empty read, so the client never blocks on us.

    Docker artifacts have no payload files; should one come, it is read and discarded."""
    next_path = os.path.join(tree, "stream-next")
    if not os.path.exists(next_path):
        return
    while True:
        with open(next_path, "rb") as handle:
            line = handle.read().decode("utf-8", "replace").strip()
        if not line:
            return
        log(f"warning: ignoring unexpected payload file {line}")
        with open(os.path.join(tree, line), "rb") as stream:
            while stream.read(1 << 20):
                pass

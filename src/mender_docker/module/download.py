"""Download: validate, check space, pull every image by digest and verify it.

Nothing running is touched here: the client verifies the artifact only after
Download, and pulling before anything stops keeps the outage short. An earlier
deployment left unfinished is finished first (deployment.finish_earlier_deployment);
the images are prepared by module/images.py, which also takes an offline
artifact's payload from the client's pipe (module/streams.py).
"""

from __future__ import annotations

from mender_docker.module.context import Context
from mender_docker.module.deployment import (
    all_containers,
    allowed_plan,
    check_names,
    finish_earlier_deployment,
    ours_among,
)
from mender_docker.module.images import prepare_images
from mender_docker.module.log import log
from mender_docker.module.snapshots import check_space, refuse_if_forbidden
from mender_docker.module.streams import drain_streams


def download(ctx: Context) -> None:
    meta = ctx.read_metadata()
    for warning in meta.warnings:
        log(f"warning: {warning}")
    # fail early, before the journal changes, when the engine does not answer
    log(f"container engine {ctx.config.engine} {ctx.engine.version()}")
    everything = all_containers(ctx)
    plan = allowed_plan(ctx, meta, everything)
    check_names(ctx, plan, everything, ours_among(ctx, ctx.store.load(), everything))
    refuse_if_forbidden(ctx, plan)
    if meta.images_file is None:
        drain_streams(ctx.tree)
    check_space(ctx, plan)
    finish_earlier_deployment(ctx)
    deployment_id = ctx.deployment_id(fresh=True)
    assert deployment_id is not None
    prepare_images(ctx, meta, deployment_id, streaming=True)

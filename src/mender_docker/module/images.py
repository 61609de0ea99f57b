"""Image preparation, shared by Download and ArtifactInstall: record, pull or load,
verify.

Online artifacts: every image is pulled by digest (what is absent is journalled
first, so Cleanup knows what to remove) and checked against its digest and the
image ID the header promises.

Offline artifacts (meta-data `images_file`) carry the images: the payload is
streamed from the client's pipe (module/streams.py) straight into `docker load`,
checked against the signed header on the way (module/offline.py; its head,
manifest.json and the configs, which tie each image to its reference through the
registry manifest it carries (module/provenance.py), before the journal
changes), and each image is then found by its loaded tag (`spec.loaded_tag`) and
verified by image ID.
Images already loaded with the right ID are not loaded again. Whatever a failed
load left is removed at once, and Cleanup removes what a deployment loaded if it
fails later.

Delta offline artifacts (meta-data `delta_base`) leave out the first layers of
some images (`PlannedContainer.base_layers`; zero-byte placeholders stand in the
payload under their usual names): the engine must already hold them as a chain,
from the base release. That is checked before anything changes, and a delta the
device cannot take is refused with the first missing layer, its payload read to
the end and dropped (`check_base_layers`).
"""

from __future__ import annotations

import os
from typing import IO, Callable, Dict, List, Optional, Sequence, Set, Tuple

from mender_docker.module.context import Context
from mender_docker.module.deployment import Phase, remove_unused_images
from mender_docker.module.engine import Feed
from mender_docker.module.errors import (
    DeploymentError,
    EngineError,
    ModuleError,
    NoSuchObjectError,
)
from mender_docker.module.journal import Deployment, Journal
from mender_docker.module.log import log
from mender_docker.module.offline import MANIFEST, PayloadChecker, PayloadError
from mender_docker.module.streams import payload_piped, refuse_payload, take_payload
from mender_docker.spec import DockerMetadata, PlannedContainer, loaded_tag, shared_layers

# Local-only repository of the transient images `docker import` makes (see load_checked).
IMPORT_REPOSITORY = "mender-docker-import"


def prepare_images(
    ctx: Context, meta: DockerMetadata, deployment_id: str, streaming: bool = False
) -> Deployment:
    """Record, then pull, what is missing; verify every image. Returns the new deployment."""
    if meta.images_file is not None:
        return prepare_embedded(ctx, meta, deployment_id, streaming)
    plan = ctx.plan(meta)
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
    journal, deployment = record_deployment(ctx, deployment_id, images, missing)
    for ref in missing:
        pull(ctx, ref)
    for ref in images:
        verify_image(ctx, ref, expected_ids[ref])
    deployment.phase = Phase.DOWNLOADED
    ctx.store.save(journal)
    return deployment


def record_deployment(
    ctx: Context, deployment_id: str, images: List[str], missing: List[str]
) -> Tuple[Journal, Deployment]:
    """Journal the deployment before fetching anything, so Cleanup knows what to remove.

    The same deployment again (Install after Download) keeps what was fetched before."""
    journal = ctx.store.load()
    fetched = missing
    if journal.deployment is not None and journal.deployment.id == deployment_id:
        before = journal.deployment.pulled
        fetched = before + [ref for ref in missing if ref not in before]
    deployment = Deployment(
        id=deployment_id,
        artifact=ctx.artifact_name(),
        phase=Phase.DOWNLOADING,
        tree=os.path.abspath(ctx.tree),
        scope=ctx.config.scope,
        images=images,
        pulled=fetched,
    )
    # the record of the release that runs outlives the deployment record it came from
    journal.owned = journal.release_containers()
    journal.deployment = deployment
    ctx.store.save(journal)
    return journal, deployment


def prepare_embedded(
    ctx: Context, meta: DockerMetadata, deployment_id: str, streaming: bool
) -> Deployment:
    """Check, record, then load what is missing from the payload; verify every image.

    `streaming` (Download): the payload comes through the client's stream pipe;
    otherwise (ArtifactInstall re-checking) from files/<name> if the client
    stored it there. The payload's head (manifest.json and the configs, which
    tie each image to its reference) is checked before the journal changes."""
    assert meta.images_file is not None
    expected: Dict[str, str] = {}  # loaded tag -> image ID the header promises
    sizes: Dict[str, Optional[int]] = {}
    planned: Dict[str, PlannedContainer] = {}
    try:  # nothing has changed yet: a refusal reads the payload and drops it
        for item in ctx.plan(meta):
            assert item.image_id is not None  # parse_metadata requires image_ids
            tag = loaded_tag(item.image)
            if expected.setdefault(tag, item.image_id) != item.image_id:
                raise DeploymentError(f"image {item.image} is listed with two different image IDs")
            sizes[tag] = item.image_size
            planned.setdefault(tag, item)
        missing = [tag for tag in expected if not loaded_as(ctx, tag, expected[tag])]
        check_base_layers(ctx, meta, [planned[tag] for tag in missing])
        check_space(ctx, [sizes[tag] for tag in missing], meta.image_sizes is not None)
    except ModuleError:
        if streaming:
            refuse_payload(ctx.tree)
        raise
    strict = ctx.config.allowed_registries is not None
    result: List[Deployment] = []

    def take(source: IO[bytes]) -> None:
        checker = PayloadChecker(source, expected, require_manifests=strict)
        checker.head()  # a refusal here changes nothing
        result.append(load_embedded(ctx, deployment_id, meta, expected, missing, checker))

    if streaming and payload_piped(ctx.tree):
        take_payload(ctx.tree, meta.images_file, take)
        return result[0]
    path = os.path.join(ctx.tree, "files", meta.images_file)
    if not (missing and os.path.isfile(path)):
        return load_embedded(ctx, deployment_id, meta, expected, missing, None)
    with open(path, "rb") as source:
        take(source)
    return result[0]


def load_embedded(
    ctx: Context,
    deployment_id: str,
    meta: DockerMetadata,
    expected: Dict[str, str],
    missing: List[str],
    checker: Optional[PayloadChecker],
) -> Deployment:
    """Record the deployment, load the `missing` images through `checker` (its
    head checked already; None: no payload at hand), verify every image."""
    journal, deployment = record_deployment(ctx, deployment_id, list(expected), missing)

    def transient_tag(layer_file: str) -> str:
        """A tag of this deployment's own for an imported base layer, recorded in
        the journal before use (Cleanup removes it after a crash)."""
        tag = f"{IMPORT_REPOSITORY}:{deployment_id}-{layer_file[:64]}"
        if tag not in deployment.pulled:
            deployment.pulled.append(tag)
            ctx.store.save(journal)
        return tag

    try:
        if checker is not None and missing:
            load_checked(ctx, checker, transient_tag)
        elif checker is not None:
            log("all embedded images are already loaded: skipping the payload")
        elif missing:
            raise DeploymentError(
                f"image(s) {', '.join(missing)} are not loaded and the payload file "
                f"{meta.images_file} is not available"
            )
        for tag, image_id in expected.items():
            info = ctx.engine.inspect_image(tag)
            if info is None:
                raise PayloadError(f"header image {tag} was not loaded from the payload")
            if info.id != image_id:
                raise PayloadError(f"image {tag} has ID {info.id}, the artifact expects {image_id}")
    except BaseException:
        # nothing runs from a refused payload: remove what it loaded now
        remove_unused_images(ctx, missing)
        raise
    deployment.phase = Phase.DOWNLOADED
    ctx.store.save(journal)
    return deployment


def loaded_as(ctx: Context, tag: str, image_id: str) -> bool:
    info = ctx.engine.inspect_image(tag)
    return info is not None and info.id == image_id


def check_base_layers(ctx: Context, meta: DockerMetadata, to_load: List[PlannedContainer]) -> None:
    """A delta artifact: every image to load whose first layers the payload leaves
    out needs them on the device as a chain (some image's layers start with exactly
    these). DeploymentError naming the first layer missing, else nothing; no engine
    call unless some image to load has base layers."""
    needing = [item for item in to_load if item.base_layers]
    if not needing:
        return
    chains = ctx.engine.layer_chains()
    for item in needing:
        layer = first_missing_layer(chains, item.base_layers)
        if layer is not None:
            raise DeploymentError(
                f"this delta needs layer {layer[:19]} of release {meta.delta_base} "
                f"(for image {item.image}): install the full artifact"
            )
    log(f"delta of release {meta.delta_base}: the base layers of "
        f"{len(needing)} image(s) are on the device")  # fmt: skip


def first_missing_layer(chains: Sequence[Sequence[str]], base: Sequence[str]) -> Optional[str]:
    """The first layer of the chain `base` the engine lacks, or None: a layer is
    there as part of a chain when some image's chain starts with that chain."""
    held = shared_layers(chains, base)
    return None if held >= len(base) else base[held]


def load_payload(
    ctx: Context,
    source: IO[bytes],
    expected: Dict[str, str],
    transient_tag: Callable[[str], str],
) -> None:
    """Stream the payload, checked against `expected`, into the engine (load_checked)."""
    load_checked(ctx, PayloadChecker(source, expected), transient_tag)


def load_checked(
    ctx: Context, checker: PayloadChecker, transient_tag: Callable[[str], str]
) -> None:
    """Stream the checked payload into the engine.

    `docker load` first copies its whole input into the engine's temp dir, so
    where the engine allows it (dockerd's classic layer store) each image's
    first layer (usually the largest) bypasses it: it goes to
    `docker import` (which registers a layer straight from its input)
    under a `transient_tag` (journalled first); the load then finds
    that layer present and skips it. The transient tags are removed at the end:
    the loaded images hold the layers. A delta artifact's zero-byte placeholder
    of a base layer is never imported (that would register an empty layer): it
    goes to the load like any other member, and the engine finds the chain it
    stands for already there (dockerd skips the layer file, podman reuses the
    layer by its digest)."""
    log(f"loading {len(checker.expected)} embedded image(s)")
    split_base = ctx.engine.imports_base_layers()
    load = ctx.engine.start_load()
    importing: Optional[Feed] = None
    transient: List[str] = []
    bases: Set[str] = set()
    try:
        for kind, name, data in checker.events():
            if kind == "header" and name == MANIFEST:
                pass
            elif kind == "header":
                bases = bases or (checker.base_layers if split_base else set())
                if name in bases and checker.member_size > 0:
                    tag = transient_tag(name)
                    transient.append(tag)
                    importing = ctx.engine.start_import(tag)
            if importing is None:
                load.write(data)
            elif kind == "data":
                importing.write(data)
            elif kind == "pad":  # the layer's tar padding is not part of it
                importing.finish()
                importing = None
        output = load.finish()
    except BaseException:
        if importing is not None:
            importing.abort()
        load.abort()
        raise
    finally:
        for tag in transient:
            try:
                ctx.engine.remove_image(tag)
            except NoSuchObjectError:
                pass  # its import failed: nothing was tagged
            except EngineError as exc:
                log(f"warning: cannot remove transient image {tag}: {exc}")
    for line in output.strip().splitlines():
        log(line.strip())


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

"""The artifact generator: image references -> pinned digests -> docker meta-data -> artifact.

Same artifact as the original `docker-artifact-gen` for the same options (type
`docker`, provides `rootfs-image.docker.version = <artifact name>`, clears
`rootfs-image.docker.*`, meta-data `containers` + `run_args`), but the digests
come from the registry (no daemon, no layer download) and the artifact is
written natively (no mender-artifact binary). mender-artifact's provides/depends
rules are followed: software key `<filesystem>.<name>.version` (defaults
rootfs-image and the payload type), value defaulting to the artifact name, the
default clears entry `<filesystem>.<name>.*` after any given ones.
With `embed_images` the images travel inside the artifact (see offline.py);
with `delta_from` too, the layers the base release has stay out (see delta.py).
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from mender_docker.artifact import ArtifactSpec, load_private_key, write_artifact
from mender_docker.artifact.headers import check_script_name
from mender_docker.artifact.provides import SoftwareOptions, default_clears, software_provides
from mender_docker.compose.loader import load_project
from mender_docker.compose.model import ComposeError
from mender_docker.delta import (
    Base,
    DeltaReport,
    delta_name,
    depends_names,
    load_bases,
    omitter,
    unused_bases,
)
from mender_docker.errors import ArtifactError, GeneratorError, MenderDockerError
from mender_docker.gen_compose import Application, application
from mender_docker.offline import PAYLOAD_NAME, payload_file, payload_size
from mender_docker.registry.client import RegistryClient, ResolvedImage
from mender_docker.registry.docker_resolver import resolve_with_docker
from mender_docker.registry.export import (
    BlobStore,
    ExportedImage,
    Omit,
    Progress,
    RegistryExporter,
    export_with_docker,
    registry_manifests,
)
from mender_docker.spec import DockerMetadata, parse_metadata

PAYLOAD_TYPE = "docker"
RESOLVERS = ("registry", "docker")
Resolver = Callable[[str, Optional[str]], ResolvedImage]


@dataclass
class GenOptions:
    """Everything docker-artifact-gen accepts, already parsed."""

    artifact_name: str
    device_types: List[str]
    images: List[str]
    output_path: str = "docker-artifact.mender"
    run_args: str = ""
    # mender-artifact write module-image options the original passed through.
    software_name: Optional[str] = None
    software_version: Optional[str] = None
    software_filesystem: Optional[str] = None
    no_default_software_version: bool = False
    provides: List[Tuple[str, str]] = field(default_factory=list)
    depends: List[Tuple[str, str]] = field(default_factory=list)
    clears_provides: List[str] = field(default_factory=list)
    no_default_clears_provides: bool = False
    artifact_group: Optional[str] = None
    depends_groups: List[str] = field(default_factory=list)
    artifact_name_depends: List[str] = field(default_factory=list)
    compression: str = "gzip"
    key: Optional[str] = None
    scripts: List[str] = field(default_factory=list)
    # Our extras.
    platform: Optional[str] = None
    resolver: str = "registry"
    insecure_registries: List[str] = field(default_factory=list)
    names: List[str] = field(default_factory=list)
    container_args: List[str] = field(default_factory=list)
    health_timeout: Optional[float] = None
    health_window: Optional[float] = None
    stop_timeout: Optional[float] = None
    image_sizes: bool = True
    embed_images: bool = False  # offline artifact: the images travel in the payload
    delta_from: List[str] = field(default_factory=list)  # base artifact files or images
    compose_file: Optional[str] = None  # the services of a Compose file instead of images
    compose_overrides: List[str] = field(default_factory=list)  # more files, merged over it
    project_directory: Optional[str] = None  # Compose's --project-directory
    project_name: Optional[str] = None
    profiles: List[str] = field(default_factory=list)
    snapshot_volumes: bool = False  # every container: snapshot what it replaces
    application: Optional[Application] = None  # read from compose_file by generate()


@dataclass(frozen=True)
class GenResult:
    output_path: str
    metadata: DockerMetadata
    images: Tuple[ResolvedImage, ...]
    spec: ArtifactSpec
    embedded: Tuple[ExportedImage, ...] = ()
    delta: Optional[DeltaReport] = None


def check_options(options: GenOptions) -> None:
    """Everything that can be checked before talking to a registry."""
    if not options.artifact_name:
        raise GeneratorError("artifact name not specified (-n/--artifact-name)")
    if not options.device_types or not all(options.device_types):
        raise GeneratorError("device type not specified (-t/--device-type)")
    if not options.images:
        raise GeneratorError("no image given: list at least one IMAGE")
    if options.delta_from and not options.embed_images:
        raise GeneratorError("--delta-from needs --embed-images: only offline artifacts are deltas")
    if options.resolver not in RESOLVERS:
        raise GeneratorError(f"unknown resolver {options.resolver!r} (known: registry, docker)")
    count = len(options.images)
    if len(options.names) > count:
        raise GeneratorError(f"{len(options.names)} --name options for {count} image(s)")
    if len(options.container_args) > count:
        raise GeneratorError(
            f"{len(options.container_args)} --container-args options for {count} image(s)"
        )
    for script in options.scripts:
        try:
            check_script_name(os.path.basename(script))
        except ArtifactError as exc:
            raise GeneratorError(f"state script {script!r}: {exc}") from None
        if not os.path.isfile(script):
            raise GeneratorError(f"state script {script!r} not found")
    if options.key is not None and not os.path.isfile(options.key):
        raise GeneratorError(f"signing key {options.key!r} not found")
    check_output_path(options.output_path)


def with_application(options: GenOptions) -> GenOptions:
    """The options with the Compose file's services as the images to resolve."""
    assert options.compose_file is not None
    if options.images or options.names or options.container_args or options.run_args:
        raise GeneratorError(
            "--compose takes its images and settings from the Compose file: no IMAGE, "
            "--name, --container-args or --run-args with it"
        )
    try:
        project = load_project(
            [options.compose_file, *options.compose_overrides],
            options.project_name,
            options.profiles,
            project_directory=options.project_directory,
        )
        app = application(project, local_builds=options.resolver == "docker")
    except ComposeError as exc:
        raise GeneratorError(str(exc)) from None
    if not app.images:
        raise GeneratorError(f"{options.compose_file}: no service to deploy")
    return replace(options, images=list(app.images), application=app)


def check_output_path(path: str) -> None:
    target = Path(path)
    if not path or target.is_dir():
        raise GeneratorError(f"output path {path!r} is a directory")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise GeneratorError(f"output path {path!r}: directory {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise GeneratorError(f"output path {path!r}: directory {str(folder)!r} is not writable")


def default_resolver(options: GenOptions) -> Resolver:
    if options.resolver == "docker":
        return resolve_with_docker
    client = RegistryClient(insecure=options.insecure_registries)
    return client.resolve


def build_metadata(
    options: GenOptions,
    images: Sequence[ResolvedImage],
    embedded: Sequence[ExportedImage] = (),
    bases: Sequence[Base] = (),
) -> DockerMetadata:
    """The meta-data object, validated by the same code the device runs.

    For embedded images, image_ids (the device verifies what it loaded) and
    image_sizes (unpacked: what the device's engine needs) come from the
    exported images, and images_file names the payload file; when a layer is
    omitted (a delta on `bases`), delta_base and delta_layers say which."""
    count = len(images)
    sizes = tuple(image.size for image in images) if options.image_sizes else None
    ids = None
    if embedded:
        ids = tuple(image.image_id for image in embedded)
        sizes = tuple(image.uncompressed_size for image in embedded)
    names = list(options.names) + [""] * (count - len(options.names))
    extra = list(options.container_args) + [""] * (count - len(options.container_args))
    app = options.application
    metadata = DockerMetadata(
        containers=tuple(image.pinned for image in images),
        run_args=options.run_args,
        names=tuple(names) if options.names else None,
        container_args=tuple(extra) if options.container_args else None,
        image_ids=ids,
        image_sizes=sizes,
        health_timeout=options.health_timeout,
        health_window=options.health_window,
        stop_timeout=options.stop_timeout,
        images_file=PAYLOAD_NAME if embedded else None,
    )
    if any(image.omitted for image in embedded):
        metadata = replace(
            metadata,
            delta_base=delta_name(bases),
            delta_layers=tuple(",".join(image.base_layers) for image in embedded),
        )
    if app is not None:
        metadata = replace(
            metadata,
            container_args=app.container_args,
            names=app.names if any(app.names) else None,
            health_exec=app.health_exec if any(app.health_exec) else None,
            project=app.project,
            services=app.services,
            commands=app.commands if any(app.commands) else None,
            depends_on=app.depends_on if any(app.depends_on) else None,
            networks=app.networks or None,
            network_options=app.network_options if any(app.network_options) else None,
            volumes=app.volumes or None,
        )
    if options.snapshot_volumes:
        metadata = replace(metadata, snapshot_volumes=(1,) * count)
    elif app is not None and any(app.snapshots):
        metadata = replace(metadata, snapshot_volumes=app.snapshots)
    return parse_metadata(metadata.to_dict())


def build_spec(options: GenOptions, metadata: DockerMetadata) -> ArtifactSpec:
    """The artifact header, following mender-artifact's rules for module images."""
    rules = SoftwareOptions(
        kind="module-image",
        artifact_name=options.artifact_name,
        payload_type=PAYLOAD_TYPE,
        software_name=options.software_name,
        software_version=options.software_version,
        software_filesystem=options.software_filesystem,
        no_default_software_version=options.no_default_software_version,
        no_default_clears_provides=options.no_default_clears_provides,
        provides=options.provides,
        clears_provides=options.clears_provides,
        provides_win={key for key, _ in options.provides},  # -p always wins here
    )
    provides = software_provides(rules)
    clears = default_clears(rules)
    artifact_depends: Dict[str, List[str]] = {}
    if options.artifact_name_depends:
        artifact_depends["artifact_name"] = list(options.artifact_name_depends)
    if options.depends_groups:
        artifact_depends["artifact_group"] = list(options.depends_groups)
    return ArtifactSpec(
        artifact_name=options.artifact_name,
        device_types=list(options.device_types),
        payload_type=PAYLOAD_TYPE,
        artifact_group=options.artifact_group,
        artifact_depends=artifact_depends,
        provides=provides,
        depends=dict(options.depends),
        clears_provides=clears,
        meta_data=metadata.to_dict(),
        scripts=[(os.path.basename(path), Path(path).read_bytes()) for path in options.scripts],
    )


def resolve_all(options: GenOptions, resolve: Resolver) -> Tuple[ResolvedImage, ...]:
    """Resolve the images concurrently (each costs a few round trips to its
    registry); results and the first error keep the order of the command line.
    The docker resolver stays sequential, like the original's pulls."""
    if options.resolver == "docker" or len(options.images) == 1:
        return tuple(resolve(image, options.platform) for image in options.images)
    with ThreadPoolExecutor(max_workers=min(8, len(options.images))) as pool:
        return tuple(pool.map(lambda image: resolve(image, options.platform), options.images))


def load_signer(path: str) -> Any:
    try:
        return load_private_key(path)
    except MenderDockerError as exc:
        raise GeneratorError(f"signing key {path!r}: {exc}") from None


def export_all(
    options: GenOptions,
    store: BlobStore,
    progress: Optional[Progress] = None,
    omit: Optional[Omit] = None,
) -> Tuple[ExportedImage, ...]:
    """Fetch every image into `store` (one at a time: they may share layers);
    `progress` is told the bytes as they are fetched (the command line's bar);
    `omit` (a delta) says how many first layers of an image the device has."""
    if options.resolver == "docker":
        with RegistryClient(insecure=options.insecure_registries) as client:
            return tuple(
                export_with_docker(image, options.platform, store, progress, omit=omit,
                                   manifests=partial(registry_manifests, client=client))
                for image in options.images
            )  # fmt: skip
    exporter = RegistryExporter(insecure=options.insecure_registries)
    try:
        return tuple(
            exporter.export(image, options.platform, store, progress, omit)
            for image in options.images
        )
    finally:
        exporter.close()


def as_resolved(image: ExportedImage) -> ResolvedImage:
    return ResolvedImage(
        reference=image.reference,
        pinned=image.pinned,
        digest=image.pinned.rsplit("@", 1)[1],
        size=sum(layer.size for layer in image.layers) + image.config.size,
        media_type="",
    )


def generate_offline(
    options: GenOptions, signer: Any, progress: Optional[Progress] = None
) -> GenResult:
    """Embed the images: fetch the blobs to a temp store, stream the payload from it.
    A delta reads its bases first and leaves out the layers they have."""
    bases = load_delta_bases(options)
    folder = os.path.dirname(os.path.abspath(options.output_path))
    with tempfile.TemporaryDirectory(prefix=".mender-docker-blobs-", dir=folder) as temp:
        omit = omitter(bases) if bases else None
        embedded = export_all(options, BlobStore(temp), progress, omit)
        images = tuple(as_resolved(image) for image in embedded)
        metadata = build_metadata(options, images, embedded, bases)
        if metadata.delta_base is not None:  # only devices on a base release
            depends = list(options.artifact_name_depends)
            depends += [name for name in depends_names(bases) if name not in depends]
            options = replace(options, artifact_name_depends=depends)
        spec = build_spec(options, metadata)
        write_artifact(
            options.output_path,
            spec,
            files=[payload_file(embedded)],
            compression=options.compression,
            signer=signer,
        )
    report = delta_report(options.output_path, embedded, bases) if bases else None
    return GenResult(options.output_path, metadata, images, spec, embedded, report)


def load_delta_bases(options: GenOptions) -> List[Base]:
    """--delta-from's bases, before any image is fetched; a base artifact must
    name another release than the new one."""
    if not options.delta_from:
        return []
    bases = load_bases(
        options.delta_from, options.platform, options.resolver, options.insecure_registries
    )
    for base in bases:
        if base.artifact and base.name == options.artifact_name:
            raise GeneratorError(
                f"--delta-from: the base artifact is named {base.name!r} too: a delta"
                " must name a new release (-n)"
            )
    return bases


def delta_report(
    path: str, embedded: Sequence[ExportedImage], bases: Sequence[Base]
) -> DeltaReport:
    """The artifact's size against the full one's (the same with every layer in)."""
    size = os.path.getsize(path)
    full = size - payload_size(embedded) + payload_size(embedded, whole=True)
    omitted = sum(image.omitted for image in embedded)
    unused = tuple(unused_bases(bases, embedded))
    return DeltaReport(delta_name(bases), size, full, omitted, unused, len(bases))


def generate(
    options: GenOptions,
    resolver: Optional[Resolver] = None,
    progress: Optional[Progress] = None,
) -> GenResult:
    """Resolve every image, then write the artifact atomically to options.output_path.

    With embed_images, `progress` is called with the bytes of each chunk fetched."""
    if options.compose_file is not None and options.application is None:
        options = with_application(options)
    check_options(options)
    signer = load_signer(options.key) if options.key else None  # before any network
    if options.embed_images:
        return generate_offline(options, signer, progress)
    images = resolve_all(options, resolver or default_resolver(options))
    metadata = build_metadata(options, images)
    spec = build_spec(options, metadata)
    write_artifact(
        options.output_path, spec, files=[], compression=options.compression, signer=signer
    )
    return GenResult(options.output_path, metadata, images, spec)


def summary(result: GenResult) -> str:
    """A short account of what was written, in the spirit of `mender-artifact read`."""
    spec = result.spec
    lines = [
        f"Artifact {result.output_path} generated successfully:",
        f"  Name: {spec.artifact_name}",
        f"  Compatible devices: {', '.join(spec.device_types)}",
        f"  Type: {spec.payload_type}",
    ]
    if spec.artifact_group:
        lines.append(f"  Provides group: {spec.artifact_group}")
    for key, value in spec.artifact_depends.items():
        lines.append(f"  Depends on {key}: {', '.join(value)}")
    lines.append("  Provides:" if spec.provides else "  Provides: nothing")
    lines += [f"    {key}: {value}" for key, value in spec.provides.items()]
    if spec.depends:
        lines.append("  Depends:")
        lines += [f"    {key}: {value}" for key, value in spec.depends.items()]
    lines.append(f"  Clears provides: {', '.join(spec.clears_provides) or 'nothing'}")
    lines.append("  Containers:")
    for image in result.images:
        lines.append(f"    {image.pinned}  ({image.size} bytes compressed)")
    if result.embedded:
        lines.append(f"  Embedded images ({PAYLOAD_NAME}):")
        for exported in result.embedded:
            reused = (
                f", {exported.omitted} of {len(exported.layers)} layers on the device already"
                if exported.omitted
                else ""
            )
            lines.append(
                f"    {exported.image_id}  ({exported.uncompressed_size} bytes unpacked{reused})"
            )
    if result.delta is not None:
        lines.append(f"  {result.delta.line()}")
    if result.metadata.run_args:
        lines.append(f"  Run args: {result.metadata.run_args}")
    meta = result.metadata
    if meta.project is not None and meta.services is not None:
        lines.append(f"  Compose project {meta.project}: services {', '.join(meta.services)}")
        if meta.networks:
            lines.append(f"    networks: {', '.join(meta.networks)}")
        if meta.volumes:
            lines.append(f"    volumes (never removed): {', '.join(meta.volumes)}")
    return "\n".join(lines)

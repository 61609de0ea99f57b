"""The docker payload's meta-data: the one contract shared by generator and module.

Standard library only: this file ships inside the device-side module.

The original generator writes two keys, kept exactly:

    containers  list of image references pinned by digest, "repo[:tag]@sha256:<hex>"
                (docker's grammar, with the limits of imageref.py)
    run_args    one string of `docker run` arguments for every container

Extension keys are flat (Mender meta-data allows only strings, numbers and
lists of them at the top level) and optional. Lists hold one entry per
container, in the order of `containers`:

    names           container names; "" lets the module derive one
    container_args  extra `docker run` arguments for that container,
                    appended after `run_args`
    health_timeout  seconds the health gate may take in all
    health_window   seconds each new container must stay running (and
                    healthy, if its image has a health check)
    stop_timeout    seconds an old container gets to stop before it is killed
    image_ids       image IDs ("sha256:<hex>", the config digest) to verify
                    after loading embedded images
    image_sizes     bytes each image needs on the device, for the disk check
    images_file     name of the payload file holding the images (offline
                    artifacts, `docker load` layout); the module loads them
                    from it instead of pulling, and needs `image_ids`
    delta_base      a delta offline artifact: the release it applies to (the
                    base artifact's name, or the base image references)
    delta_layers    per container: the diff IDs ("sha256:<hex>", comma-separated,
                    in order) of the image's first layers, which the payload
                    omits (empty placeholder files stand in for them); the
                    device must hold them as a chain (an image whose layers
                    start with exactly these). "" for an image sent whole.
    health_exec     per container: the argv of an exec-form health check
                    (Compose's `test: [CMD, ...]`), shlex-joined; "" for none.
                    The container's arguments carry it as docker takes it,
                    `--health-cmd=<the same text>` (a shell runs exactly that
                    argv); on podman the module passes it as the JSON array
                    podman reads as an exec-form check.
    network_options per entry of `networks`: its `network create` options,
                    shlex-joined, from NETWORK_OPTION_RE only (--internal,
                    --ipv6, --subnet, --gateway, --ip-range, --aux-address,
                    --opt); "" for a plain bridge network.
    snapshot_volumes per container: 1 to snapshot the volumes of the container it
                    replaces (the one holding its name) before it starts, and
                    restore them if the release is rolled back; 0 not to
                    (README "Stateful services")

Run arguments are split with `shlex` and passed as an argument list: no shell
ever sees them.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mender_docker import imageref
from mender_docker.runargs import RunArgs, RunArgsError, parse

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
# The syntax of a pinned reference, for quick checks: imageref's grammar with a digest
# required (split_pinned also applies its 255-character limit).
PINNED_REF_RE = re.compile(
    rf"^(?P<repo>{imageref.NAME})(?::(?P<tag>{imageref.TAG}))?@(?P<digest>{imageref.DIGEST})$"
)
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")

ORIGINAL_KEYS = ("containers", "run_args")
LIST_KEYS = (
    "names", "container_args", "image_ids", "image_sizes", "commands", "services", "depends_on",
    "networks", "volumes", "delta_layers", "health_exec", "network_options", "snapshot_volumes",
)  # fmt: skip
PER_CONTAINER_KEYS = (
    "names", "container_args", "image_ids", "image_sizes", "commands", "services", "depends_on",
    "delta_layers", "health_exec", "snapshot_volumes",
)  # fmt: skip
NUMBER_KEYS = ("health_timeout", "health_window", "stop_timeout")
STRING_KEYS = ("images_file", "project", "delta_base")
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")  # compose's project names
SERVICE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
ENGINE_OBJECT_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")  # network, volume names
MAX_OBJECTS = 100
# `network create` options a Compose network may carry (docker's and podman's alike)
NETWORK_OPTION_RE = re.compile(
    r"--internal|--ipv6|--(subnet|gateway|ip-range)=[0-9a-fA-F.:/]{1,64}"
    r"|--aux-address=[a-zA-Z0-9_.-]{1,64}=[0-9a-fA-F.:]{1,64}"
    r"|--opt=[a-zA-Z0-9_.-]{1,128}=[a-zA-Z0-9_.,:/-]{0,256}"
)
KNOWN_KEYS = ORIGINAL_KEYS + LIST_KEYS + NUMBER_KEYS + STRING_KEYS
DEFAULT_LABEL_NAMESPACE = "io.mender.docker"
# Bounds: every value has one, so no input can exhaust the device or overflow.
MAX_CONTAINERS = 1000
MAX_ARGS_TEXT = 128 * 1024  # characters in run_args or one container_args entry
MAX_ALL_ARGS_TEXT = 1024 * 1024  # characters in all of them together
MAX_SECONDS = {"health_timeout": 86400, "health_window": 86400, "stop_timeout": 3600}
MAX_IMAGE_SIZE = 1 << 50
MAX_LAYERS = 128  # docker's limit on an image's layers is 127
MAX_DELTA_BASE = 1024
MAX_WARNINGS = 10
# A payload file name both mender-artifact and our module accept.
PAYLOAD_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Embedded images are tagged "<repo>:" + this + "<hex of the manifest digest>":
# docker cannot tag by digest, and an untagged image is pruned as dangling.
LOADED_TAG_PREFIX = "sha256-"


class MetadataError(ValueError):
    """The meta-data breaks the contract; the message names the offending key."""


@dataclass(frozen=True)
class Dependency:
    """A Compose `depends_on` entry: start `service` first and wait for `condition`."""

    service: str
    condition: str = "service_started"
    restart: bool = False  # restart the dependent when `service` is replaced

    def __str__(self) -> str:
        return f"{self.service}:{self.condition}" + (":restart" if self.restart else "")


def parse_dependencies(text: str, where: str) -> Tuple[Dependency, ...]:
    """`db:service_healthy,cache:service_started:restart` (one meta-data entry)."""
    found: List[Dependency] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        service, _, rest = item.partition(":")
        condition, _, restart = rest.partition(":")
        condition = condition or "service_started"
        if (
            not SERVICE_RE.fullmatch(service)
            or condition not in CONDITIONS
            or restart
            not in (
                "",
                "restart",
            )
        ):
            raise MetadataError(
                f"{where}: dependency {item[:100]!r} is not SERVICE[:CONDITION[:restart]] "
                f"with a condition of {', '.join(CONDITIONS)}"
            )
        found.append(Dependency(service, condition, restart == "restart"))
    return tuple(found)


@dataclass(frozen=True)
class PlannedContainer:
    """One container the artifact asks for, with everything needed to run it."""

    image: str  # repo@sha256:<hex> as listed in the artifact
    name: str
    args: Tuple[str, ...]  # `docker run` arguments, one `--option=value` each
    run: RunArgs = field(compare=False)  # the same arguments, parsed (render() == args)
    image_id: Optional[str] = None
    image_size: Optional[int] = None
    # a delta artifact: the diff IDs of the first layers the device must already have
    base_layers: Tuple[str, ...] = ()
    command: Tuple[str, ...] = ()  # after the image; () runs the image's own
    snapshot: bool = False  # snapshot the volumes of the container it replaces
    service: Optional[str] = None  # the Compose service it runs
    depends_on: Tuple[Dependency, ...] = ()

    @property
    def digest(self) -> str:
        return self.image.rsplit("@", 1)[1]

    @property
    def repository(self) -> str:
        return split_pinned(self.image)[0]


@dataclass(frozen=True)
class DockerMetadata:
    """The parsed meta-data of a `docker` payload."""

    containers: Tuple[str, ...]
    run_args: str = ""
    names: Optional[Tuple[str, ...]] = None
    container_args: Optional[Tuple[str, ...]] = None
    image_ids: Optional[Tuple[str, ...]] = None
    image_sizes: Optional[Tuple[int, ...]] = None
    health_timeout: Optional[float] = None
    health_window: Optional[float] = None
    stop_timeout: Optional[float] = None
    images_file: Optional[str] = None
    # a Compose application (docs: README "Compose applications"): the project, one
    # service per container, the networks and named volumes it needs
    commands: Optional[Tuple[str, ...]] = None
    project: Optional[str] = None
    services: Optional[Tuple[str, ...]] = None
    depends_on: Optional[Tuple[str, ...]] = None
    networks: Optional[Tuple[str, ...]] = None
    volumes: Optional[Tuple[str, ...]] = None
    network_options: Optional[Tuple[str, ...]] = None
    delta_base: Optional[str] = None
    delta_layers: Optional[Tuple[str, ...]] = None
    health_exec: Optional[Tuple[str, ...]] = None
    snapshot_volumes: Optional[Tuple[int, ...]] = None
    warnings: Tuple[str, ...] = field(default=(), compare=False)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON object to store in the artifact (original keys first)."""
        out: Dict[str, Any] = {"containers": list(self.containers), "run_args": self.run_args}
        for key in LIST_KEYS:
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value)
        for key in NUMBER_KEYS:
            value = getattr(self, key)
            if value is not None:
                out[key] = int(value) if float(value).is_integer() else value
        for key in STRING_KEYS:
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def plan(
        self, engine: Optional[str] = None, label_namespace: str = DEFAULT_LABEL_NAMESPACE
    ) -> List[PlannedContainer]:
        """Containers to run, with names and parsed arguments; checks names are unique
        and refuses what no device may run (see refuse_always).

        `engine` ("docker", "podman") parses with that engine's options; None
        accepts an option either knows (the generator does not know the device's)."""
        common_text = split_args(self.run_args, "run_args")
        tail: List[str] = []  # what each container's arguments continue
        try:  # parsed and checked once for all containers (1000 of them, 100 KB each)
            common = _Part.of(
                parse_run_args(common_text, engine, "run_args"), "run_args", label_namespace, engine
            )
        except MetadataError as exc:
            if "needs a value" not in str(exc):
                raise
            # its last option takes its value from the container's arguments: the rest
            # is still shared, parsed once (else 126 KB again for every container)
            common_text, tail = common_text[:-1], common_text[-1:]
            common = _Part.of(
                parse_run_args(common_text, engine, "run_args"), "run_args", label_namespace, engine
            )
        planned: List[PlannedContainer] = []
        used: Dict[str, int] = {}
        for index, image in enumerate(self.containers):
            where = f"container {index + 1} ({image})"
            own: List[str] = []
            if self.container_args is not None:
                own = split_args(self.container_args[index], f"container_args[{index}]")
            part = common + _Part.of(
                parse_run_args(tail + own, engine, where), where, label_namespace, engine
            )
            if self.images_file is not None and part.pull not in (None, "missing", "never"):
                raise MetadataError(
                    f"{where}: --pull={part.pull} would fetch the image from a registry: "
                    "the images of an offline artifact come with it"
                )
            if self.health_exec and self.health_exec[index]:
                part = _exec_health_check(part, self.health_exec[index], engine, where, index)
            service = self.services[index] if self.services else None
            name = part.name or (self.names[index] if self.names else "")
            if not name and self.project and service:
                name = f"{self.project}-{service}-1"  # as Compose names it
            if not name:
                base = derive_name(image)
                used[base] = used.get(base, 0) + 1
                name = base if used[base] == 1 else f"{base}-{used[base]}"
            planned.append(
                PlannedContainer(
                    image=image,
                    name=name,
                    args=part.args,
                    run=part.run,
                    image_id=self.image_ids[index] if self.image_ids else None,
                    image_size=self.image_sizes[index] if self.image_sizes else None,
                    base_layers=split_layers(self.delta_layers[index])
                    if self.delta_layers
                    else (),
                    command=tuple(
                        split_args(self.commands[index], f"commands[{index}]")
                        if self.commands
                        else ()
                    ),
                    service=service,
                    depends_on=parse_dependencies(self.depends_on[index], f"depends_on[{index}]")
                    if self.depends_on
                    else (),
                    snapshot=bool(self.snapshot_volumes and self.snapshot_volumes[index]),
                )
            )
        seen: Dict[str, str] = {}
        for item in planned:
            if not NAME_RE.fullmatch(item.name):  # fullmatch: `$` accepts a final newline
                raise MetadataError(f"invalid container name {item.name!r} for {item.image}")
            if item.name in seen:
                raise MetadataError(
                    f"container name {item.name!r} is used by both {seen[item.name]}"
                    f" and {item.image}"
                )
            seen[item.name] = item.image
        return planned


@dataclass(frozen=True)
class _Part:
    """Run arguments checked (refuse_always) and rendered, without --name, --detach
    and the other RUN_ONLY_DROPPED (the module names and detaches itself)."""

    run: RunArgs
    args: Tuple[str, ...]
    name: Optional[str]
    pull: Optional[str]

    @classmethod
    def of(cls, run: RunArgs, where: str, label_namespace: str, engine: Optional[str]) -> _Part:
        refuse_always(run, where, label_namespace, engine)
        clean = run.without(*RUN_ONLY_DROPPED)
        return cls(clean, tuple(clean.render()), run.last("name"), run.last("pull"))

    def __add__(self, other: _Part) -> _Part:
        return _Part(
            self.run + other.run,
            self.args + other.args,
            other.name or self.name,  # the engine keeps the last value
            other.pull or self.pull,
        )


def health_cmd(argv: Sequence[str], engine: Optional[str]) -> str:
    """The `--health-cmd` value that runs exactly `argv` on `engine`: podman reads a JSON
    array of two or more items as an exec-form check; docker's CLI takes only a shell
    command, so there (and for a single item) the argv is quoted for `/bin/sh -c`."""
    if engine == "podman" and len(argv) > 1 and argv[0].upper() not in ("CMD", "CMD-SHELL", "NONE"):
        return json.dumps(list(argv))
    return shlex.join(argv)


def _exec_health_check(
    part: _Part, text: str, engine: Optional[str], where: str, index: int
) -> _Part:
    """The container's `--health-cmd` rendered for `engine` from its `health_exec` entry."""
    argv = split_args(text, f"health_exec[{index}]")
    if not argv:
        raise MetadataError(f"health_exec[{index}]: an empty command")
    if part.run.last("health-cmd") != shlex.join(argv):
        raise MetadataError(
            f"{where}: health_exec[{index}] is not the exec form of the container's --health-cmd"
        )
    rendered = health_cmd(argv, engine)
    if rendered == shlex.join(argv):
        return part
    run = part.run.without("health-cmd") + parse_run_args(
        [f"--health-cmd={rendered}"], engine, where
    )
    return _Part(run, tuple(run.render()), part.name, part.pull)


def parse_run_args(args: Sequence[str], engine: Optional[str], where: str) -> RunArgs:
    try:
        return parse(args, engine)
    except RunArgsError as exc:
        raise MetadataError(f"{where}: {exc}") from None


# What no device runs, whatever its policy: each would break the module's own
# bookkeeping, so a rollback could not restore the previous containers.
ALWAYS_REFUSED = {
    "rm": "the engine would delete the container when it stops: no rollback to it",
    "rmi": "the engine would delete the image when the container stops",
    "replace": "the engine would delete any container that has the name",
    "cidfile": "the next create fails while the file exists",
    "label-file": "labels the module cannot check (its own labels must stay its own)",
    "help": "prints help instead of creating a container",
    # podman takes these in `run` only; the module creates, then starts
    "passwd": "podman's `create` does not take it",
    "preserve-fd": "podman's `create` does not take it",
    "preserve-fds": "podman's `create` does not take it",
}
# Options of an attached `docker run` only: the module creates and starts detached.
RUN_ONLY_DROPPED = ("name", "detach", "detach-keys", "sig-proxy")


# podman takes its global options after `run` too: they change the engine (where
# its state lives, the hooks and runtime it runs), not the container, and the
# module would lose the container. Docker has its own --storage-opt and --runtime.
PODMAN_GLOBALS = frozenset(
    (
        "cdi-spec-dir", "cgroup-manager", "conmon", "cpu-profile", "db-backend",
        "default-mounts-file", "events-backend", "hooks-dir", "imagestore", "log-level",
        "max-workers", "memory-profile", "module", "namespace", "network-backend",
        "network-cmd-path", "network-config-dir", "pull-option", "registries-conf", "root",
        "runroot", "runtime-flag", "storage-driver", "syslog", "tmpdir", "trace",
        "transient-store", "volumepath",
    )
)  # fmt: skip
PODMAN_GLOBALS_DOCKER_HAS = frozenset(("runtime", "storage-opt"))


def refuse_always(
    run: RunArgs, where: str, label_namespace: str, engine: Optional[str] = None
) -> None:
    if run.positionals:
        raise MetadataError(
            f"{where}: positional argument {run.positionals[0]!r} in run arguments: "
            "the engine would run it as the image instead of the pinned one"
        )
    for use in run.uses:
        if use.option in ALWAYS_REFUSED and use.value != "false":
            raise MetadataError(
                f"{where}: {use.raw!r} is never allowed ({ALWAYS_REFUSED[use.option]})"
            )
        if use.option == "label" and use.value.split("=", 1)[0].startswith(label_namespace + "."):
            raise MetadataError(
                f"{where}: {use.raw!r}: labels under {label_namespace}. are the module's own"
            )
        if use.option in PODMAN_GLOBALS or (
            engine == "podman" and use.option in PODMAN_GLOBALS_DOCKER_HAS
        ):
            raise MetadataError(
                f"{where}: {use.raw!r} is never allowed (a podman global option: it changes "
                "the engine, not the container)"
            )
        if use.option == "name" and not use.value:
            raise MetadataError(f"{where}: '--name' in run arguments needs a value")


def split_pinned(reference: str) -> Tuple[str, str]:
    """Split "repo[:tag]@sha256:..." into (repo, digest); repo as written.

    The grammar is imageref's (docker's); a reference it refuses, or one without
    a digest, is a MetadataError naming the reason."""
    shown = repr(reference if len(reference) <= 100 else reference[:100] + "...")
    expected = f"image reference {shown} is not pinned by digest (repo[:tag]@sha256:<64 hex>)"
    try:
        parsed = imageref.parse_image_reference(reference)
    except imageref.ImageReferenceError as exc:
        raise MetadataError(f"{expected}: {exc}") from None
    if parsed.digest is None:
        raise MetadataError(expected)
    return parsed.name, parsed.digest


def loaded_tag(reference: str) -> str:
    """The tag an embedded image gets on the device: "<repo>:sha256-<hex>".

    One tag per pinned reference, derived from it alone, so the generator
    writes it into the payload and the module finds the image by it."""
    repo, digest = split_pinned(reference)
    return f"{repo}:{LOADED_TAG_PREFIX}{digest.split(':', 1)[1]}"


def derive_name(image: str) -> str:
    """A stable container name from the image's last path component."""
    repo = split_pinned(image)[0]
    last = repo.rsplit("/", 1)[-1]
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", last) or "container"


@functools.lru_cache(maxsize=2048)  # the generator and the module plan the same texts twice
def _shlex_split(text: str) -> Tuple[str, ...]:
    return tuple(shlex.split(text))


def split_args(text: str, where: str) -> List[str]:
    # Either would make the engine call itself fail (subprocess cannot pass them).
    if "\x00" in text:
        raise MetadataError(f"{where}: run arguments contain a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MetadataError(f"{where}: run arguments contain an unpaired surrogate") from None
    try:
        return list(_shlex_split(text))
    except ValueError as exc:
        raise MetadataError(f"{where}: cannot split run arguments: {exc}") from None


def parse_metadata(raw: Any) -> DockerMetadata:
    """Validate a decoded meta-data object; raise MetadataError naming the problem.

    Unknown keys are not an error (the format grows): they are listed in
    `warnings` for the caller to log.
    """
    if not isinstance(raw, dict):
        raise MetadataError("meta-data must be a JSON object")
    if "containers" not in raw:
        raise MetadataError("meta-data has no 'containers' key")
    containers = _string_list(raw, "containers")
    if not containers:
        raise MetadataError("'containers' is empty: list at least one image")
    if len(containers) > MAX_CONTAINERS:
        raise MetadataError(
            f"'containers' lists {len(containers)} images, at most {MAX_CONTAINERS}"
        )
    for ref in containers:
        split_pinned(ref)
    run_args = raw.get("run_args", "")
    if run_args is None:
        run_args = ""
    if not isinstance(run_args, str):
        raise MetadataError("'run_args' must be a string")
    count = len(containers)
    names = _optional_list(raw, "names", str, count)
    container_args = _optional_list(raw, "container_args", str, count)
    image_ids = _optional_list(raw, "image_ids", str, count)
    if image_ids is not None:
        for value in image_ids:
            if not DIGEST_RE.fullmatch(value):
                raise MetadataError(f"'image_ids' entry {value!r} is not sha256:<64 hex>")
    image_sizes = _optional_list(raw, "image_sizes", int, count)
    if image_sizes is not None and any(not 0 <= size <= MAX_IMAGE_SIZE for size in image_sizes):
        raise MetadataError(f"'image_sizes' entries must be from 0 to {MAX_IMAGE_SIZE} bytes")
    numbers: Dict[str, Optional[float]] = {}
    for key in NUMBER_KEYS:
        value = raw.get(key)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0 <= value <= MAX_SECONDS[key]  # also refuses NaN (json.loads takes it)
        ):
            raise MetadataError(f"'{key}' must be a number of seconds from 0 to {MAX_SECONDS[key]}")
        numbers[key] = None if value is None else float(value)
    compose = _compose_keys(raw, count)
    images_file = raw.get("images_file")
    if images_file is not None:
        if not isinstance(images_file, str) or not PAYLOAD_NAME_RE.fullmatch(images_file):
            raise MetadataError("'images_file' must be a plain payload file name")
        if image_ids is None:
            raise MetadataError("'images_file' needs 'image_ids' to verify the loaded images")
    delta_base, delta_layers = _delta_keys(raw, count, containers, images_file)
    health_exec = _optional_list(raw, "health_exec", str, count)
    snapshot_volumes = _optional_list(raw, "snapshot_volumes", int, count)
    if snapshot_volumes is not None and any(v not in (0, 1) for v in snapshot_volumes):
        raise MetadataError("'snapshot_volumes' entries must be 0 or 1")
    for key, value in raw.items():
        if isinstance(value, dict) or (
            isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)
        ):
            raise MetadataError(f"'{key}': nested objects are not allowed in meta-data")
    unknown = [key for key in raw if key not in KNOWN_KEYS]
    warnings = tuple(f"unknown meta-data key {key[:100]!r} ignored" for key in unknown)
    if len(warnings) > MAX_WARNINGS:
        more = f"and {len(warnings) - MAX_WARNINGS} more unknown meta-data keys ignored"
        warnings = warnings[:MAX_WARNINGS] + (more,)
    texts = [
        run_args, *(container_args or ()), *(compose.get("commands") or ()), *(health_exec or ())
    ]
    for text in texts:
        if len(text) > MAX_ARGS_TEXT:
            raise MetadataError(f"run arguments of {len(text)} characters, at most {MAX_ARGS_TEXT}")
    if sum(map(len, texts)) > MAX_ALL_ARGS_TEXT:
        raise MetadataError(f"run arguments of more than {MAX_ALL_ARGS_TEXT} characters in all")
    meta = DockerMetadata(
        containers=tuple(containers),
        run_args=run_args,
        names=tuple(names) if names is not None else None,
        container_args=tuple(container_args) if container_args is not None else None,
        image_ids=tuple(image_ids) if image_ids is not None else None,
        image_sizes=tuple(image_sizes) if image_sizes is not None else None,
        health_timeout=numbers["health_timeout"],
        health_window=numbers["health_window"],
        stop_timeout=numbers["stop_timeout"],
        images_file=images_file,
        delta_base=delta_base,
        delta_layers=delta_layers,
        health_exec=tuple(health_exec) if health_exec is not None else None,
        snapshot_volumes=tuple(snapshot_volumes) if snapshot_volumes is not None else None,
        warnings=warnings,
        **compose,
    )
    meta.plan()  # names, quoting: fail now rather than during the install
    return meta


def shared_layers(chains: Sequence[Sequence[str]], diff_ids: Sequence[str]) -> int:
    """How many first layers of `diff_ids` some chain in `chains` starts with: a layer
    can be reused only with its whole parent chain (the generator and the device)."""
    best = 0
    for chain in chains:
        count = 0
        for have, want in zip(chain, diff_ids):
            if have != want:
                break
            count += 1
        best = max(best, count)
    return best


def split_layers(text: str) -> Tuple[str, ...]:
    """A `delta_layers` entry: comma-separated diff IDs, "" for none."""
    return tuple(part for part in text.split(",") if part) if text else ()


def _delta_keys(
    raw: Dict[str, Any], count: int, containers: Sequence[str], images_file: Optional[str]
) -> Tuple[Optional[str], Optional[Tuple[str, ...]]]:
    """`delta_base` and `delta_layers`: both or neither, only in an offline artifact."""
    base = raw.get("delta_base")
    layers = _optional_list(raw, "delta_layers", str, count)
    if base is None and layers is None:
        return None, None
    if base is None or layers is None:
        raise MetadataError("'delta_base' and 'delta_layers' come together")
    if images_file is None:
        raise MetadataError("'delta_base' needs 'images_file': only offline artifacts are deltas")
    if not isinstance(base, str) or not base.strip() or len(base) > MAX_DELTA_BASE:
        raise MetadataError(f"'delta_base' must be a non-empty string of at most "
                            f"{MAX_DELTA_BASE} characters")
    by_image: Dict[str, str] = {}
    for index, (image, text) in enumerate(zip(containers, layers)):
        ids = split_layers(text)
        if len(ids) > MAX_LAYERS or not all(DIGEST_RE.fullmatch(i) for i in ids) \
                or ",".join(ids) != text:
            raise MetadataError(f"'delta_layers' entry {index}: want up to {MAX_LAYERS} "
                                "comma-separated sha256:<64 hex> diff IDs, or \"\"")
        if by_image.setdefault(image, text) != text:
            raise MetadataError(f"'delta_layers': image {image} is listed with two layer lists")
    return base, tuple(layers)


def _compose_keys(raw: Dict[str, Any], count: int) -> Dict[str, Any]:
    """The keys of a Compose application (and `commands`), checked; as tuples."""
    out: Dict[str, Any] = {}
    for key in ("commands", "services", "depends_on"):
        value = _optional_list(raw, key, str, count)
        out[key] = None if value is None else tuple(value)
    for key in ("networks", "volumes"):
        value = raw.get(key)
        if value is None:
            out[key] = None
            continue
        if not isinstance(value, list) or not all(
            isinstance(v, str) and ENGINE_OBJECT_RE.fullmatch(v) for v in value
        ):
            raise MetadataError(f"'{key}' must be a list of {key[:-1]} names")
        if len(value) > MAX_OBJECTS or len(set(value)) != len(value):
            raise MetadataError(f"'{key}' must list at most {MAX_OBJECTS} names, each once")
        out[key] = tuple(value)
    out["network_options"] = _network_options(raw, out["networks"])
    project = raw.get("project")
    if project is not None and (not isinstance(project, str) or not PROJECT_RE.fullmatch(project)):
        raise MetadataError("'project' must be a Compose project name ([a-z0-9][a-z0-9_-]*)")
    out["project"] = project
    services = out["services"]
    if (project is None) != (services is None):
        raise MetadataError("'project' and 'services' go together (a Compose application)")
    if services is not None:
        bad = [name for name in services if not SERVICE_RE.fullmatch(name)]
        if bad or len(set(services)) != len(services):
            raise MetadataError(f"'services' must be distinct service names, got {bad or services}")
    if out["depends_on"] is not None:
        if services is None:
            raise MetadataError("'depends_on' needs 'services'")
        graph = {
            service: [d.service for d in parse_dependencies(text, f"depends_on[{i}]")]
            for i, (service, text) in enumerate(zip(services, out["depends_on"]))
        }
        for service, needs in graph.items():
            for other in needs:
                if other not in graph:
                    raise MetadataError(f"service {service!r} depends on unknown service {other!r}")
        start_order(graph)  # refuses a cycle
    return out


def network_options(text: str, where: str) -> Tuple[str, ...]:
    """One `network_options` entry as `network create` arguments, each checked."""
    args = tuple(split_args(text, where))
    for arg in args:
        if not NETWORK_OPTION_RE.fullmatch(arg):
            raise MetadataError(f"{where}: {arg[:100]!r} is not a network option the module passes")
    return args


def _network_options(raw: Dict[str, Any], networks: Optional[Tuple[str, ...]]) -> Any:
    value = raw.get("network_options")
    if value is None:
        return None
    if networks is None or not isinstance(value, list) or len(value) != len(networks) or not all(
        isinstance(v, str) for v in value
    ):
        raise MetadataError("'network_options' must be a list of strings, one per 'networks' entry")
    for index, text in enumerate(value):
        network_options(text, f"network_options[{index}]")
    return tuple(value)


def start_order(graph: Dict[str, List[str]]) -> List[List[str]]:
    """Services in waves: each wave depends only on earlier ones (Kahn's algorithm)."""
    left = {service: set(needs) for service, needs in graph.items()}
    waves: List[List[str]] = []
    while left:
        ready = sorted(service for service, needs in left.items() if not needs)
        if not ready:
            raise MetadataError(f"'depends_on' has a cycle among {', '.join(sorted(left))}")
        waves.append(ready)
        for service in ready:
            del left[service]
        for needs in left.values():
            needs.difference_update(ready)
    return waves


def parse_metadata_json(text: str) -> DockerMetadata:
    try:
        raw = json.loads(text)
    except RecursionError:
        raise MetadataError("meta-data is not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise MetadataError(f"meta-data is not valid JSON: {exc}") from None
    return parse_metadata(raw)


def _string_list(raw: Dict[str, Any], key: str) -> List[str]:
    value = raw[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MetadataError(f"'{key}' must be a list of strings")
    return value


def _optional_list(raw: Dict[str, Any], key: str, kind: type, count: int) -> Optional[List[Any]]:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(v, kind) and not isinstance(v, bool) for v in value
    ):
        raise MetadataError(f"'{key}' must be a list of {kind.__name__}s")
    if len(value) != count:
        raise MetadataError(f"'{key}' has {len(value)} entries, 'containers' has {count}")
    return value

"""The docker payload's meta-data: the one contract shared by generator and module.

Standard library only: this file ships inside the device-side module.

The original generator writes two keys, kept exactly:

    containers  list of image references pinned by digest, "repo@sha256:<hex>"
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

Run arguments are split with `shlex` and passed as an argument list: no shell
ever sees them.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = (
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?)"
)
_TAG = r"[\w][\w.-]{0,127}"
PINNED_REF_RE = re.compile(
    rf"^(?P<repo>(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>{_TAG}))?@(?P<digest>sha256:[0-9a-f]{{64}})$"
)
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")

ORIGINAL_KEYS = ("containers", "run_args")
LIST_KEYS = ("names", "container_args", "image_ids", "image_sizes")
NUMBER_KEYS = ("health_timeout", "health_window", "stop_timeout")
STRING_KEYS = ("images_file",)
KNOWN_KEYS = ORIGINAL_KEYS + LIST_KEYS + NUMBER_KEYS + STRING_KEYS
# A payload file name both mender-artifact and our module accept.
PAYLOAD_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Embedded images are tagged "<repo>:" + this + "<hex of the manifest digest>":
# docker cannot tag by digest, and an untagged image is pruned as dangling.
LOADED_TAG_PREFIX = "sha256-"


class MetadataError(ValueError):
    """The meta-data breaks the contract; the message names the offending key."""


@dataclass(frozen=True)
class PlannedContainer:
    """One container the artifact asks for, with everything needed to run it."""

    image: str  # repo@sha256:<hex> as listed in the artifact
    name: str
    args: Tuple[str, ...]  # `docker run` arguments, already split
    image_id: Optional[str] = None
    image_size: Optional[int] = None

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
        if self.images_file is not None:
            out["images_file"] = self.images_file
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def plan(self) -> List[PlannedContainer]:
        """Containers to run, with names and argument lists; checks names are unique."""
        common = split_args(self.run_args, "run_args")
        planned: List[PlannedContainer] = []
        used: Dict[str, int] = {}
        for index, image in enumerate(self.containers):
            own: List[str] = []
            if self.container_args is not None:
                own = split_args(self.container_args[index], f"container_args[{index}]")
            args = common + own
            name = _name_in_args(args) or (self.names[index] if self.names else "")
            if not name:
                base = derive_name(image)
                used[base] = used.get(base, 0) + 1
                name = base if used[base] == 1 else f"{base}-{used[base]}"
            planned.append(
                PlannedContainer(
                    image=image,
                    name=name,
                    args=tuple(_strip_name(args)),
                    image_id=self.image_ids[index] if self.image_ids else None,
                    image_size=self.image_sizes[index] if self.image_sizes else None,
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


def split_pinned(reference: str) -> Tuple[str, str]:
    """Split "repo[:tag]@sha256:..." into (repo, digest)."""
    match = PINNED_REF_RE.fullmatch(reference)  # `$` alone accepts a final newline
    if not match:
        raise MetadataError(
            f"image reference {reference!r} is not pinned by digest (repo@sha256:...)"
        )
    if len(match.group("repo")) > 255:  # docker's limit for a repository name
        raise MetadataError(f"image reference {reference[:60]!r}...: repository name is too long")
    return match.group("repo"), match.group("digest")


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


def split_args(text: str, where: str) -> List[str]:
    # Either would make the engine call itself fail (subprocess cannot pass them).
    if "\x00" in text:
        raise MetadataError(f"{where}: run arguments contain a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MetadataError(f"{where}: run arguments contain an unpaired surrogate") from None
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise MetadataError(f"{where}: cannot split run arguments: {exc}") from None


def _name_in_args(args: Sequence[str]) -> str:
    for index, arg in enumerate(args):
        if arg == "--name" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--name="):
            return arg[len("--name=") :] or _no_name_value()
        if arg == "--name":
            _no_name_value()
    return ""


def _no_name_value() -> str:
    raise MetadataError("'--name' in run arguments needs a value")


def _strip_name(args: Sequence[str]) -> List[str]:
    """Drop --name from the arguments: the module passes the name itself."""
    out: List[str] = []
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg == "--name" and index + 1 < len(args):
            skip = True
            continue
        if arg.startswith("--name="):
            continue
        out.append(arg)
    return out


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
    if image_sizes is not None and any(size < 0 for size in image_sizes):
        raise MetadataError("'image_sizes' entries must not be negative")
    numbers: Dict[str, Optional[float]] = {}
    for key in NUMBER_KEYS:
        value = raw.get(key)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or value < 0
            or not math.isfinite(value)  # json.loads accepts NaN and Infinity
        ):
            raise MetadataError(f"'{key}' must be a non-negative number of seconds")
        numbers[key] = None if value is None else float(value)
    images_file = raw.get("images_file")
    if images_file is not None:
        if not isinstance(images_file, str) or not PAYLOAD_NAME_RE.fullmatch(images_file):
            raise MetadataError("'images_file' must be a plain payload file name")
        if image_ids is None:
            raise MetadataError("'images_file' needs 'image_ids' to verify the loaded images")
    for key, value in raw.items():
        if isinstance(value, dict) or (
            isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)
        ):
            raise MetadataError(f"'{key}': nested objects are not allowed in meta-data")
    warnings = tuple(
        f"unknown meta-data key {key!r} ignored" for key in raw if key not in KNOWN_KEYS
    )
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
        warnings=warnings,
    )
    meta.plan()  # names, quoting: fail now rather than during the install
    return meta


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

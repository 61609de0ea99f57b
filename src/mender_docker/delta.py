"""Delta offline artifacts: the layers a device already has are left out.

`docker-artifact-gen --embed-images --delta-from BASE` names the release the
device runs: an artifact FILE (an offline docker artifact, full or delta) or an
IMAGE reference. Each base gives layer chains: per base image, its diff IDs in
order (the config's `rootfs.diff_ids`).

- An artifact file is read with the artifact library: its header must be a
  docker payload with `images_file`; of that payload only `manifest.json` and
  the configs it names are read (the generator writes them before any layer,
  and they are whole in a delta too); each config is checked against its file
  name (its digest). Reading stops there: layer data is never read into memory.
- An image reference's chain comes from its config: through the registry
  (`RegistryExporter.layer_chain`, no layer fetched), or with `--resolver
  docker` from `docker image inspect` (RootFS.Layers), pulling it if absent.

A layer can be reused only with its whole parent chain, so for a new image
k = the longest prefix of its diff IDs that is a prefix of a base image's
chain. Each artifact file is a release of its own (the new artifact depends on
any of their names), so with several the device holds only one of them: k is
the smallest over the artifact files. The image references together are one
base (the device holds them all). The meta-data gets `delta_base` (the names)
and `delta_layers` (per container its first k diff IDs) when a layer is omitted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from mender_docker.artifact import ArtifactReader
from mender_docker.artifact.tarstream import TarStream
from mender_docker.errors import ArtifactError, GeneratorError, MenderDockerError, RegistryError
from mender_docker.registry.docker_resolver import Runner, checked, run_docker
from mender_docker.registry.export import (
    MAX_CONFIG,
    ExportedImage,
    RegistryExporter,
    parse_diff_ids,
)
from mender_docker.registry.reference import parse_reference
from mender_docker.spec import (
    DIGEST_RE,
    MAX_DELTA_BASE,
    MAX_LAYERS,
    MetadataError,
    parse_metadata,
    shared_layers,
)

MANIFEST = "manifest.json"
CONFIG_NAME_RE = re.compile(r"[0-9a-f]{64}\.json")
MAX_MANIFEST_JSON = 16 << 20
Chain = Tuple[str, ...]


@dataclass(frozen=True)
class Base:
    """One release a delta applies to: its name and its images' layer chains."""

    name: str  # the artifact's name, or the image references joined by ", "
    chains: Tuple[Chain, ...]
    artifact: bool  # an artifact file: the new artifact depends on its name

    def shared(self, diff_ids: Sequence[str]) -> int:
        """How many first layers of `diff_ids` one of these images has as its own first ones."""
        return shared_layers(self.chains, diff_ids)


def omitted_count(diff_ids: Sequence[str], bases: Sequence[Base]) -> int:
    """The first layers of an image every base has: the fewest any of them shares."""
    return min((base.shared(diff_ids) for base in bases), default=0)


def delta_name(bases: Sequence[Base]) -> str:
    return ", ".join(base.name for base in bases)


def depends_names(bases: Sequence[Base]) -> List[str]:
    """The artifact names a delta depends on: those of the base artifacts."""
    return [base.name for base in bases if base.artifact]


# -- reading the bases ---------------------------------------------------------------------


def load_bases(
    sources: Sequence[str],
    platform: Optional[str],
    resolver: str = "registry",
    insecure: Sequence[str] = (),
    exporter: Optional[RegistryExporter] = None,
    runner: Runner = run_docker,
) -> List[Base]:
    """The bases named by --delta-from: artifact files (an existing path, or a name
    ending in .mender) one by one, then the image references together."""
    bases: List[Base] = []
    references: List[str] = []
    for source in dict.fromkeys(sources):  # each once
        if os.path.exists(source) or source.endswith(".mender"):
            bases.append(read_base_artifact(source))
        else:
            references.append(source)
    if references:
        chains = _reference_chains(references, platform, resolver, insecure, exporter, runner)
        bases.append(Base(", ".join(references), chains, artifact=False))
    if len(delta_name(bases)) > MAX_DELTA_BASE:
        raise GeneratorError(
            f"--delta-from: the base names take more than {MAX_DELTA_BASE} characters"
        )
    return bases


def read_base_artifact(path: str) -> Base:
    """The layer chains of an offline docker artifact's images (see the module docstring)."""
    shown = f"--delta-from {path}"
    if not os.path.isfile(path):
        what = "not a file" if os.path.exists(path) else "no such artifact file"
        raise GeneratorError(f"{shown}: {what}")
    try:
        with ArtifactReader(path) as reader:
            headers = reader.headers
            name = str(headers.header_info["artifact_provides"]["artifact_name"])
            images_file = _images_file(headers.header_info, headers.meta_data, shown)
            for file_name, _, stream in reader.payloads():
                if file_name == images_file:
                    return Base(name, _read_chains(stream, shown), artifact=True)
    except ArtifactError as exc:
        raise GeneratorError(f"{shown}: not an offline docker artifact ({exc})") from None
    raise GeneratorError(f"{shown}: not an offline docker artifact (no payload file "
                         f"{images_file!r})")  # fmt: skip


def _images_file(
    header_info: Dict[str, Any], meta_data: Optional[Dict[str, Any]], shown: str
) -> str:
    kind = header_info["payloads"][0]["type"]
    if kind != "docker":
        raise GeneratorError(f"{shown}: not an offline docker artifact (payload type {kind!r})")
    try:
        metadata = parse_metadata(meta_data)
    except MetadataError as exc:
        raise GeneratorError(f"{shown}: not an offline docker artifact ({exc})") from None
    if metadata.images_file is None:
        raise GeneratorError(
            f"{shown}: not an offline docker artifact (its images are pulled, not embedded)"
        )
    return metadata.images_file


def _read_chains(stream: Any, shown: str) -> Tuple[Chain, ...]:
    """manifest.json, then the configs it names (layers are never read)."""
    where = f"{shown}: images payload"
    tar = TarStream(stream, where)
    first = tar.next()
    if first is None or first.name != MANIFEST or first.type not in (b"0", b"\0"):
        raise GeneratorError(f"{where}: does not start with {MANIFEST}")
    configs = _config_names(tar.read_all(MAX_MANIFEST_JSON), where)
    found: Dict[str, Chain] = {}
    while len(found) < len(set(configs)):
        member = tar.next()
        if member is None:
            missing = sorted(set(configs) - set(found))[0]
            raise GeneratorError(f"{where}: lacks the config {missing}")
        if member.name in configs and member.name not in found:
            data = tar.read_all(MAX_CONFIG)
            if hashlib.sha256(data).hexdigest() + ".json" != member.name:
                raise GeneratorError(f"{where}: config {member.name} does not match its digest")
            found[member.name] = _config_chain(data, f"{where}: config {member.name}")
    return tuple(found[name] for name in configs)


def _config_names(raw: bytes, where: str) -> List[str]:
    """The Config of each manifest.json entry: "<64 hex>.json"."""
    try:
        entries = json.loads(raw)
    except ValueError:
        raise GeneratorError(f"{where}: {MANIFEST} is not valid JSON") from None
    if not isinstance(entries, list) or not entries:
        raise GeneratorError(f"{where}: {MANIFEST} lists no images")
    names: List[str] = []
    for entry in entries:
        name = entry.get("Config") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not CONFIG_NAME_RE.fullmatch(name):
            raise GeneratorError(f"{where}: {MANIFEST} has an entry without a config file name")
        names.append(name)
    return names


def _config_chain(data: bytes, where: str) -> Chain:
    return _chain(parse_diff_ids(data, where), f"{where} has no valid rootfs.diff_ids")


def _chain(value: Any, error: str) -> Chain:
    if (
        not isinstance(value, list)
        or len(value) > MAX_LAYERS
        or not all(isinstance(d, str) and DIGEST_RE.fullmatch(d) for d in value)
    ):
        raise GeneratorError(error)
    return tuple(value)


def _reference_chains(
    references: Sequence[str],
    platform: Optional[str],
    resolver: str,
    insecure: Sequence[str],
    exporter: Optional[RegistryExporter],
    runner: Runner,
) -> Tuple[Chain, ...]:
    for reference in references:
        try:
            parse_reference(reference)
        except MenderDockerError as exc:
            raise GeneratorError(
                f"--delta-from {reference}: neither an artifact file nor an image reference ({exc})"
            ) from None
    client: Optional[RegistryExporter] = None
    if resolver != "docker":
        client = exporter or RegistryExporter(insecure=insecure)
    chains: List[Chain] = []
    try:
        for reference in references:
            try:
                if client is None:
                    chains.append(docker_chain(reference, platform, runner))
                else:
                    chains.append(client.layer_chain(reference, platform))
            except RegistryError as exc:
                raise GeneratorError(
                    f"--delta-from {reference}: no such artifact file; as an image: {exc}"
                ) from None
    finally:
        if client is not None and exporter is None:  # ours to close
            client.close()
    return tuple(chains)


def docker_chain(reference: str, platform: Optional[str], runner: Runner = run_docker) -> Chain:
    """RootFS.Layers of a local image (`docker pull` first if the daemon lacks it)."""
    inspect = ["docker", "image", "inspect", "--format", "{{json .RootFS.Layers}}", "--",
               reference]  # fmt: skip
    result = runner(inspect)
    if result.returncode != 0:
        pull = ["docker", "pull"] + (["--platform", platform] if platform else [])
        checked(runner([*pull, "--", reference]), f"docker pull {reference}")
        result = runner(inspect)
    out = checked(result, f"docker image inspect {reference}").strip()
    try:
        layers = json.loads(out)
    except ValueError:
        layers = None
    return _chain(layers, f"docker image inspect {reference}: unexpected output {out[:200]!r}")


# -- the outcome ---------------------------------------------------------------------------


def omitter(bases: Sequence[Base]) -> Callable[[Sequence[str]], int]:
    return lambda diff_ids: omitted_count(diff_ids, bases)


def unused_bases(bases: Sequence[Base], images: Sequence[ExportedImage]) -> List[str]:
    """The bases that share no first layer with any new image."""
    return [base.name for base in bases if not any(base.shared(i.diff_ids) for i in images)]


@dataclass(frozen=True)
class DeltaReport:
    """What the delta saves, for the summary."""

    base: str  # delta_name(bases)
    size: int  # bytes of the artifact written
    full_size: int  # what the artifact would be with every layer in it
    omitted: int  # layers left out, over all images
    unused: Tuple[str, ...] = ()  # bases that share no first layer with the new images
    bases: int = 1

    def line(self) -> str:
        if self.omitted:
            percent = 100.0 * self.size / self.full_size if self.full_size else 100.0
            return (f"Delta against {self.base}: {human_size(self.size)}, the full artifact "
                    f"would be {human_size(self.full_size)} ({percent:.1f} %)")  # fmt: skip
        if self.bases > 1 and len(self.unused) < self.bases:
            which = f" ({', '.join(self.unused)} none)" if self.unused else ""
            shares = f"no new image shares layers with every base{which}"
        else:
            shares = "shares no layers"
        return (f"Delta against {self.base}: {shares}: the artifact is complete "
                f"({human_size(self.size)})")  # fmt: skip


def human_size(size: int) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"

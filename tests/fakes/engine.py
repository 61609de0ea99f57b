"""A fake container engine: containers and images in memory, every call recorded.

It implements the whole `mender_docker.module.engine.ContainerEngine`, with the
same signatures (mypy checks it, see `as_container_engine`; so does
tests/module/test_engine.py). Every engine call is recorded in `calls`, the
name first: those in MUTATING change something, so "nothing was changed"
checks look at `mutations()`. `crash_at = N` raises SimulatedCrash (a
BaseException, like SIGKILL nothing catches it) at the N-th call, to prove the
module recovers from a crash at any point.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import os
import tarfile
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Set, Tuple

from mender_docker.module.engine import (
    ContainerEngine,
    ContainerInfo,
    Feed,
    ImageInfo,
    VolumeMount,
)
from mender_docker.module.errors import (
    DaemonDownError,
    EngineError,
    NoSuchObjectError,
    UnsupportedError,
)

# The names of the recorded calls that change containers, images, networks or
# volumes: ContainerEngine methods, and what a Feed does (finish_load: the load
# completes; abort_load: it is killed, the engine loads nothing).
MUTATING = frozenset(
    {
        "pull",
        "start_load",
        "finish_load",
        "abort_load",
        "start_import",
        "finish_import",
        "abort_import",
        "create",
        "create_network",
        "remove_network",
        "create_volume",
        "remove_volume",
        "stop",
        "start",
        "rename",
        "set_restart_policy",
        "remove_container",
        "remove_image",
    }
)
# The ContainerEngine methods that only look (run_healthcheck runs a probe, which
# records a health result, nothing else); the first two are no engine calls at
# all (not recorded).
READ_ONLY = frozenset(
    {
        "lasting_restart_policy",
        "runs_healthchecks",
        "version",
        "run_healthcheck",
        "data_root",
        "state_dirs",
        "list_containers",
        "inspect_containers",
        "inspect_image",
        "layer_chains",
        "imports_base_layers",
        "network_exists",
        "list_networks",
        "volume_exists",
        "volume_mountpoint",
        "logs_tail",
        "last_exit_code",
    }
)


class SimulatedCrash(BaseException):
    """The process died here."""


@dataclass
class FakeImage:
    id: str
    refs: Set[str]  # repo@sha256:... references
    size: int = 1000
    behaviour: str = "ok"  # ok | exits | completes (exits 0) | unhealthy | healthy
    layers: Tuple[str, ...] = ()  # RootFS.Layers: diff IDs, base first
    volumes: Tuple[str, ...] = ()  # its VOLUME paths: each container gets an anonymous one


@dataclass
class FakeContainer:
    id: str
    name: str
    image: str
    image_id: str
    args: Tuple[str, ...]
    labels: Dict[str, str]
    restart_policy: str = "no"
    running: bool = True
    exit_code: int = 0
    health: Optional[str] = None
    started: int = 0
    command: Tuple[str, ...] = ()
    networks: Tuple[str, ...] = ()
    restart_count: int = 0  # restarts by its restart policy (see FakeEngine.restart)
    exits: List[int] = field(default_factory=list)  # every exit code, as the `die` events
    created: str = "2026-01-01T00:00:00Z"
    writable_binds: Tuple[str, ...] = ()
    mounts: Tuple[VolumeMount, ...] = ()  # its volumes, named and anonymous


EMPTY_DIFF_ID = "sha256:" + hashlib.sha256(b"").hexdigest()


def diff_id(layer: bytes) -> str:
    """A layer file's diff ID: the digest of the tar it holds (gzip undone)."""
    if layer[:2] == b"\x1f\x8b":
        layer = gzip.decompress(layer)
    return "sha256:" + hashlib.sha256(layer).hexdigest()


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    """A member's bytes; KeyError when the tar has no such member."""
    handle = tar.extractfile(name)
    return handle.read() if handle else b""


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass
class FakeEngine:
    data_root_dir: Optional[str] = None
    engine_state_dirs: Tuple[str, ...] = ()
    containers: Dict[str, FakeContainer] = field(default_factory=dict)
    images: Dict[str, FakeImage] = field(default_factory=dict)
    registry: Dict[str, FakeImage] = field(default_factory=dict)  # ref -> what a pull gets
    networks: Dict[str, Dict[str, str]] = field(default_factory=dict)  # name -> labels
    network_options: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    volumes: Dict[str, Dict[str, str]] = field(default_factory=dict)  # name -> labels
    calls: List[Tuple[str, ...]] = field(default_factory=list)
    crash_at: Optional[int] = None
    daemon_down: bool = False
    podman4: bool = False  # like podman 4: `always` lasts; no `update --restart`
    split_base: bool = False  # what imports_base_layers() says (dockerd's classic store)
    events_lost: bool = False  # last_exit_code finds no event (dockerd keeps only 256)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- test helpers ------------------------------------------------------------------
    def publish(
        self,
        repo: str,
        version: str,
        behaviour: str = "ok",
        size: int = 1000,
        layers: Sequence[str] = (),
        volumes: Sequence[str] = (),
    ) -> str:
        """Put an image in the fake registry; returns its pinned reference."""
        ref = f"{repo}@{digest_of(repo + ':' + version)}"
        image = FakeImage(
            digest_of("config" + ref), {ref}, size, behaviour, tuple(layers), tuple(volumes)
        )
        self.registry[ref] = image
        return ref

    def preload(self, ref: str) -> None:
        """Make a published image present on the device."""
        src = self.registry[ref]
        self.images[src.id] = FakeImage(
            src.id, set(src.refs), src.size, src.behaviour, src.layers, src.volumes
        )

    def add_container(
        self,
        name: str,
        ref: str,
        running: bool = True,
        restart_policy: str = "always",
        labels: Optional[Dict[str, str]] = None,
        writable_binds: Sequence[str] = (),
    ) -> str:
        self.preload(ref)
        container_id = self._new_id()
        self.containers[container_id] = FakeContainer(
            container_id,
            name,
            ref,
            self.registry[ref].id,
            (),
            dict(labels or {}),
            restart_policy,
            running,
            writable_binds=tuple(writable_binds),
        )
        return container_id

    def snapshot(self) -> List[Tuple[str, str, bool, str]]:
        """What matters to the user: name, image, running, restart policy."""
        return sorted(
            (c.name, c.image, c.running, c.restart_policy) for c in self.containers.values()
        )

    def mutations(self) -> List[Tuple[str, ...]]:
        return [call for call in self.calls if call[0] in MUTATING]

    def by_name(self, name: str) -> FakeContainer:
        return next(c for c in self.containers.values() if c.name == name)

    def exit(self, container_id: str, code: int) -> None:
        """The container's process ends with `code` (no engine call: it just happens)."""
        container = self._container(container_id)
        container.running, container.exit_code = False, code
        container.exits.append(code)

    def restart(self, container_id: str, code: int) -> None:
        """The container exits with `code` and its restart policy restarts it: as on
        dockerd and podman, inspect then shows it running with ExitCode 0 again."""
        self.exit(container_id, code)
        container = self._container(container_id)
        container.running, container.exit_code = True, 0
        container.restart_count += 1
        container.started += 1

    # -- plumbing ------------------------------------------------------------------------
    def _new_id(self) -> str:
        return hashlib.sha256(str(next(self._ids)).encode()).hexdigest()

    def _call(self, *call: str) -> None:
        """Record an engine call: then crash (crash_at) or fail (daemon_down) as told."""
        self.calls.append(call)
        if self.crash_at is not None and len(self.calls) >= self.crash_at:
            self.crash_at = None
            raise SimulatedCrash(f"crash at call {len(self.calls)}: {call}")
        if self.daemon_down:
            raise DaemonDownError(["docker", *call], 1, "Cannot connect to the Docker daemon")

    def _container(self, container_id: str) -> FakeContainer:
        found = self.containers.get(container_id)
        if found is None:
            found = next((c for c in self.containers.values() if c.name == container_id), None)
        if found is None:
            raise NoSuchObjectError(["docker"], 1, f"No such container: {container_id}")
        return found

    def layer_prefixes(self) -> Set[Tuple[str, ...]]:
        """Every chain the engine holds a layer of: each image's layers[:n]."""
        return {i.layers[:n] for i in self.images.values() for n in range(1, len(i.layers) + 1)}

    def _image(self, ref: str) -> Optional[FakeImage]:
        return next((i for i in self.images.values() if ref in i.refs or ref == i.id), None)

    def _check_name(self, name: str) -> None:
        if any(c.name == name for c in self.containers.values()):
            raise EngineError(["docker"], 125, f'Conflict. The container name "/{name}" is in use')

    # -- ContainerEngine -----------------------------------------------------------------
    def version(self) -> str:
        self._call("version")
        return "fake-1.0"

    def lasting_restart_policy(self) -> str:
        return "always" if self.podman4 else "unless-stopped"

    def runs_healthchecks(self) -> bool:
        return not self.podman4  # podman 4: only systemd timers run them

    def run_healthcheck(self, container_id: str) -> str:
        self._call("run_healthcheck", container_id)
        container = self._container(container_id)
        behaviour = self._behaviour(container)
        if container.health is None or behaviour not in ("unhealthy", "healthy"):
            return f"Error: container {container_id} has no defined healthcheck"
        container.health = behaviour
        return behaviour

    def data_root(self) -> Optional[str]:
        self._call("data_root")
        return self.data_root_dir

    def state_dirs(self) -> Tuple[str, ...]:
        self._call("state_dirs")
        return self.engine_state_dirs

    def list_containers(self, all: bool = False, label: Optional[str] = None) -> List[str]:
        self._call("list_containers", str(all), label or "")
        key, _, value = (label or "").partition("=")
        return [
            c.id
            for c in self.containers.values()
            if (all or c.running) and (not label or c.labels.get(key) == value)
        ]

    def inspect_containers(self, ids: Sequence[str]) -> List[ContainerInfo]:
        self._call("inspect_containers", *ids)
        out = []
        for container_id in ids:
            c = self.containers.get(container_id)
            if c is None:
                continue
            out.append(
                ContainerInfo(
                    id=c.id,
                    name=c.name,
                    image=c.image,
                    image_id=c.image_id,
                    running=c.running,
                    status="running" if c.running else "exited",
                    exit_code=c.exit_code,
                    restart_policy=c.restart_policy,
                    health=c.health,
                    started_at=str(c.started),
                    restart_count=c.restart_count,
                    labels=dict(c.labels),
                    health_interval=1.0,
                    networks=c.networks,
                    created=c.created,
                    writable_binds=c.writable_binds,
                    volumes=c.mounts,
                )
            )
        return out

    def inspect_image(self, ref: str) -> Optional[ImageInfo]:
        self._call("inspect_image", ref)
        image = self._image(ref)
        return None if image is None else ImageInfo(image.id, tuple(sorted(image.refs)), image.size)

    def pull(self, ref: str) -> None:
        self._call("pull", ref)
        if ref not in self.registry:
            raise NoSuchObjectError(["docker", "pull"], 1, f"manifest for {ref} not found")
        src = self.registry[ref]
        have = self.images.setdefault(
            src.id, FakeImage(src.id, set(), src.size, src.behaviour, src.layers, src.volumes)
        )
        have.refs |= src.refs

    def layer_chains(self) -> List[Tuple[str, ...]]:
        self._call("layer_chains")
        return list(dict.fromkeys(image.layers for image in self.images.values()))

    def start_load(self) -> Feed:
        self._call("start_load")
        return FakeFeed(self, "load")

    def start_import(self, tag: str) -> Feed:
        self._call("start_import", tag)
        return FakeFeed(self, "import", tag)

    def imports_base_layers(self) -> bool:
        self._call("imports_base_layers")
        return self.split_base

    def _loaded(self, feed: FakeFeed) -> str:
        """What `docker load` (or `import`) does with a feed's complete input.

        A `docker save` tar: manifest.json names each image's config, layers and
        tags; the config's rootfs.diff_ids become the image's layers. A zero-byte
        layer file (a delta's placeholder) loads only where the engine holds the
        chain it stands for, as dockerd's; else the load fails and loads nothing."""
        data = bytes(feed.data)
        if feed.kind == "import":
            found = FakeImage(digest_of(data.hex()), {feed.tag}, len(data), layers=(diff_id(data),))
            self.images.setdefault(found.id, found).refs.add(feed.tag)
            return found.id + "\n"
        loads: List[Tuple[str, Set[str], Tuple[str, ...]]] = []
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                manifest = json.loads(_member(tar, "manifest.json") or b"[]")
                held = self.layer_prefixes()
                sizes = {member.name: member.size for member in tar.getmembers()}
                for entry in manifest:
                    image = "sha256:" + str(entry["Config"]).split(".", 1)[0]
                    config = json.loads(_member(tar, str(entry["Config"])) or b"{}")
                    rootfs = config.get("rootfs") if isinstance(config, dict) else None
                    layers = tuple(str(d) for d in (rootfs or {}).get("diff_ids") or ())
                    files = [str(name) for name in entry.get("Layers") or ()]
                    for index, chain in enumerate(layers[: n + 1] for n in range(len(layers))):
                        # no bytes: `import` took the file (load_payload), or a placeholder
                        name = files[index] if index < len(files) else ""
                        if not sizes.get(name) and chain not in held:
                            raise EngineError(["docker", "load"], 1, (
                                f"invalid diffID for layer {index}: expected {chain[-1]}, "
                                f"got {EMPTY_DIFF_ID}"))  # fmt: skip
                        held.add(chain)
                    refs = {str(tag) for tag in entry.get("RepoTags") or ()}
                    loads.append((image, refs, layers))
        except (tarfile.TarError, KeyError, ValueError) as exc:
            raise EngineError(["docker", "load"], 1, f"Error processing tar file: {exc}") from None
        lines = []
        for image, refs, layers in loads:
            behaviour = next((i.behaviour for i in self.registry.values() if i.id == image), "ok")
            self.images.setdefault(image, FakeImage(image, set(), len(data), behaviour, layers))
            self.images[image].refs |= refs
            loaded = [f"Loaded image: {ref}" for ref in sorted(refs)]
            lines += loaded or [f"Loaded image ID: {image}"]
        return "".join(line + "\n" for line in lines)

    def create(
        self,
        name: str,
        image: str,
        args: Sequence[str],
        labels: Mapping[str, str],
        command: Sequence[str] = (),
    ) -> str:
        self._call("create", name, image, *args, *command)
        found = self._image(image)
        if found is None:
            raise NoSuchObjectError(["docker", "create"], 125, f"No such image: {image}")
        self._check_name(name)
        policy = "no"
        networks = []
        binds = []
        for arg in args:  # the module passes `--option=value` arguments only
            option, _, value = arg.partition("=")
            if option == "--restart":
                policy = value
            elif option == "--volume" and value.startswith("/") and ":" in value:
                source, _, rest = value.partition(":")
                if not rest.endswith(":ro"):
                    binds.append(source)
            elif option == "--network":
                if value not in self.networks:
                    raise NoSuchObjectError(["docker"], 1, f"network {value} not found")
                networks.append(value)
        container_id = self._new_id()
        self.containers[container_id] = FakeContainer(
            container_id, name, image, found.id, tuple(args), dict(labels), policy, False,
            command=tuple(command), networks=tuple(networks), writable_binds=tuple(binds),
            mounts=self._mounts(args, found.volumes),
        )  # fmt: skip
        return container_id

    def _mounts(self, args: Sequence[str], image_volumes: Sequence[str]) -> Tuple[VolumeMount, ...]:
        """The volumes `create` mounts: named ones as the arguments say (created when
        missing), a fresh anonymous one for `-v /path` and each image VOLUME the
        arguments mount nothing at; binds and tmpfs are no volumes."""
        mounts: Dict[str, str] = {}  # destination -> volume ("" for a bind or tmpfs)
        for arg in args:
            option, _, value = arg.partition("=")
            if option == "--volume":
                parts = value.split(":")
                source, dest = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
                mounts[dest] = "" if source.startswith("/") else source or self._anonymous()
            elif option == "--tmpfs":
                mounts[value.split(":", 1)[0]] = ""
            elif option == "--mount":
                fields = dict(item.partition("=")[::2] for item in value.split(","))
                dest = fields.get("target") or fields.get("dst") or fields.get("destination", "")
                kind = fields.get("type", "volume")
                source = fields.get("source") or fields.get("src") or ""
                mounts[dest] = (source or self._anonymous()) if kind == "volume" else ""
        for path in image_volumes:
            mounts.setdefault(path, self._anonymous())
        for volume in mounts.values():
            if volume:
                self.volumes.setdefault(volume, {})
        return tuple(VolumeMount(v, d) for d, v in mounts.items() if v)

    def _anonymous(self) -> str:
        return self._new_id()  # 64 hex digits, as both engines name them

    def network_exists(self, name: str) -> bool:
        self._call("network_exists", name)
        return name in self.networks

    def create_network(
        self, name: str, labels: Mapping[str, str], options: Sequence[str] = ()
    ) -> None:
        self._call("create_network", name)
        self.network_options[name] = tuple(options)
        if name in self.networks:
            raise EngineError(["docker"], 1, f"network with name {name} already exists")
        self.networks[name] = dict(labels)

    def remove_network(self, name: str) -> None:
        self._call("remove_network", name)
        if name not in self.networks:
            raise NoSuchObjectError(["docker"], 1, f"network {name} not found")
        if any(c.running and name in c.networks for c in self.containers.values()):
            raise EngineError(["docker"], 1, f"network {name} has active endpoints")
        del self.networks[name]

    def list_networks(self, label: str) -> List[str]:
        self._call("list_networks", label)
        key, _, value = label.partition("=")
        return [n for n, labels in self.networks.items() if labels.get(key) == value]

    def volume_exists(self, name: str) -> bool:
        self._call("volume_exists", name)
        return name in self.volumes

    def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        self._call("create_volume", name)
        self.volumes[name] = dict(labels)

    def remove_volume(self, name: str) -> None:
        self._call("remove_volume", name)
        if name not in self.volumes:
            raise NoSuchObjectError(["docker"], 1, f"get {name}: no such volume")
        if any(m.name == name for c in self.containers.values() for m in c.mounts):
            raise EngineError(["docker"], 1, f"remove {name}: volume is in use")
        del self.volumes[name]

    def volume_mountpoint(self, name: str) -> Optional[str]:
        self._call("volume_mountpoint", name)
        if name not in self.volumes or self.data_root_dir is None:
            return None
        path = os.path.join(self.data_root_dir, "volumes", name, "_data")
        os.makedirs(path, exist_ok=True)  # a real directory: snapshots copy it
        return path

    def stop(self, container_id: str, timeout: float) -> None:
        self._call("stop", container_id)
        self._container(container_id).running = False

    def start(self, container_id: str) -> None:
        self._call("start", container_id)
        container = self._container(container_id)
        container.running = True
        container.started += 1
        behaviour = self._behaviour(container)
        if behaviour == "exits":
            self.exit(container.id, 1)
        elif behaviour == "completes":
            self.exit(container.id, 0)
        elif behaviour in ("unhealthy", "healthy"):
            # podman 4 without systemd: `starting` until someone runs the probe
            container.health = "starting" if self.podman4 else behaviour

    def _behaviour(self, container: FakeContainer) -> str:
        return next(
            (i.behaviour for i in self.images.values() if i.id == container.image_id), "ok"
        )

    def rename(self, container_id: str, new_name: str) -> None:
        self._call("rename", container_id, new_name)
        container = self._container(container_id)
        self._check_name(new_name)
        container.name = new_name

    def set_restart_policy(self, container_id: str, policy: str) -> None:
        self._call("set_restart_policy", container_id, policy)
        if self.podman4:
            raise UnsupportedError(["podman", "update"], 125, "Error: unknown flag: --restart")
        self._container(container_id).restart_policy = policy

    def remove_container(self, container_id: str) -> None:
        self._call("remove_container", container_id)
        del self.containers[self._container(container_id).id]

    def remove_image(self, ref: str) -> None:
        self._call("remove_image", ref)
        image = self._image(ref)
        if image is None:
            raise NoSuchObjectError(["docker", "rmi"], 1, f"No such image: {ref}")
        if any(c.image_id == image.id for c in self.containers.values()):
            raise EngineError(["docker", "rmi"], 1, "conflict: image is being used")
        image.refs.discard(ref)
        if not image.refs:
            del self.images[image.id]

    def logs_tail(self, container_id: str, lines: int) -> str:
        self._call("logs_tail", container_id)
        return "fake: something went wrong\n"

    def last_exit_code(self, container_id: str, since: str = "") -> Optional[int]:
        self._call("last_exit_code", container_id, since)
        container = self.containers.get(container_id)
        if container is None or not container.exits or self.events_lost:
            return None
        return container.exits[-1]


@dataclass
class FakeFeed:
    """The input of a fake `docker load` (or `import TAG`): collected, then loaded on
    finish(); abort() loads nothing. Each step is a recorded (mutating) call."""

    engine: FakeEngine
    kind: str  # load | import
    tag: str = ""
    data: bytearray = field(default_factory=bytearray)
    done: bool = False

    def _record(self, step: str) -> None:
        self.engine._call(f"{step}_{self.kind}", *([self.tag] if self.tag else []))

    def write(self, data: bytes) -> None:
        assert not self.done, f"write after the {self.kind} ended"
        self.data += data

    def finish(self) -> str:
        assert not self.done, f"finish after the {self.kind} ended"
        self.done = True
        self._record("finish")
        return self.engine._loaded(self)

    def abort(self) -> None:
        """Kill it: never fails (the real one only kills a process), nothing is loaded."""
        if not self.done:
            self.done = True
            self.engine.calls.append((f"abort_{self.kind}", *([self.tag] if self.tag else [])))


def as_container_engine(engine: FakeEngine) -> ContainerEngine:
    """Where mypy checks that FakeEngine is a ContainerEngine (structurally)."""
    checked: ContainerEngine = engine
    return checked


def as_feed(feed: FakeFeed) -> Feed:
    """Where mypy checks that FakeFeed is a Feed."""
    checked: Feed = feed
    return checked

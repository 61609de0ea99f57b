"""The container engine: one choke point over the docker (or podman) CLI.

Every engine command starts in `Engine._spawn` (through `run()`, or `_feed()`
for the two that read our stream on their stdin): the binary resolved on PATH,
then the arguments as a list, never a shell string. Failures become EngineError
subclasses picked from the stderr text, so callers can tell "it is gone" from
"the daemon is down". `ContainerEngine` is the interface the states use; the
tests' fake engine implements the same methods.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Any, List, Mapping, Optional, Protocol, Sequence, Tuple, Union

from mender_docker.module.errors import (
    DaemonDownError,
    EngineError,
    EngineMissingError,
    NoSuchObjectError,
    UnsupportedError,
)

_NOT_FOUND_MARKERS = (
    "no such container",
    "no such image",
    "no such object",
    "no such volume",
    "no such network",
    "not found",
    "no container with name or id",
    "image not known",
)
_DAEMON_DOWN_MARKERS = (
    "cannot connect to the docker daemon",
    "is the docker daemon running",
    "error during connect",
    "unable to connect to podman",
)
_UNSUPPORTED_MARKERS = ("unknown flag", "unknown shorthand flag")
DEFAULT_HEALTH_INTERVAL = 30.0  # docker's and podman's default HEALTHCHECK --interval
EVENTS_TIMEOUT = 30.0  # for `events` over a past period: it reads, it does not wait
_HEX64 = frozenset("0123456789abcdef")


def image_id(value: object) -> str:
    """An image ID as docker writes it, `sha256:<hex>`: podman drops the prefix."""
    text = str(value or "")
    if len(text) == 64 and set(text) <= _HEX64:
        return "sha256:" + text
    return text


@dataclass(frozen=True)
class VolumeMount:
    """A volume mounted in a container (`inspect`'s Mounts of Type volume)."""

    name: str
    destination: str

    @property
    def anonymous(self) -> bool:
        """Both engines name a volume nobody named with 64 hex digits (an image
        VOLUME, `-v /path`); a user who names one so is taken at their word."""
        return len(self.name) == 64 and set(self.name) <= _HEX64


@dataclass(frozen=True)
class ContainerInfo:
    """What the module needs to know about one container (from `inspect`)."""

    id: str
    name: str
    image: str  # the reference it was started from
    image_id: str
    running: bool
    status: str  # running, exited, restarting, created, ...
    exit_code: int = 0  # of the last exit; both engines reset it to 0 when they restart it
    restart_policy: str = "no"  # in `--restart` syntax, e.g. "on-failure:3"
    health: Optional[str] = None  # starting | healthy | unhealthy, None without healthcheck
    started_at: str = ""  # changes when the engine restarts it
    restart_count: int = 0  # restarts by the engine since the container was created
    labels: Mapping[str, str] = field(default_factory=dict)
    health_interval: float = DEFAULT_HEALTH_INTERVAL  # seconds between HEALTHCHECK probes
    networks: Tuple[str, ...] = ()  # the networks it is (or will be, once started) on
    created: str = ""  # when it was created, RFC 3339 (the engines' events take it as --since)
    writable_binds: Tuple[str, ...] = ()  # host paths it can write through a bind or volume
    volumes: Tuple[VolumeMount, ...] = ()  # its volume mounts, named and anonymous


@dataclass(frozen=True)
class ImageInfo:
    id: str
    repo_digests: Tuple[str, ...]
    size: int = 0


def parse_container(data: Mapping[str, Any]) -> ContainerInfo:
    """One element of `docker inspect` output for a container."""
    state = data.get("State") or {}
    config = data.get("Config") or {}
    policy = (data.get("HostConfig") or {}).get("RestartPolicy") or {}
    name = str(policy.get("Name") or "no")
    if name == "on-failure" and policy.get("MaximumRetryCount"):
        name = f"on-failure:{policy['MaximumRetryCount']}"
    health = state.get("Health") or state.get("Healthcheck") or None
    status = str(state.get("Status") or ("running" if state.get("Running") else "exited"))
    interval = (config.get("Healthcheck") or {}).get("Interval") or 0  # nanoseconds
    return ContainerInfo(
        id=str(data["Id"]),
        name=str(data.get("Name") or "").lstrip("/"),
        image=str(config.get("Image") or data.get("ImageName") or ""),
        image_id=image_id(data.get("Image")),
        running=bool(state.get("Running")) and status == "running",
        status=status,
        exit_code=int(state.get("ExitCode") or 0),
        restart_policy=name,
        health=str(health["Status"]) if health and health.get("Status") else None,
        started_at=str(state.get("StartedAt") or ""),
        restart_count=int(data.get("RestartCount") or 0),
        labels=dict(config.get("Labels") or {}),
        health_interval=int(interval) / 1e9 if int(interval) > 0 else DEFAULT_HEALTH_INTERVAL,
        networks=tuple(((data.get("NetworkSettings") or {}).get("Networks") or {}).keys()),
        created=str(data.get("Created") or ""),
        writable_binds=tuple(
            str(mount.get("Source"))
            for mount in data.get("Mounts") or ()
            if isinstance(mount, dict)
            and mount.get("Type") in ("bind", "volume")
            and mount.get("RW")
            and mount.get("Source")
        ),
        volumes=parse_volume_mounts(data.get("Mounts")),
    )


def parse_volume_mounts(mounts: Any) -> Tuple[VolumeMount, ...]:
    """The volumes in `inspect`'s Mounts: docker and podman both write
    {"Type": "volume", "Name": ..., "Destination": ...} (binds and tmpfs have
    other types)."""
    if not isinstance(mounts, list):
        return ()
    return tuple(
        VolumeMount(str(m["Name"]), str(m.get("Destination") or ""))
        for m in mounts
        if isinstance(m, dict) and m.get("Type") == "volume" and m.get("Name")
    )


def parse_exit_event(line: str) -> Optional[int]:
    """The exit code in one container `die` event of `events --format '{{json .}}'`.

    docker: {"status": "die", "Actor": {"Attributes": {"exitCode": "3", ...}}, ...};
    podman: {"Status": "died", "ContainerExitCode": 3, ...}, the code left out when
    it is 0. None for a line that is no such event."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    attributes = (data.get("Actor") or {}).get("Attributes") or {}
    try:
        if "exitCode" in attributes:
            return int(attributes["exitCode"])
        if "ContainerExitCode" in data:
            return int(data["ContainerExitCode"])
    except (TypeError, ValueError):
        return None
    return 0 if data.get("Status") == "died" else None


def parse_image(data: Mapping[str, Any]) -> ImageInfo:
    return ImageInfo(
        id=image_id(data["Id"]),
        repo_digests=tuple(str(d) for d in data.get("RepoDigests") or ()),
        size=int(data.get("Size") or 0),
    )


def parse_layers(data: Mapping[str, Any]) -> Tuple[str, ...]:
    """An image's layer chain, from one element of `image inspect` output: the diff
    IDs of `RootFS.Layers`, base first (docker and podman both write
    {"RootFS": {"Type": "layers", "Layers": ["sha256:...", ...]}})."""
    rootfs = data.get("RootFS")
    layers = rootfs.get("Layers") if isinstance(rootfs, dict) else None
    if not isinstance(layers, list):
        return ()
    return tuple(image_id(layer) for layer in layers)


class ContainerEngine(Protocol):
    """The operations the states need; `Engine` runs them, tests fake them."""

    def version(self) -> str: ...
    def lasting_restart_policy(self) -> str: ...
    def runs_healthchecks(self) -> bool: ...
    def run_healthcheck(self, container_id: str) -> str: ...
    def data_root(self) -> Optional[str]: ...
    def state_dirs(self) -> Tuple[str, ...]: ...
    def list_containers(self, all: bool = False, label: Optional[str] = None) -> List[str]: ...
    def inspect_containers(self, ids: Sequence[str]) -> List[ContainerInfo]: ...
    def inspect_image(self, ref: str) -> Optional[ImageInfo]: ...
    def layer_chains(self) -> List[Tuple[str, ...]]: ...
    def pull(self, ref: str) -> None: ...
    def start_load(self) -> Feed: ...
    def start_import(self, tag: str) -> Feed: ...
    def imports_base_layers(self) -> bool: ...
    def create(
        self,
        name: str,
        image: str,
        args: Sequence[str],
        labels: Mapping[str, str],
        command: Sequence[str] = (),
    ) -> str: ...
    def network_exists(self, name: str) -> bool: ...
    def create_network(
        self, name: str, labels: Mapping[str, str], options: Sequence[str] = ()
    ) -> None: ...
    def remove_network(self, name: str) -> None: ...
    def list_networks(self, label: str) -> List[str]: ...
    def volume_exists(self, name: str) -> bool: ...
    def create_volume(self, name: str, labels: Mapping[str, str]) -> None: ...
    def remove_volume(self, name: str) -> None: ...
    def volume_mountpoint(self, name: str) -> Optional[str]: ...
    def stop(self, container_id: str, timeout: float) -> None: ...
    def start(self, container_id: str) -> None: ...
    def rename(self, container_id: str, new_name: str) -> None: ...
    def set_restart_policy(self, container_id: str, policy: str) -> None: ...
    def remove_container(self, container_id: str) -> None: ...
    def remove_image(self, ref: str) -> None: ...
    def logs_tail(self, container_id: str, lines: int) -> str: ...
    def last_exit_code(self, container_id: str, since: str = "") -> Optional[int]: ...


class Feed(Protocol):
    """An engine command reading its stdin from us: write(), then finish() (or abort())."""

    def write(self, data: bytes) -> None: ...
    def finish(self) -> str: ...
    def abort(self) -> None: ...


class CommandFeed:
    """The Feed of a running engine command (Engine.start_load, start_import)."""

    def __init__(
        self,
        command: List[str],
        proc: subprocess.Popen[bytes],
        output: IO[bytes],
        timeout: float,
    ) -> None:
        self.command, self._proc, self._output, self._timeout = command, proc, output, timeout
        self._broken = False

    def write(self, data: bytes) -> None:
        assert self._proc.stdin is not None
        if not self._broken:
            try:
                self._proc.stdin.write(data)
            except BrokenPipeError:  # it ended early: its exit code and output say why
                self._broken = True

    def finish(self) -> str:
        """Close the input, wait; the command's output, or EngineError."""
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            code = self._proc.wait(timeout=self._timeout)
        except subprocess.TimeoutExpired:
            self.abort()
            raise EngineError(self.command, -1, f"timed out after {self._timeout:g} s") from None
        self._output.seek(0)
        text = self._output.read().decode("utf-8", "replace")
        self._output.close()
        if code != 0:
            raise classify(self.command, code, text)
        return text

    def abort(self) -> None:
        """Kill it before its input is complete: the engine sees a cut stream."""
        self._proc.kill()
        self._proc.wait()
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        except OSError:
            pass
        self._output.close()


class Engine:
    """The docker CLI (or podman, which takes the same arguments)."""

    def __init__(
        self,
        binary: str = "docker",
        timeout: float = 300.0,
        pull_timeout: float = 3600.0,
        env: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.binary = binary
        self.timeout = timeout
        self.pull_timeout = pull_timeout
        self.env = None if env is None else {**os.environ, **env}

    def _spawn(
        self,
        args: Sequence[str],
        stdin: Union[int, IO[bytes]],
        stdout: Union[int, IO[bytes]],
        stderr: Union[int, IO[bytes]],
    ) -> subprocess.Popen[bytes]:
        """The only place a subprocess starts: the engine binary, resolved on PATH
        here, with `args` as its argument list (never a shell). EngineMissingError
        when the binary is not there or cannot run."""
        command = [self.binary, *args]
        resolved = shutil.which(self.binary) if os.sep not in self.binary else self.binary
        if not resolved:
            raise EngineMissingError(command, "not on PATH")
        try:
            return subprocess.Popen(  # noqa: S603 - argument list, no shell
                [resolved, *args], stdin=stdin, stdout=stdout, stderr=stderr, env=self.env
            )
        except (FileNotFoundError, PermissionError) as exc:
            raise EngineMissingError(command, exc.strerror or str(exc)) from None

    def run(
        self, args: Sequence[str], timeout: Optional[float] = None, merge_stderr: bool = False
    ) -> str:
        """Run one engine command to its end: its stdout, or EngineError."""
        command = [self.binary, *args]
        limit = self.timeout if timeout is None else timeout
        stderr = subprocess.STDOUT if merge_stderr else subprocess.PIPE
        with self._spawn(args, subprocess.DEVNULL, subprocess.PIPE, stderr) as proc:
            try:
                out, err = proc.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise EngineError(command, -1, f"timed out after {limit:g} s") from None
            except BaseException:
                proc.kill()
                raise
        text = out.decode("utf-8", "replace")
        if proc.returncode != 0:
            said = (err or b"").decode("utf-8", "replace") or text
            raise classify(command, proc.returncode, said)
        return text

    @property
    def is_podman(self) -> bool:
        return "podman" in os.path.basename(self.binary)

    def lasting_restart_policy(self) -> str:
        """The restart policy that brings a container back after a crash and a reboot
        but not after a stop. dockerd honours `unless-stopped` itself; podman has no
        daemon: at boot its podman-restart.service runs `podman start --all --filter
        restart-policy=always`, which skips every other policy (podman's
        `unless-stopped` included), and `podman stop` already keeps an `always`
        container down until then."""
        return "always" if self.is_podman else "unless-stopped"

    def runs_healthchecks(self) -> bool:
        """Does the engine itself run a container's HEALTHCHECK? dockerd does. Podman
        4 has no daemon: it runs each probe (`podman healthcheck run`) from a systemd
        timer it sets up per container, so without systemd (or its user session) the
        health stays `starting` for good, and with it the first probe waits one
        interval. The health gate runs the probes itself on podman (run_healthcheck)."""
        return not self.is_podman

    def run_healthcheck(self, container_id: str) -> str:
        """Run the container's HEALTHCHECK once (podman); the engine records the result
        in the container's health as its own probes would. Returns `healthy`,
        `unhealthy`, or what the engine said when it could not run it."""
        try:
            out = self.run(["healthcheck", "run", container_id])
        except EngineError as exc:
            if exc.returncode == 1 and not isinstance(exc, NoSuchObjectError):
                return "unhealthy"  # podman: exit 1 is a failed probe
            return str(exc)
        return out.strip().splitlines()[-1].strip() if out.strip() else "healthy"

    def version(self) -> str:
        """The server's version; raises DaemonDownError when it does not answer.

        Podman without a service has no Server part: its Client version stands in."""
        out = self.run(["version", "--format", "{{json .}}"])
        try:
            data = json.loads(out)
        except ValueError:
            return out.strip() or "unknown"
        if not isinstance(data, dict):
            return "unknown"
        part = data.get("Server") or data.get("Client") or {}
        return str(part.get("Version") or "unknown")

    def _info(self) -> Mapping[str, Any]:
        try:
            info = json.loads(self.run(["info", "--format", "{{json .}}"]) or "{}")
        except ValueError:
            return {}
        return info if isinstance(info, dict) else {}

    def data_root(self) -> Optional[str]:
        info = self._info()
        # docker: DockerRootDir; podman: store.graphRoot
        root = info.get("DockerRootDir") or (info.get("store") or {}).get("graphRoot")
        return str(root) if root else None

    def state_dirs(self) -> Tuple[str, ...]:
        """Where the engine keeps its state, as it reports it (the device may have moved
        it, e.g. to /data/docker): a container that reaches it owns the engine.
        docker: DockerRootDir (its exec root is not reported; its default is under /run);
        podman: graphRoot, runRoot, volumePath."""
        info = self._info()
        store = info.get("store") or {}
        found = [info.get("DockerRootDir")]
        if isinstance(store, dict):
            found += [store.get("graphRoot"), store.get("runRoot"), store.get("volumePath")]
        return tuple(str(path) for path in found if isinstance(path, str) and path)

    def imports_base_layers(self) -> bool:
        """Can a load reuse a base layer registered by `import` (see start_import)?

        True for dockerd's classic layer store, which `docker load` consults by
        chain ID before reading a layer file; not for podman, nor for dockerd's
        containerd image store, whose load wants every blob."""
        try:
            info = json.loads(self.run(["info", "--format", "{{json .}}"]) or "{}")
        except (ValueError, EngineError):
            return False
        if not isinstance(info, dict) or "DockerRootDir" not in info:
            return False
        status = json.dumps(info.get("DriverStatus") or [])
        return "io.containerd.snapshotter" not in status

    def list_containers(self, all: bool = False, label: Optional[str] = None) -> List[str]:
        args = ["ps", "-q", "--no-trunc"]
        if all:
            args.append("-a")
        if label:
            args += ["--filter", f"label={label}"]
        return [line.strip() for line in self.run(args).splitlines() if line.strip()]

    def inspect_containers(self, ids: Sequence[str]) -> List[ContainerInfo]:
        """Inspect containers; ones that vanished meanwhile are left out."""
        if not ids:
            return []
        try:  # one call for all: the health gate polls this
            return [
                parse_container(item)
                for item in json.loads(self.run(["container", "inspect", *ids]))
            ]
        except NoSuchObjectError:
            if len(ids) == 1:
                return []
        found: List[ContainerInfo] = []
        for container_id in ids:  # one vanished id must not hide the others
            found.extend(self.inspect_containers([container_id]))
        return found

    def inspect_image(self, ref: str) -> Optional[ImageInfo]:
        try:
            data = json.loads(self.run(["image", "inspect", ref]))
        except NoSuchObjectError:
            return None
        return parse_image(data[0]) if data else None

    def layer_chains(self) -> List[Tuple[str, ...]]:
        """The layer chain (`parse_layers`) of every image the engine holds, each
        distinct chain once: the engine has a layer as part of a chain exactly when
        some image's chain starts with it. Two calls: `image ls` for the IDs (all,
        intermediate images too), one `image inspect` of them all."""
        listed = self.run(["image", "ls", "--all", "--quiet", "--no-trunc"])
        ids = list(dict.fromkeys(line.strip() for line in listed.splitlines() if line.strip()))
        if not ids:
            return []
        try:
            items = self._inspect_images(ids)
        except NoSuchObjectError:  # one removed meanwhile: it must not hide the others
            items = []
            for one in ids:
                try:
                    items += self._inspect_images([one])
                except NoSuchObjectError:
                    pass
        return list(dict.fromkeys(parse_layers(item) for item in items))

    def _inspect_images(self, ids: Sequence[str]) -> List[Mapping[str, Any]]:
        command = ["image", "inspect", *ids]
        out = self.run(command)
        try:
            items = json.loads(out)
        except ValueError:
            detail = f"unreadable output: {out[:200]}"
            raise EngineError([self.binary, *command], 0, detail) from None
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []

    def pull(self, ref: str) -> None:
        self.run(["pull", "-q", ref], timeout=self.pull_timeout)

    def start_load(self) -> Feed:
        """A running `docker load` whose input the caller writes (no copy on disk).

        Aborted before its input is complete, the load sees a cut stream: the
        engine refuses the tar and loads nothing new."""
        return self._feed(["load"])

    def start_import(self, tag: str) -> Feed:
        """A running `docker import - TAG`: the engine registers the layer tar it
        is fed straight into its layer store (no temp copy, unlike `load`)."""
        return self._feed(["import", "-", tag])

    def _feed(self, args: Sequence[str]) -> Feed:
        """An engine command that reads its stdin from us (see CommandFeed); its
        output goes to a temp file, so it never blocks on a full pipe."""
        output = tempfile.TemporaryFile()
        try:
            proc = self._spawn(args, subprocess.PIPE, output, subprocess.STDOUT)
        except BaseException:
            output.close()
            raise
        return CommandFeed([self.binary, *args], proc, output, self.pull_timeout)

    def create(
        self,
        name: str,
        image: str,
        args: Sequence[str],
        labels: Mapping[str, str],
        command: Sequence[str] = (),
    ) -> str:
        """Create (not start) a container. `args` are `run` options, each one
        `--option=value` argument (spec.PlannedContainer.args); our labels come
        after them, so they win over any the arguments set. dockerd before API
        1.44 attaches a new container to one network only: the others are
        connected before it starts, with the same aliases. A network written
        `name=NET,alias=A,...` (docker's CSV form) gets its own aliases only."""
        args, later = _network_attachments(args, self.is_podman)
        command_line = ["create", f"--name={name}", *args]
        for key, value in labels.items():
            command_line.append(f"--label={key}={value}")
        out = self.run([*command_line, image, *command])
        container_id = out.strip().splitlines()[-1].strip()
        for network, aliases in later:
            flags = [f"--alias={alias}" for alias in aliases]
            self.run(["network", "connect", *flags, network, container_id])
        return container_id

    def network_exists(self, name: str) -> bool:
        return self._exists("network", name)

    def create_network(
        self, name: str, labels: Mapping[str, str], options: Sequence[str] = ()
    ) -> None:
        """`options`: checked by spec.network_options (--internal, --subnet=...)."""
        labels_args = [f"--label={k}={v}" for k, v in labels.items()]
        self.run(["network", "create", *labels_args, *options, name])

    def remove_network(self, name: str) -> None:
        self.run(["network", "rm", name])

    def list_networks(self, label: str) -> List[str]:
        out = self.run(["network", "ls", "--filter", f"label={label}", "--format", "{{.Name}}"])
        return [line.strip() for line in out.splitlines() if line.strip()]

    def volume_exists(self, name: str) -> bool:
        return self._exists("volume", name)

    def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        self.run(["volume", "create", *(f"--label={k}={v}" for k, v in labels.items()), name])

    def remove_volume(self, name: str) -> None:
        """Remove it; the engine refuses (EngineError) while a container uses it."""
        self.run(["volume", "rm", name])

    def volume_mountpoint(self, name: str) -> Optional[str]:
        """Where the volume's files are on the host (local driver); None if gone."""
        try:
            out = self.run(["volume", "inspect", "--format", "{{.Mountpoint}}", name])
        except NoSuchObjectError:
            return None
        return out.strip() or None

    def _exists(self, kind: str, name: str) -> bool:
        try:
            self.run([kind, "inspect", name])
        except NoSuchObjectError:
            return False
        return True

    def stop(self, container_id: str, timeout: float) -> None:
        self.run(["stop", "-t", str(int(round(timeout))), container_id], self.timeout + timeout)

    def start(self, container_id: str) -> None:
        self.run(["start", container_id])

    def rename(self, container_id: str, new_name: str) -> None:
        self.run(["rename", container_id, new_name])

    def set_restart_policy(self, container_id: str, policy: str) -> None:
        """UnsupportedError where the engine cannot change it (podman before 5)."""
        self.run(["update", "--restart", policy, container_id])

    def remove_container(self, container_id: str) -> None:
        """Remove it, killing it first if it runs: `docker rm -f` sends SIGKILL; podman's
        would first wait its stop timeout (10 s) for a container that ignores SIGTERM."""
        kill_now = ["-t", "0"] if self.is_podman else []
        self.run(["rm", "-f", *kill_now, container_id])

    def remove_image(self, ref: str) -> None:
        self.run(["rmi", ref])

    def logs_tail(self, container_id: str, lines: int) -> str:
        # `docker logs` replays the container's stderr on ours: merge both streams.
        try:
            return self.run(["logs", "--tail", str(lines), container_id], merge_stderr=True)
        except EngineError as exc:
            return f"(no logs: {exc})"

    def last_exit_code(self, container_id: str, since: str = "") -> Optional[int]:
        """The code the container last exited with, from the engine's `die` events
        since `since` (its creation time): once its restart policy has restarted
        it, `inspect` says ExitCode 0 on both engines (dockerd 20.10, podman 4.3).
        None when the events do not say: dockerd keeps only its last 256 events,
        podman's event logger may be off."""
        died = "died" if self.is_podman else "die"
        args = ["events", "--filter", f"container={container_id}", "--filter", f"event={died}"]
        args += ["--format", "{{json .}}"]
        if since:
            args += ["--since", since]
        if self.is_podman:
            # podman's --until in the past races its reader (it can print nothing):
            # without streaming it reads the events logged so far and stops
            args.append("--stream=false")
        else:
            args += ["--until", f"{time.time():.6f}"]  # else the CLI waits for new events
        try:
            out = self.run(args, timeout=min(self.timeout, EVENTS_TIMEOUT))
        except EngineError:
            return None
        codes = [parse_exit_event(line) for line in out.splitlines() if line.strip()]
        found = [code for code in codes if code is not None]
        return found[-1] if found else None


def classify(command: Sequence[str], returncode: int, stderr: str) -> EngineError:
    """Pick the error class from what the engine said."""
    text = stderr.lower()
    if any(marker in text for marker in _DAEMON_DOWN_MARKERS):
        return DaemonDownError(command, returncode, stderr)
    if any(marker in text for marker in _NOT_FOUND_MARKERS):
        return NoSuchObjectError(command, returncode, stderr)
    if any(marker in text for marker in _UNSUPPORTED_MARKERS):
        return UnsupportedError(command, returncode, stderr)
    return EngineError(command, returncode, stderr)


def _network_attachments(
    args: Sequence[str], podman: bool
) -> Tuple[List[str], List[Tuple[str, List[str]]]]:
    """The `create` arguments, and the networks to connect after it (dockerd before
    API 1.44 takes one network at create) with their aliases.

    `--network-alias` applies to every plain `--network=NET`; a network written
    `name=NET,alias=A,alias=B` has its own aliases: docker gets the first as
    `--network=NET --network-alias=A...`, podman each as `--network=NET:alias=A,...`."""
    plain_aliases = [a.split("=", 1)[1] for a in args if a.startswith("--network-alias=")]
    networks = [a for a in args if a.startswith("--network=")]
    if not any(a.startswith("--network=name=") for a in networks):  # arguments as written
        later = [] if podman else networks[1:]
        passed = [a for a in args if a not in later]
        return passed, [(n.split("=", 1)[1], plain_aliases) for n in later]
    attachments: List[Tuple[str, List[str]]] = []
    for arg in networks:
        value = arg.split("=", 1)[1]
        if not value.startswith("name="):
            attachments.append((value, plain_aliases))
            continue
        name, aliases = "", []
        for part in value.split(","):
            key, _, text = part.partition("=")
            if key == "alias":
                aliases.append(text)
            elif key == "name":
                name = text
        attachments.append((name, aliases))
    rest = [a for a in args if not a.startswith(("--network=", "--network-alias="))]
    if podman:
        for network, aliases in attachments:
            options = ",".join(f"alias={alias}" for alias in aliases)
            rest.append(f"--network={network}:{options}" if options else f"--network={network}")
        return rest, []
    first, first_aliases = attachments[0]
    rest.append(f"--network={first}")
    rest += [f"--network-alias={alias}" for alias in first_aliases]
    return rest, attachments[1:]

"""The container engine: one `run()` choke point over the docker (or podman) CLI.

Commands are argument lists, never shell strings. Failures become EngineError
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
from dataclasses import dataclass, field
from typing import IO, Any, Iterable, List, Mapping, Optional, Protocol, Sequence, Tuple

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
_HEX64 = frozenset("0123456789abcdef")


def image_id(value: object) -> str:
    """An image ID as docker writes it, `sha256:<hex>`: podman drops the prefix."""
    text = str(value or "")
    if len(text) == 64 and set(text) <= _HEX64:
        return "sha256:" + text
    return text


@dataclass(frozen=True)
class ContainerInfo:
    """What the module needs to know about one container (from `inspect`)."""

    id: str
    name: str
    image: str  # the reference it was started from
    image_id: str
    running: bool
    status: str  # running, exited, restarting, created, ...
    exit_code: int = 0
    restart_policy: str = "no"  # in `--restart` syntax, e.g. "on-failure:3"
    health: Optional[str] = None  # starting | healthy | unhealthy, None without healthcheck
    started_at: str = ""  # changes when the engine restarts it
    restart_count: int = 0  # restarts by the engine since the container was created
    labels: Mapping[str, str] = field(default_factory=dict)
    health_interval: float = DEFAULT_HEALTH_INTERVAL  # seconds between HEALTHCHECK probes
    networks: Tuple[str, ...] = ()  # the networks it is (or will be, once started) on


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
    )


def parse_image(data: Mapping[str, Any]) -> ImageInfo:
    return ImageInfo(
        id=image_id(data["Id"]),
        repo_digests=tuple(str(d) for d in data.get("RepoDigests") or ()),
        size=int(data.get("Size") or 0),
    )


class ContainerEngine(Protocol):
    """The operations the states need; `Engine` runs them, tests fake them."""

    def version(self) -> str: ...
    def lasting_restart_policy(self) -> str: ...
    def runs_healthchecks(self) -> bool: ...
    def run_healthcheck(self, container_id: str) -> str: ...
    def data_root(self) -> Optional[str]: ...
    def list_containers(self, all: bool = False, label: Optional[str] = None) -> List[str]: ...
    def inspect_containers(self, ids: Sequence[str]) -> List[ContainerInfo]: ...
    def inspect_image(self, ref: str) -> Optional[ImageInfo]: ...
    def pull(self, ref: str) -> None: ...
    def load(self, chunks: Iterable[bytes]) -> str: ...
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
    def create_network(self, name: str, labels: Mapping[str, str]) -> None: ...
    def remove_network(self, name: str) -> None: ...
    def list_networks(self, label: str) -> List[str]: ...
    def volume_exists(self, name: str) -> bool: ...
    def create_volume(self, name: str, labels: Mapping[str, str]) -> None: ...
    def stop(self, container_id: str, timeout: float) -> None: ...
    def start(self, container_id: str) -> None: ...
    def rename(self, container_id: str, new_name: str) -> None: ...
    def set_restart_policy(self, container_id: str, policy: str) -> None: ...
    def remove_container(self, container_id: str) -> None: ...
    def remove_image(self, ref: str) -> None: ...
    def logs_tail(self, container_id: str, lines: int) -> str: ...


class Feed:
    """An engine command reading its stdin from us: write(), then finish() (or abort())."""

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

    def run(
        self, args: Sequence[str], timeout: Optional[float] = None, merge_stderr: bool = False
    ) -> str:
        """The only place a subprocess starts: returns stdout, raises EngineError."""
        command = [self.binary, *args]
        resolved = shutil.which(self.binary) if os.sep not in self.binary else self.binary
        if not resolved:
            raise EngineMissingError(command, "not on PATH")
        limit = self.timeout if timeout is None else timeout
        try:
            done = subprocess.run(  # noqa: S603 - argument list, no shell
                [resolved, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                text=True,
                errors="replace",
                timeout=limit,
                env=self.env,
                check=False,
            )
        except (FileNotFoundError, PermissionError) as exc:
            raise EngineMissingError(command, exc.strerror or str(exc)) from None
        except subprocess.TimeoutExpired:
            raise EngineError(command, -1, f"timed out after {limit:g} s") from None
        if done.returncode != 0:
            raise classify(command, done.returncode, done.stderr or done.stdout or "")
        return str(done.stdout)

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

    def data_root(self) -> Optional[str]:
        try:
            info = json.loads(self.run(["info", "--format", "{{json .}}"]) or "{}")
        except ValueError:
            return None
        if not isinstance(info, dict):
            return None
        # docker: DockerRootDir; podman: store.graphRoot
        root = info.get("DockerRootDir") or (info.get("store") or {}).get("graphRoot")
        return str(root) if root else None

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

    def pull(self, ref: str) -> None:
        self.run(["pull", "-q", ref], timeout=self.pull_timeout)

    def load(self, chunks: Iterable[bytes]) -> str:
        """`docker load` with its input streamed from `chunks` (no copy on disk).

        If `chunks` raises, the load is killed before its input is complete: the
        engine sees a cut connection, refuses the tar and loads nothing new."""
        feed = self.start_load()
        try:
            for chunk in chunks:
                feed.write(chunk)
        except BaseException:
            feed.abort()
            raise
        return feed.finish()

    def start_load(self) -> Feed:
        """A running `docker load` whose input the caller writes."""
        return self._feed(["load"])

    def start_import(self, tag: str) -> Feed:
        """A running `docker import - TAG`: the engine registers the layer tar it
        is fed straight into its layer store (no temp copy, unlike `load`)."""
        return self._feed(["import", "-", tag])

    def _feed(self, args: Sequence[str]) -> Feed:
        command = [self.binary, *args]
        resolved = shutil.which(self.binary) if os.sep not in self.binary else self.binary
        if not resolved:
            raise EngineMissingError(command, "not on PATH")
        output = tempfile.TemporaryFile()
        try:
            proc = subprocess.Popen(  # noqa: S603 - argument list, no shell
                [resolved, *args],
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        except (FileNotFoundError, PermissionError) as exc:
            output.close()
            raise EngineMissingError(command, exc.strerror or str(exc)) from None
        return Feed(command, proc, output, self.pull_timeout)

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
        connected before it starts, with the same aliases."""
        networks = [a for a in args if a.startswith("--network=")]
        later = [] if self.is_podman else networks[1:]
        aliases = [a.split("=", 1)[1] for a in args if a.startswith("--network-alias=")]
        command_line = ["create", f"--name={name}", *(a for a in args if a not in later)]
        for key, value in labels.items():
            command_line.append(f"--label={key}={value}")
        out = self.run([*command_line, image, *command])
        container_id = out.strip().splitlines()[-1].strip()
        for network in later:
            flags = [f"--alias={alias}" for alias in aliases]
            self.run(["network", "connect", *flags, network.split("=", 1)[1], container_id])
        return container_id

    def network_exists(self, name: str) -> bool:
        return self._exists("network", name)

    def create_network(self, name: str, labels: Mapping[str, str]) -> None:
        self.run(["network", "create", *(f"--label={k}={v}" for k, v in labels.items()), name])

    def remove_network(self, name: str) -> None:
        self.run(["network", "rm", name])

    def list_networks(self, label: str) -> List[str]:
        out = self.run(["network", "ls", "--filter", f"label={label}", "--format", "{{.Name}}"])
        return [line.strip() for line in out.splitlines() if line.strip()]

    def volume_exists(self, name: str) -> bool:
        return self._exists("volume", name)

    def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        self.run(["volume", "create", *(f"--label={k}={v}" for k, v in labels.items()), name])

    def _exists(self, kind: str, name: str) -> bool:
        try:
            self.run([kind, "inspect", name])
        except NoSuchObjectError:
            return False
        return True

    def create_and_start(
        self, name: str, image: str, args: Sequence[str], labels: Mapping[str, str]
    ) -> str:
        container_id = self.create(name, image, args, labels)
        self.start(container_id)
        return container_id

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

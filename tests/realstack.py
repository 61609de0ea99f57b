"""The real components the tests drive: dockerd, docker-registry, the Mender clients
(3.4 `mender` and 5.1 `mender-update`), mender-artifact.

Nothing here fakes anything. A missing component makes the fixture fail with a
message saying what to install; it never skips.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

MODULE_DIR = Path("/usr/share/mender/modules/v3")
ARTIFACT_INFO = Path("/etc/mender/artifact_info")
BUSYBOX = Path("/bin/busybox")
DEVICE_TYPE = "test-device"

# Applets linked into every test image; busybox-static carries them all.
APPLETS = ("sh", "httpd", "sleep", "cat", "echo", "wget", "ls", "true", "false", "kill", "nc")


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 300,
    env: Optional[Dict[str, str]] = None,
    input: Optional[bytes] = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command (argument list, never a shell); on failure show its output."""
    proc = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        input=None if input is None else input.decode(),
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {' '.join(argv)}\n"
            f"stdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}"
        )
    return proc


def require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise AssertionError(
            f"missing real component(s): {', '.join(missing)}; run scripts/setup first"
        )


def require_engine() -> None:
    require("docker", "dockerd")
    proc = run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False, timeout=30)
    if proc.returncode != 0:
        raise AssertionError(f"dockerd is not answering: {proc.stderr.strip()}")


def process_gone(pid: int) -> bool:
    """The process no longer runs. A zombie (dead, not yet reaped by its parent, e.g.
    a daemon this test process started) still has its /proc entry: it counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Registry:
    """A real docker-registry (distribution 2.8) on a loopback port, storage in a temp dir."""

    def __init__(self, root: Path, port: Optional[int] = None, extra_config: str = "") -> None:
        require("docker-registry")
        self.root = root
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.config = root / "config.yml"
        (root / "data").mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "version: 0.1\n"
            "log:\n  level: error\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {root / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n" + extra_config
        )
        self.proc: Optional[subprocess.Popen[bytes]] = None

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        log = open(self.root / "registry.log", "ab")
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(self.config)], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        log_text = (self.root / "registry.log").read_text()
        raise AssertionError(f"docker-registry did not start: {log_text}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class ImageFactory:
    """Builds tiny busybox images from scratch and pushes them to the test registry."""

    def __init__(self, registry: Registry, workdir: Path) -> None:
        require_engine()
        self.registry = registry
        self.workdir = workdir
        self.tags: List[str] = []

    def build(
        self,
        repo: str,
        tag: str = "latest",
        *,
        cmd: Sequence[str] = ("sleep", "3600"),
        healthcheck: Optional[Sequence[str]] = None,
        files: Optional[Dict[str, bytes]] = None,
        random_mb: int = 0,
        push: bool = True,
        volumes: Sequence[str] = (),
    ) -> str:
        """Build `<registry>/<repo>:<tag>`; return the pinned `repo@sha256:...` reference.
        `volumes`: the image's VOLUME paths.

        Every build adds a random marker file, so two builds never share a digest.
        """
        require(str(BUSYBOX))
        ctx = Path(tempfile.mkdtemp(dir=self.workdir))
        rootfs = ctx / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
        for applet in APPLETS:
            (rootfs / "bin" / applet).symlink_to("busybox")
        (rootfs / "www").mkdir()
        (rootfs / "tmp").mkdir()
        (rootfs / "www" / "index.html").write_text(f"{repo}:{tag}\n")
        (rootfs / "marker").write_text(uuid.uuid4().hex)
        for name, content in (files or {}).items():
            target = rootfs / name.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        if random_mb:
            with open(rootfs / "random.bin", "wb") as out:
                for _ in range(random_mb):
                    out.write(os.urandom(1 << 20))
        lines = ["FROM scratch", "COPY rootfs/ /", f"CMD {json.dumps(list(cmd))}"]
        if volumes:
            lines.append(f"VOLUME {json.dumps(list(volumes))}")
        if healthcheck:
            lines.append(
                "HEALTHCHECK --interval=1s --timeout=2s --retries=2 "
                f"CMD {json.dumps(list(healthcheck))}"
            )
        (ctx / "Dockerfile").write_text("\n".join(lines) + "\n")
        return self._build_and_push(ctx, repo, tag, push)

    def build_on(self, base: str, repo: str, tag: str, cmd: Sequence[str]) -> str:
        """`base` plus one small layer of its own (a page, a release file, 4 KiB of
        random data), pushed; the pinned reference. Releases built on one base share
        its layers, as delta artifacts need."""
        ctx = Path(tempfile.mkdtemp(dir=self.workdir))
        app = ctx / "app"
        (app / "www").mkdir(parents=True)
        (app / "www" / "index.html").write_text(f"{repo}:{tag}\n")
        (app / "release").write_text(f"{tag} {uuid.uuid4().hex}\n")
        (app / "app.bin").write_bytes(os.urandom(4096))
        (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY app/ /\nCMD {json.dumps(list(cmd))}\n")
        return self._build_and_push(ctx, repo, tag, push=True)

    def _build_and_push(self, ctx: Path, repo: str, tag: str, push: bool) -> str:
        full = f"{self.registry.host}/{repo}:{tag}"
        legacy_builder = {**os.environ, "DOCKER_BUILDKIT": "0"}  # no buildx plugin needed
        run(["docker", "build", "-q", "-t", full, str(ctx)], env=legacy_builder)
        shutil.rmtree(ctx)
        self.tags.append(full)
        if not push:
            return full
        run(["docker", "push", full])
        return run(
            ["docker", "image", "inspect", "--format", "{{index .RepoDigests 0}}", full]
        ).stdout.strip()

    def http_service(self, repo: str, tag: str = "latest", **kwargs: object) -> str:
        """An image serving /www on port 8080 that exits promptly on SIGTERM."""
        script = 'trap "exit 0" TERM; httpd -f -p 8080 -h /www & wait'
        return self.build(repo, tag, cmd=["sh", "-c", script], **kwargs)  # type: ignore[arg-type]

    def cleanup(self) -> None:
        for tag in self.tags:
            run(["docker", "image", "rm", "-f", tag], check=False)
        self.tags.clear()


# The 3.4 client's module directory and artifact info are the host's own: test runs in
# parallel (several checkouts on one machine) take turns on them through this lock.
HOST_LOCK = Path("/run/lock/mender-docker-tests-host-module-dir.lock")
_host_lock: Dict[str, Any] = {"fd": None, "count": 0}


def _hold_host_module_dir() -> None:
    if _host_lock["count"] == 0:
        HOST_LOCK.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(HOST_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        _host_lock["fd"] = fd
    _host_lock["count"] += 1


def _release_host_module_dir() -> None:
    _host_lock["count"] -= 1
    if _host_lock["count"] == 0:
        os.close(_host_lock["fd"])  # closing drops the flock
        _host_lock["fd"] = None


CLIENTS = ("3.4", "5.1")  # the Go client Debian packages; the C++ client devices run today
MENDER_UPDATE = "mender-update"  # 5.1, from shared/vendor/mender-update (scripts/setup)


class MenderDevice:
    """The real Mender client in standalone mode with its state in a temp dir.

    `client` is "3.4" (`mender`, Go) or "5.1" (`mender-update`, C++). The 3.4
    build reads modules from the fixed /usr/share/mender/modules/v3 and the
    artifact info from /etc/mender: `use_module` installs a module there and
    `restore` puts back exactly what was there before. 5.1 takes both
    directories from MENDER_DATA_DIR and MENDER_CONF_DIR, so its device
    lives entirely under `root`.
    """

    def __init__(self, root: Path, client: str = "3.4") -> None:
        if client not in CLIENTS:
            raise AssertionError(f"unknown Mender client {client!r}; known: {CLIENTS}")
        self.client = client
        self.binary = "mender" if client == "3.4" else MENDER_UPDATE
        require(self.binary)
        self.root = root
        self.data = root / "data"
        self.data.mkdir(parents=True)
        (self.data / "device_type").write_text(f"device_type={DEVICE_TYPE}\n")
        self.config = root / "mender.conf"
        self.config.write_text(json.dumps({"DeviceTypeFile": str(self.data / "device_type")}))
        self.env: Dict[str, str] = {}  # extra environment for the client (and so the module)
        self._saved: Dict[Path, Optional[bytes]] = {}
        self._holds_host = False
        if client == "3.4":
            _hold_host_module_dir()
            self._holds_host = True
            self.module_dir = MODULE_DIR
            self._save_and_write(ARTIFACT_INFO, b"artifact_name=factory\n", keep_existing=True)
        else:
            self.module_dir = root / "share" / "modules" / "v3"
            self.module_dir.mkdir(parents=True)
            conf_dir = root / "conf"
            conf_dir.mkdir()
            (conf_dir / "artifact_info").write_text("artifact_name=factory\n")
            self.env["MENDER_DATA_DIR"] = str(root / "share")
            self.env["MENDER_CONF_DIR"] = str(conf_dir)

    def _save_and_write(self, path: Path, content: bytes, keep_existing: bool = False) -> None:
        if path not in self._saved:
            self._saved[path] = path.read_bytes() if path.exists() else None
        if keep_existing and path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(content)
        tmp.chmod(0o755)
        os.replace(tmp, path)

    def use_module(self, module_file: Path, type_name: str = "docker") -> None:
        self._save_and_write(self.module_dir / type_name, module_file.read_bytes())

    def restore(self) -> None:
        for path, content in self._saved.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                tmp = path.with_name(f".{path.name}.restore.tmp")
                tmp.write_bytes(content)
                tmp.chmod(0o755)
                os.replace(tmp, path)
        self._saved.clear()
        if self._holds_host:
            self._holds_host = False
            _release_host_module_dir()

    def argv(self, *args: str) -> List[str]:
        """The client's command line (global options first, as both clients want them)."""
        common = [self.binary, "-c", str(self.config), "-d", str(self.data)]
        return [*common, "--no-syslog", *args] if self.client == "3.4" else [*common, *args]

    def mender(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return run(
            self.argv(*args), check=False, timeout=timeout, env={**os.environ, **self.env}
        )

    def install(self, artifact: Path) -> subprocess.CompletedProcess[str]:
        return self.mender("install", str(artifact))

    def commit(self) -> subprocess.CompletedProcess[str]:
        return self.mender("commit")

    def rollback(self) -> subprocess.CompletedProcess[str]:
        return self.mender("rollback")

    def resume(self) -> subprocess.CompletedProcess[str]:
        """5.x only: finish (roll back) a deployment the client was killed in."""
        if self.client == "3.4":
            raise AssertionError("the 3.4 client has no resume: it forgets such a deployment")
        return self.mender("resume")

    def show_artifact(self) -> str:
        return self.mender("-l", "error", "show-artifact").stdout.strip()

    def show_provides(self) -> str:
        return self.mender("-l", "error", "show-provides").stdout.strip()


def running_containers(label: Optional[str] = None) -> List[Dict[str, str]]:
    """Running containers as {id, name, image}, optionally only those with a label."""
    argv = ["docker", "ps", "--no-trunc", "--format", "{{.ID}}\t{{.Names}}\t{{.Image}}"]
    if label:
        argv += ["--filter", f"label={label}"]
    out = run(argv).stdout
    rows = [line.split("\t") for line in out.splitlines() if line.strip()]
    return [{"id": r[0], "name": r[1], "image": r[2]} for r in rows]


# -- podman -----------------------------------------------------------------------------

PODMAN = "podman"
ENGINES = ("docker", "podman")
# What podman 4.3 needs to run containers on this machine (see shared/REFERENCE.md):
# without the ulimits the runtime fails on rlimits; crun refuses the hybrid cgroups.
PODMAN_CONTAINERS_CONF = (
    "[containers]\n"
    'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
    "[engine]\n"
    'runtime = "runc"\n'
)


def require_podman() -> None:
    require(PODMAN, "conmon", "runc")
    proc = run([PODMAN, "--version"], check=False, timeout=30)
    if proc.returncode != 0:
        raise AssertionError(f"podman does not run: {proc.stderr.strip()}")


class PodmanStore:
    """A real podman with everything of its own under `root`: image and container
    store (graphroot), runroot, tmp_dir (the `alive` file by which podman tells a
    reboot, the exit files, events) and, with `file_locks`, its locks (else the
    SHM segment /dev/shm/libpod_lock every podman on the machine shares).

    `env` hands the three configuration files to podman, to the Mender client
    and through it to our module. Other podman users on this machine are never
    seen: only the default network (netavark's bridge, firewall rules, IPAM) is
    shared, and podman removes what it set up there with each container.
    """

    def __init__(
        self, root: Path, registries: Sequence[str] = (), file_locks: bool = False
    ) -> None:
        require_podman()
        self.root = root
        self.graphroot = root / "graph"
        self.runroot = root / "run"
        self.tmp_dir = root / "tmp"
        root.mkdir(parents=True, exist_ok=True)
        conf = PODMAN_CONTAINERS_CONF + f'tmp_dir = "{self.tmp_dir}"\n'
        if file_locks:
            conf += 'lock_type = "file"\n'  # podman keeps them in tmp_dir/locks
        (root / "containers.conf").write_text(conf)
        (root / "storage.conf").write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{self.graphroot}"\n'
            f'runroot = "{self.runroot}"\n'
        )
        (root / "registries.conf").write_text(
            "".join(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n' for host in registries)
        )
        self.env: Dict[str, str] = {
            "CONTAINERS_CONF": str(root / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(root / "registries.conf"),
        }

    def argv(self, *args: str) -> List[str]:
        return [PODMAN, *args]

    def run(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return run(self.argv(*args), check=check, timeout=timeout, env={**os.environ, **self.env})

    def mounts(self) -> List[str]:
        """Mount points under `root` (container root filesystems, shm, the store's own)."""
        prefix = str(self.root) + os.sep
        with open("/proc/self/mounts", encoding="utf-8") as handle:
            points = [line.split()[1] for line in handle if line.split()]
        return [p for p in points if p.startswith(prefix)]

    def unmount_all(self) -> None:
        for point in sorted(set(self.mounts()), key=len, reverse=True):
            if run(["umount", point], check=False).returncode != 0:
                run(["umount", "-l", point], check=False)

    def cleanup(self) -> None:
        """Remove every container and image, then the whole store."""
        if self.graphroot.exists():
            self.run("rm", "-a", "-f", "-t", "0", check=False)
            self.run("rmi", "-a", "-f", check=False)
        self.unmount_all()
        shutil.rmtree(self.root, ignore_errors=True)


class EngineCli:
    """The engine the tests look at the device with: a dockerd (the shared one, or a
    private one at `docker_host`), or a PodmanStore. `env` is what the Mender client
    (and so our module) needs to reach the same engine; `name` is its CLI and the
    module's `engine` setting."""

    def __init__(
        self, name: str, store: Optional[PodmanStore] = None, docker_host: str = ""
    ) -> None:
        if name not in ENGINES or (name == PODMAN) != (store is not None):
            raise AssertionError(f"engine {name!r} needs a PodmanStore iff it is podman")
        self.name = name
        self.store = store
        self.env: Dict[str, str] = {"DOCKER_HOST": docker_host} if docker_host else {}
        if store is not None:
            self.env = dict(store.env)

    @property
    def is_podman(self) -> bool:
        return self.store is not None

    def run(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        if self.store is not None:
            return self.store.run(*args, check=check, timeout=timeout)
        env = {**os.environ, **self.env} if self.env else None
        return run(["docker", *args], check=check, timeout=timeout, env=env)

    def inspect(self, container: str) -> Dict[str, Any]:
        data: List[Dict[str, Any]] = json.loads(self.run("container", "inspect", container).stdout)
        return data[0]

    def image_id(self, ref: str) -> str:
        """The image's ID as `sha256:<hex>` (podman leaves the prefix out), "" if absent."""
        proc = self.run("image", "inspect", "--format", "{{.Id}}", ref, check=False)
        found = proc.stdout.strip() if proc.returncode == 0 else ""
        return f"sha256:{found}" if found and ":" not in found else found

    def container_ids(self, label: str, all_states: bool = True) -> List[str]:
        args = ["ps", "-q", "--no-trunc", "--filter", f"label={label}"]
        return self.run(*(args + ["-a"] if all_states else args)).stdout.split()

    def containers(self, label: str, all_states: bool = True) -> List[Dict[str, str]]:
        """Containers with the label as {id, name, image, state}, in the order the engine
        lists them; from `inspect`, as podman's `ps` has no plain state."""
        ids = self.container_ids(label, all_states)
        if not ids:
            return []
        found = json.loads(self.run("container", "inspect", *ids).stdout)
        return [
            {
                "id": str(c["Id"]),
                "name": str(c["Name"]).lstrip("/"),
                "image": str(c["Config"].get("Image") or c.get("ImageName") or ""),
                "state": str(c["State"]["Status"]),
            }
            for c in found
        ]

    def remove_containers(self, *containers: str) -> None:
        """Kill and remove them (podman's `rm -f` would wait 10 s for each to stop)."""
        if containers:
            kill_now = ["-t", "0"] if self.is_podman else []
            self.run("rm", "-f", *kill_now, *containers, check=False)

    def remove_images_from(self, registry_host: str) -> None:
        """Remove the images of `registry_host`'s repositories (what deployments pulled)."""
        listing = self.run("images", "--format", "{{.Repository}}@{{.ID}}", check=False).stdout
        for line in listing.splitlines():
            repo, _, found = line.partition("@")
            if repo.startswith(registry_host + "/"):
                self.run("image", "rm", "-f", found, check=False)


class Stack(NamedTuple):
    """One device the real-client suites run on: a Mender client and an engine."""

    client: str  # see CLIENTS
    engine: str  # see ENGINES

    @property
    def id(self) -> str:
        """Test ids: `mender-3.4`, `mender-5.1` (docker, as before), `mender-5.1-podman`."""
        return f"mender-{self.client}" + ("" if self.engine == "docker" else f"-{self.engine}")


DOCKER_STACKS = tuple(Stack(client, "docker") for client in CLIENTS)
# Podman with today's client only: CI time (2 cores, 30 min) does not allow a 4th pass.
PODMAN_STACKS = (Stack("5.1", PODMAN),)
ALL_STACKS = DOCKER_STACKS + PODMAN_STACKS

"""What every benchmark shares: the two systems, a lab that cleans up, a port poller, tables.

The real components come from `tests/realstack.py` (Registry, ImageFactory,
MenderDevice, run); nothing is faked. "original" is the module and generator
Debian's mender-client ships; "ours" is `mender-docker build-module` and our
`docker-artifact-gen`. Both run on the same dockerd, registry and images in
the same run, so their figures compare.

Either Mender client drives them: 3.4 (`mender`, Go, Debian's package; modules
in the fixed /usr/share/mender/modules/v3, saved and restored) or 5.1
(`mender-update`, C++, what devices run today; modules in the device's private
`$MENDER_DATA_DIR/modules/v3`). Every comparison is original against ours
under the same client in the same run, and every table names the client.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # so that `tests.realstack` imports from a plain script
    sys.path.insert(0, str(REPO_ROOT))

from tests.realstack import (  # noqa: E402
    CLIENTS,
    DEVICE_TYPE,
    MENDER_UPDATE,
    MODULE_DIR,
    ImageFactory,
    MenderDevice,
    Registry,
    require_engine,
    run,
)

SYSTEMS = ("original", "ours")
ORIGINAL_MODULE = MODULE_DIR / "docker"
ORIGINAL_GEN = Path("/usr/share/doc/mender-client/examples/docker-artifact-gen")
DPKG_MD5SUMS = Path("/var/lib/dpkg/info/mender-client.md5sums")
MODULE_RELPATH = "usr/share/mender/modules/v3/docker"
MANAGED_LABEL = "io.mender.docker.managed"
DOCKER_ROOT = Path("/var/lib/docker")
# What a device's Mender client has on PATH. Our workstation's PATH starts with
# pyenv shims, which turn every `python3` start into a bash + pyenv run
# (about +250 ms per module call here): that is not what a device pays.
DEVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CLIENT_COMMANDS = {"3.4": "mender", "5.1": MENDER_UPDATE}
DEFAULT_CLIENTS = ("3.4",)  # benchmarks that do not say otherwise: the client of the figures


def client_name(client: str) -> str:
    """How tables and headings name a client: `3.4 (mender)`, `5.1 (mender-update)`."""
    return f"{client} ({CLIENT_COMMANDS[client]})"


def clients_title(clients: Sequence[str]) -> str:
    """`Mender client 3.4 (mender)` or `Mender clients 3.4 (mender) and 5.1 (...)`."""
    names = [client_name(c) for c in clients]
    if len(names) == 1:
        return f"Mender client {names[0]}"
    return f"Mender clients {', '.join(names[:-1])} and {names[-1]}"


class BenchError(Exception):
    """A benchmark could not run; the message says why (printed as one line)."""


def note(text: str) -> None:
    """Progress goes to stderr so that stdout holds only the result tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- systems


@dataclass
class System:
    """One update system: the module file the client runs and how to generate artifacts."""

    name: str
    module: Path
    env: Dict[str, str] = field(default_factory=dict)  # extra environment for the client

    def generate(
        self, out: Path, artifact_name: str, images: Sequence[str], run_args: str = ""
    ) -> Path:
        """Write an artifact for `images` (pinned references) with this system's generator."""
        target = out / f"{self.name}-{artifact_name}.mender"
        options = ["-n", artifact_name, "-t", DEVICE_TYPE, "-o", str(target)]
        if run_args:  # the original generator refuses an empty --run-args value
            options += ["--run-args", run_args]
        if self.name == "original":
            # It writes meta-data.json into its working directory and pulls every image.
            workdir = Path(tempfile.mkdtemp(dir=out))
            proc = _run_in(["bash", str(ORIGINAL_GEN), *options, *images], workdir)
        else:
            proc = _run_in(["docker-artifact-gen", *options, *images], out)
        if proc.returncode != 0 or not target.is_file():
            raise BenchError(
                f"{self.name} generator failed for {artifact_name}: "
                f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}"
            )
        return target


def _run_in(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=900)


def dpkg_md5(relative: str) -> Optional[str]:
    if not DPKG_MD5SUMS.is_file():
        return None
    for line in DPKG_MD5SUMS.read_text().splitlines():
        digest, _, path = line.partition("  ")
        if path.strip() == relative:
            return digest
    return None


def _is_pristine(data: bytes) -> bool:
    want = dpkg_md5(MODULE_RELPATH)
    return bool(data) and (want is None or hashlib.md5(data).hexdigest() == want)  # noqa: S324


def _from_deb() -> Optional[bytes]:
    """The module as packed in the cached mender-client .deb, if apt kept it."""
    for deb in sorted(Path("/var/cache/apt/archives").glob("mender-client_*.deb")):
        proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True)
        if proc.returncode != 0:
            continue
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
            try:
                member = tar.extractfile("./" + MODULE_RELPATH)
            except KeyError:
                continue
            if member is not None:
                data = member.read()
                if _is_pristine(data):
                    return data
    return None


def original_module_bytes(wait: float = 60, allow_deb: bool = True) -> bytes:
    """The Debian module's bytes, as dpkg recorded them.

    Other engineers' tests put their module at the same path for a while: take
    the bytes from the cached .deb then, or wait for the original to be back.
    """
    deadline = time.monotonic() + wait
    while True:
        data = ORIGINAL_MODULE.read_bytes() if ORIGINAL_MODULE.is_file() else b""
        if _is_pristine(data):
            return data
        packed = _from_deb() if allow_deb else None
        if packed is not None:
            return packed
        if time.monotonic() > deadline:
            raise BenchError(
                f"{ORIGINAL_MODULE} is not the one mender-client installed (md5 mismatch): "
                "a test left its module there; `apt-get install --reinstall mender-client`"
            )
        time.sleep(1)


def wait_for_pristine_module(wait: float = 300) -> None:
    """Block until the module path holds the original again.

    MenderDevice saves whatever is there for its restore(); saving another
    test's module would put that one back at the end, for good.
    """
    current = ORIGINAL_MODULE.read_bytes() if ORIGINAL_MODULE.is_file() else b""
    if not _is_pristine(current):
        note(f"waiting up to {wait:.0f}s for {ORIGINAL_MODULE} to be the original again "
             "(a concurrent test has its module there)")
    original_module_bytes(wait=wait, allow_deb=False)


# --------------------------------------------------------------------------- lab


class Lab:
    """Registry, images, devices and a work dir; everything is undone on exit.

    Undone means: containers created from this lab's images (either system's),
    the images themselves, the registry process, the temp dir, the module file
    and /etc/mender/artifact_info (via MenderDevice.restore).
    """

    def __init__(
        self,
        bench: str,
        systems: Sequence[str],
        our_conf: Dict[str, str],
        device_path: Optional[str] = DEVICE_PATH,
        clients: Sequence[str] = DEFAULT_CLIENTS,
    ) -> None:
        for name in systems:
            if name not in SYSTEMS:
                raise BenchError(f"unknown system {name!r} (choose from {', '.join(SYSTEMS)})")
        if not ORIGINAL_GEN.is_file() and "original" in systems:
            raise BenchError(f"the original generator is missing: {ORIGINAL_GEN}")
        for client in clients:
            if client not in CLIENTS:
                known = ", ".join(CLIENTS)
                raise BenchError(f"unknown Mender client {client!r} (choose from {known})")
        require_engine()
        self.bench = bench
        self.system_names = list(systems)
        self.clients = list(clients)
        self.our_conf = dict(our_conf)
        self.device_path = device_path  # None: the client inherits our PATH
        self.work = Path(tempfile.mkdtemp(prefix=f"mender-docker-bench-{bench}-"))
        self.registry = Registry(self.work / "registry")
        self.factory = ImageFactory(self.registry, self.work)
        self.image_ids: Set[str] = set()  # every image this lab built (IDs survive push/pull)
        self.systems: Dict[str, System] = {}
        self._original_bytes = b""
        self._old_sigterm: object = None

    # -- lifecycle

    def __enter__(self) -> Lab:
        self._old_sigterm = signal.signal(signal.SIGTERM, _exit_on_signal)
        try:
            self._original_bytes = original_module_bytes()
            self.registry.start()
            for name in self.system_names:
                self.systems[name] = self._make_system(name)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        note("cleaning up")
        try:
            self.purge()
            self.factory.cleanup()
        finally:
            self.registry.stop()
            _rmtree(self.work)
            if self._old_sigterm is not None:
                signal.signal(signal.SIGTERM, self._old_sigterm)  # type: ignore[arg-type]
            if (
                "3.4" in self.clients
                and self._original_bytes
                and ORIGINAL_MODULE.read_bytes() != self._original_bytes
            ):
                note(f"WARNING: {ORIGINAL_MODULE} differs from the original after the run")

    def _make_system(self, name: str) -> System:
        if name == "original":
            module = self.work / "original-module"
            module.write_bytes(self._original_bytes)
            module.chmod(0o755)
            return System("original", module)
        module = self.work / "ours-module"
        proc = run(["mender-docker", "build-module", "-o", str(module)], check=False)
        if proc.returncode != 0:
            raise BenchError(f"`mender-docker build-module` failed: {proc.stderr.strip()[-300:]}")
        conf = self.work / "ours.conf"
        settings = {"scope": "managed", **self.our_conf}  # data_dir: per device
        conf.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
        return System("ours", module, {"MENDER_DOCKER_CONF": str(conf)})

    @contextmanager
    def device(self, system: System, client: str = "3.4") -> Iterator[MenderDevice]:
        """A fresh Mender client (own state dir) running `system`'s module; restored after.

        Under 3.4 the module goes to the shared /usr/share/mender/modules/v3 (saved
        and restored); under 5.1 to the device's private module directory.
        """
        root = Path(tempfile.mkdtemp(dir=self.work))
        device = MenderDevice(root / "device", client=client)
        device.env.update(system.env)
        if self.device_path is not None:  # None: the client inherits our PATH
            device.env["PATH"] = self.device_path
        if system.name == "ours":
            # A fresh journal per device, so no scenario inherits another's state.
            base = Path(system.env["MENDER_DOCKER_CONF"]).read_text()
            conf = root / "ours.conf"
            conf.write_text(base + f"data_dir = {root / 'ours-data'}\n")
            device.env["MENDER_DOCKER_CONF"] = str(conf)
        try:
            if client == "3.4":
                # Save (for restore) only the pristine original, never a module some
                # concurrent test left there for a moment.
                wait_for_pristine_module()
            device.use_module(system.module)
            yield device
        finally:
            device.restore()

    # -- images

    def build_http(self, repo: str, tag: str, random_mb: int = 0, port: int = 8080) -> str:
        """An HTTP service image answering `<repo>:<tag>`; returns its pinned reference."""
        script = f'trap "exit 0" TERM; httpd -f -p {port} -h /www & wait'
        ref = self.factory.build(repo, tag, cmd=["sh", "-c", script], random_mb=random_mb)
        self.image_ids.add(image_id(ref))
        return ref

    def drop_local(self, refs: Sequence[str]) -> None:
        """Remove local copies so that the device really pulls them from the registry."""
        ids = [image_id(ref) for ref in refs]
        for ident in [i for i in ids if i]:
            run(["docker", "image", "rm", "-f", ident], check=False)
        for ref in refs:
            if image_id(ref):
                raise BenchError(f"could not remove the local copy of {ref} (still in use?)")

    # -- what is on the engine

    def containers(self) -> List[Tuple[str, str]]:
        """(container ID, state) of every container made from this lab's images."""
        ids = run(["docker", "ps", "-aq", "--no-trunc"], check=False).stdout.split()
        if not ids:
            return []
        # Containers of other engineers may vanish meanwhile: inspect prints the rest.
        out = run(
            ["docker", "inspect", "--format", "{{.Id}}\t{{.Image}}\t{{.State.Status}}", *ids],
            check=False,
        ).stdout
        rows = [line.split("\t") for line in out.splitlines() if line.count("\t") == 2]
        return [(row[0], row[2]) for row in rows if row[1] in self.image_ids]

    def images(self) -> List[str]:
        """IDs of this lab's images present on the engine."""
        out = run(["docker", "images", "-q", "--no-trunc"], check=False).stdout.split()
        return sorted({ident for ident in out if ident in self.image_ids})

    def purge(self) -> None:
        """Remove every container and image this lab made, with either system."""
        containers = [cid for cid, _ in self.containers()]
        if containers:
            run(["docker", "rm", "-f", *containers], check=False)
        images = self.images()
        if images:
            run(["docker", "image", "rm", "-f", *images], check=False)


def _exit_on_signal(signum: int, frame: Optional[FrameType]) -> None:
    raise SystemExit(128 + signum)  # runs every `finally`, so the lab cleans up


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def image_id(ref: str) -> str:
    """The local image ID of `ref`, or "" when it is not on the engine."""
    proc = run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def docker_root_bytes() -> int:
    """Disk used by dockerd's data root (the whole engine: other users add noise)."""
    proc = run(["du", "-sb", str(DOCKER_ROOT)], check=False, timeout=120)
    try:
        return int(proc.stdout.split()[0])
    except (IndexError, ValueError):
        raise BenchError(f"du failed on {DOCKER_ROOT}: {proc.stderr.strip()}") from None


# --------------------------------------------------------------------------- deploying


@dataclass
class DeployTiming:
    install_s: float
    commit_s: float

    @property
    def total_s(self) -> float:
        return self.install_s + self.commit_s


def deploy(device: MenderDevice, system: System, artifact: Path) -> DeployTiming:
    """`install` + `commit` with the device's client; both must succeed."""
    device.use_module(system.module)  # 3.4: a concurrent test may have swapped it meanwhile
    who = f"{system.name} under {device.binary} {device.client}"
    started = time.monotonic()
    proc = device.install(artifact)
    installed = time.monotonic()
    if proc.returncode != 0:
        raise BenchError(f"{who}: install {artifact.name} failed: {_tail(proc.stderr)}")
    proc = device.commit()
    committed = time.monotonic()
    if proc.returncode != 0:
        raise BenchError(f"{who}: commit failed: {_tail(proc.stderr)}")
    module = device.module_dir / "docker"
    if module.read_bytes() != system.module.read_bytes():
        note(f"WARNING: {module} changed during the {who} deployment "
             "(a concurrent test swapped it?)")
    return DeployTiming(installed - started, committed - installed)


def _tail(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-600:]


# --------------------------------------------------------------------------- polling


def parse_http(data: bytes) -> Optional[str]:
    """The body of a `200` answer, stripped, or None for anything else."""
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")):
        return None
    return body.decode(errors="replace").strip()


@dataclass(frozen=True)
class Sample:
    sent: float  # monotonic time the probe started
    answered: float  # monotonic time its answer (or failure) came
    body: Optional[str]  # None: no `200` answer


class Poller:
    """Asks each port every `interval` seconds and keeps every probe as a Sample.

    Probes are started on schedule whether or not earlier ones have finished:
    while a container starts, docker-proxy accepts connections it cannot
    forward yet and they hang (about 1 s, a SYN retransmission), and a stuck
    probe must not hide the moment the service comes back. One asyncio loop
    in a thread drives them all.
    """

    def __init__(self, ports: Sequence[int], interval: float = 0.01, timeout: float = 3.0) -> None:
        self.ports = list(ports)
        self.interval = interval
        self.timeout = timeout
        self.samples: Dict[int, List[Sample]] = {p: [] for p in self.ports}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        pending: Set[asyncio.Task[None]] = set()
        next_at = time.monotonic()
        while not self._stop.is_set():
            for port in self.ports:
                task = asyncio.ensure_future(self._probe(port))
                pending.add(task)
                task.add_done_callback(pending.discard)
            next_at = max(next_at + self.interval, time.monotonic())
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if pending:
            await asyncio.wait(pending, timeout=self.timeout + 1)

    async def _probe(self, port: int) -> None:
        sent = time.monotonic()
        body: Optional[str] = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), self.timeout
            )
            try:
                writer.write(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
                body = parse_http(await asyncio.wait_for(reader.read(), self.timeout))
            finally:
                writer.close()
        except (OSError, asyncio.TimeoutError):
            body = None
        self.samples[port].append(Sample(sent, time.monotonic(), body))

    def first_answer(self, port: int, want: str, after: float = 0.0) -> Optional[Sample]:
        """The earliest answered probe whose body contains `want`."""
        hits = [s for s in list(self.samples[port])
                if s.body is not None and want in s.body and s.answered >= after]
        return min(hits, key=lambda s: s.answered) if hits else None

    def wait_for(
        self, port: int, want: str, timeout: float, after: float = 0.0
    ) -> Optional[Sample]:
        """Wait until some probe of the port got an answer containing `want`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hit = self.first_answer(port, want, after)
            if hit is not None:
                return hit
            time.sleep(0.05)
        return None

    def gaps(
        self, port: int, start: float, end: float, by: str = "answered"
    ) -> List[Tuple[float, float]]:
        """Stretches in [start, end] between successful probes, by answer or by send time.

        by="answered": no answer arrived (what a client waiting on the port sees);
        by="sent": every probe sent in the stretch failed (hung-then-answered counts as up).
        """
        times = sorted(getattr(s, by) for s in list(self.samples[port]) if s.body is not None)
        before = [t for t in times if t < start]
        points = before[-1:] or [start]
        points += [t for t in times if start <= t <= end]
        stretches = list(zip(points, points[1:]))
        stretches.append((points[-1], end))  # still down at the end counts too
        return stretches

    def outage(self, port: int, start: float, end: float, by: str = "answered") -> float:
        """The longest stretch without a successful probe, in seconds."""
        return max(b - a for a, b in self.gaps(port, start, end, by))

    def any_down(self, start: float, end: float, threshold: float = 0.2) -> float:
        """Seconds in [start, end] during which at least one port had no answer.

        Gaps shorter than `threshold` are polling jitter, not outages.
        """
        spans = sorted(
            (a, b)
            for port in self.ports
            for a, b in self.gaps(port, start, end)
            if b - a >= threshold
        )
        total, cur_a, cur_b = 0.0, None, None
        for a, b in spans:
            if cur_b is None or a > cur_b:
                if cur_a is not None and cur_b is not None:
                    total += cur_b - cur_a
                cur_a, cur_b = a, b
            else:
                cur_b = max(cur_b, b)
        if cur_a is not None and cur_b is not None:
            total += cur_b - cur_a
        return total


# --------------------------------------------------------------------------- reporting


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(original: Optional[float], ours: Optional[float]) -> str:
    """original / ours, as the tables print it."""
    if original is None or ours is None or ours != ours or original != original:
        return "n/a"
    if ours <= 0:
        return "inf"
    value = original / ours
    return f"{value:.1f}x" if value >= 0.95 else f"{value:.2g}x"  # 0.043x, not 0.0x


def fmt(value: Optional[float], digits: int = 2) -> str:
    if value is None or value != value:
        return "n/a"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.000"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-markdown table, aligned so that it reads in a terminal too."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def systems_arg(text: str) -> List[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    bad = [name for name in names if name not in SYSTEMS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown system(s) {', '.join(bad) or repr(text)}; choose from {', '.join(SYSTEMS)}"
        )
    return names


def key_value(text: str) -> Tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def clients_arg(text: str) -> List[str]:
    """`3.4`, `5.1`, `both` (or a comma list) -> the clients, in CLIENTS order."""
    names = list(CLIENTS) if text.strip() == "both" else [
        name.strip() for name in text.split(",") if name.strip()
    ]
    bad = [name for name in names if name not in CLIENTS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown Mender client(s) {', '.join(bad) or repr(text)}; "
            f"choose from {', '.join(CLIENTS)} or both"
        )
    return [name for name in CLIENTS if name in names]


def add_system_args(parser: argparse.ArgumentParser, clients: str = "3.4") -> None:
    """--systems, --client and --our-conf, for every module benchmark.

    `clients` is the default of --client: "3.4", "5.1" or "both".
    """
    parser.add_argument("--systems", type=systems_arg, default=list(SYSTEMS),
                        help="comma-separated: original,ours (default both)")
    parser.add_argument("--client", dest="clients", type=clients_arg,
                        default=clients_arg(clients), metavar="3.4|5.1|both",
                        help=f"the Mender client(s) driving both systems (default {clients}): "
                             "3.4 `mender` (Go, Debian), 5.1 `mender-update` (C++)")
    parser.add_argument("--our-conf", action="append", type=key_value, default=[],
                        metavar="KEY=VALUE",
                        help="a setting for our module's config file (repeatable), e.g. "
                             "label_namespace=io.bench.x to keep clear of concurrent tests")


def main_guard(body: Callable[[], int]) -> int:
    """Run a bench's main body; turn expected failures into one stderr line and exit 1."""
    try:
        return body()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except AssertionError as exc:  # tests.realstack's way of saying a command failed
        print(f"error: {' | '.join(str(exc).split(chr(10))[:3])[:800]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


__all__ = [
    "CLIENTS",
    "BenchError",
    "DeployTiming",
    "Lab",
    "Poller",
    "System",
    "client_name",
    "clients_title",
    "deploy",
    "docker_root_bytes",
    "fmt",
    "median",
    "note",
    "ratio",
    "table",
]

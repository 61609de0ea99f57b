"""Delta offline artifacts against full ones: artifact size, generation, install, disk.

Each app image is one shared base layer (busybox-static plus N MB of random data,
as incompressible as real binaries) under a small top layer (a page, a release
file and 4 KiB of random data) that each release changes. Release v1 is installed
from a full offline artifact and committed; then v2 is installed from

  full   `docker-artifact-gen --embed-images ... v2`
  delta  `docker-artifact-gen --embed-images --delta-from v1.mender ... v2`
         (the payload leaves the base layer out; the device already holds it)

and committed, each on a fresh device (own client state and module journal, v1
installed again first), by the same Mender client. Per base size:

  artifact size    bytes of the .mender file (compression none, the default for
                   registry images: their layers are gzip already)
  generation       wall time of the generator for v2, registry on loopback (median
                   of --gen-runs); the delta's includes reading v1.mender
  install          wall time of the client's `install` of v2: Download (payload into
                   the engine) + ArtifactInstall (swap, the module's health window of
                   1 s); the commit is not counted
  peak extra disk  used bytes (statvfs) of the filesystem holding dockerd's data root
                   and the client's data dir, sampled every 50 ms during the install,
                   minus the level just before it (the two are one filesystem on
                   most machines; when not, each is sampled and the extras added)

    python bench/delta_bench.py [--sizes 60,200] [--client 3.4|5.1] [--gen-runs 3]
    python bench/delta_bench.py --quick          # a 20 MB base, one generation run

Other writers on the same filesystem add noise to the disk figures: run it on a
quiet machine. Needs dockerd, docker-registry, busybox-static and the client
(tests/realstack.py); everything it creates is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # so that `tests.realstack` imports from a plain script
    sys.path.insert(0, str(REPO_ROOT))

from bench.harness import (  # noqa: E402
    BenchError,
    client_name,
    fmt,
    main_guard,
    note,
    table,
)
from bench.offline_bench import docker_root, used_bytes  # noqa: E402
from mender_docker.artifact import read_artifact  # noqa: E402
from mender_docker.spec import loaded_tag  # noqa: E402
from tests.realstack import (  # noqa: E402
    CLIENTS,
    DEVICE_TYPE,
    ImageFactory,
    MenderDevice,
    Registry,
    require,
    require_engine,
    run,
    unique,
)

SAMPLE_SECONDS = 0.05
QUICK_EXIT = ("sh", "-c", 'trap "exit 0" TERM; sleep 3600 & wait')
KINDS = ("full", "delta")
GOAL = 0.05  # the delta's size against the full artifact's
MIB = 2**20


# ------------------------------------------------------------------------------ disk


class DiskSampler:
    """Samples the used bytes of the filesystems holding `paths` every 50 ms in a
    thread (each filesystem once); peak_extra adds up each one's peak over its level
    before."""

    def __init__(self, paths: Sequence[str]) -> None:
        by_device: Dict[int, str] = {}
        for path in paths:
            by_device.setdefault(os.stat(path).st_dev, path)
        self.paths = list(by_device.values())
        self.before = [used_bytes(p) for p in self.paths]
        self.peak = list(self.before)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        for index, path in enumerate(self.paths):
            self.peak[index] = max(self.peak[index], used_bytes(path))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> DiskSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak_extra(self) -> int:
        return sum(peak - before for peak, before in zip(self.peak, self.before))


# ------------------------------------------------------------------------------ images


def docker_image_id(ref: str) -> str:
    proc = run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


@dataclass
class Release:
    """One base size's images and artifacts."""

    size_mb: int
    base: str  # local tag of the base image
    refs: Dict[str, str]  # "v1", "v2" -> pinned reference
    artifacts: Dict[str, Path] = field(default_factory=dict)  # "v1", "full", "delta"
    gen_seconds: Dict[str, float] = field(default_factory=dict)  # "full", "delta"


def build_release(factory: ImageFactory, size_mb: int) -> Release:
    note(f"building a {size_mb} MB base and two releases over it")
    first = len(factory.tags)
    base = factory.build(unique("deltabench/base"), "base", random_mb=size_mb, push=False)
    repo = unique("deltabench/app")
    refs = {tag: factory.build_on(base, repo, tag, QUICK_EXIT) for tag in ("v1", "v2")}
    for tag in reversed(factory.tags[first:]):  # the device gets them from the artifacts
        run(["docker", "image", "rm", "-f", tag], check=False)
    if any(docker_image_id(ref) for ref in [*refs.values(), base]):
        raise BenchError("could not remove the local copies of the images (still in use?)")
    return Release(size_mb, base, refs)


def generate(work: Path, name: str, image: str, delta_from: Optional[Path] = None) -> float:
    """Seconds `docker-artifact-gen --embed-images` takes for `name`."""
    extra = ["--delta-from", str(delta_from)] if delta_from is not None else []
    argv = ["docker-artifact-gen", "--embed-images", *extra, "-n", name, "-t", DEVICE_TYPE,
            "-o", str(work / f"{name}.mender"), image]  # fmt: skip
    start = time.monotonic()
    run(argv, timeout=1800)
    return time.monotonic() - start


def generate_all(work: Path, release: Release, runs: int) -> None:
    size = release.size_mb
    v1 = f"dbench-{size}-v1"
    generate(work, v1, release.refs["v1"])
    release.artifacts["v1"] = work / f"{v1}.mender"
    for kind in KINDS:
        name = f"dbench-{size}-v2-{kind}"
        base = release.artifacts["v1"] if kind == "delta" else None
        times = [generate(work, name, release.refs["v2"], base) for _ in range(runs)]
        release.gen_seconds[kind] = statistics.median(times)
        release.artifacts[kind] = work / f"{name}.mender"
    meta = read_artifact(str(release.artifacts["delta"])).meta_data or {}
    if not meta.get("delta_layers") or not meta.get("delta_base"):
        raise BenchError(f"the delta artifact of the {size} MB base is not a delta: {meta}")


# ------------------------------------------------------------------------------ device


@dataclass
class Install:
    seconds: float
    peak_extra: int


class Device:
    """A fresh Mender client running our module, with its own journal and labels."""

    def __init__(self, root: Path, client: str, module: Path) -> None:
        self.namespace = unique("deltabench.mender")
        root.mkdir(parents=True)
        conf = root / "mender-docker.conf"
        conf.write_text(
            f"scope = managed\nlabel_namespace = {self.namespace}\n"
            f"data_dir = {root / 'journal'}\nhealth_window = 1\nstop_timeout = 2\n"
        )
        self.client = MenderDevice(root / "device", client=client)
        self.client.env["MENDER_DOCKER_CONF"] = str(conf)
        self.client.use_module(module)

    def install(self, artifact: Path) -> float:
        start = time.monotonic()
        proc = self.client.install(artifact)
        seconds = time.monotonic() - start
        if proc.returncode != 0:
            raise BenchError(f"install of {artifact.name} failed: {proc.stderr.strip()[-800:]}")
        return seconds

    def commit(self) -> None:
        proc = self.client.commit()
        if proc.returncode != 0:
            raise BenchError(f"commit failed: {proc.stderr.strip()[-800:]}")

    def running_images(self) -> List[str]:
        """The pinned references our running containers were made from."""
        ids = run(["docker", "ps", "-q", "--no-trunc", "--filter",
                   f"label={self.namespace}.managed"]).stdout.split()  # fmt: skip
        if not ids:
            return []
        label = f'{{{{index .Config.Labels "{self.namespace}.image"}}}}'
        return run(["docker", "inspect", "--format", label, *ids]).stdout.split()

    def remove(self, release: Release) -> None:
        """Its containers and every image of the release: the engine as before."""
        ids = run(["docker", "ps", "-aq", "--no-trunc", "--filter",
                   f"label={self.namespace}.managed"], check=False).stdout.split()  # fmt: skip
        if ids:
            run(["docker", "rm", "-f", *ids], check=False)
        for ref in release.refs.values():
            run(["docker", "image", "rm", "-f", loaded_tag(ref)], check=False)
        self.client.restore()


def measure(work: Path, release: Release, kind: str, client: str, module: Path) -> Install:
    """v1 (full) installed and committed on a fresh device, then v2 measured."""
    device = Device(work / f"device-{release.size_mb}-{kind}", client, module)
    try:
        device.install(release.artifacts["v1"])
        device.commit()
        if device.running_images() != [release.refs["v1"]]:
            raise BenchError(f"v1 does not run after its install: {device.running_images()}")
        os.sync()
        time.sleep(1)  # let the filesystem settle before the level is taken
        note(f"{release.size_mb} MB base: installing v2 from the {kind} artifact")
        sampler = DiskSampler([docker_root(), str(device.client.data)])
        with sampler:
            seconds = device.install(release.artifacts[kind])
        device.commit()
        if device.running_images() != [release.refs["v2"]]:
            raise BenchError(f"v2 does not run after the {kind} install")
        return Install(seconds, sampler.peak_extra)
    finally:
        device.remove(release)


# ------------------------------------------------------------------------------ report


def size_text(size: float) -> str:
    return f"{size / MIB:.1f} MiB" if size >= MIB else f"{size / 1024:.1f} KiB"


def percent(delta: float, full: float) -> str:
    value = 100 * delta / full if full else float("nan")
    return f"{value:.2f} %" if value < 10 else f"{value:.0f} %"


def report(rows: List[Dict[str, float]], client: str, gen_runs: int) -> str:
    lines = [
        f"**Delta against full offline artifacts, v1 -> v2 (only the top layer changed); "
        f"Mender client {client_name(client)}**",
        "",
    ]
    cells: List[List[str]] = []
    for row in rows:
        size = f"{int(row['size_mb'])} MB"
        cells += [
            [size, "artifact size", size_text(row["full_bytes"]), size_text(row["delta_bytes"]),
             percent(row["delta_bytes"], row["full_bytes"])],
            [size, f"generation s (median of {gen_runs})", fmt(row["full_gen"]),
             fmt(row["delta_gen"]), percent(row["delta_gen"], row["full_gen"])],
            [size, "install s (client `install`)", fmt(row["full_install"], 1),
             fmt(row["delta_install"], 1), percent(row["delta_install"], row["full_install"])],
            [size, "peak extra disk during the install", size_text(row["full_disk"]),
             size_text(row["delta_disk"]), percent(row["delta_disk"], row["full_disk"])],
        ]  # fmt: skip
    lines.append(table(["base layer", "measure", "full", "delta", "delta / full"], cells))
    lines.append("")
    verdicts = [
        f"{int(row['size_mb'])} MB: "
        + ("met" if row["delta_bytes"] < GOAL * row["full_bytes"] else "NOT met")
        + f" ({percent(row['delta_bytes'], row['full_bytes'])})"
        for row in rows
    ]
    lines.append(f"goal, delta under {GOAL:.0%} of the full artifact: {'; '.join(verdicts)}")
    return "\n".join(lines)


def sizes_arg(text: str) -> List[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MB numbers like 60,200, got {text!r}") from None
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"expected MB numbers like 60,200, got {text!r}")
    return sizes


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=sizes_arg, default=None, help="base layer sizes in MB (default 60,200)"
    )
    parser.add_argument("--quick", action="store_true", help="a 20 MB base, one generation run")
    parser.add_argument(
        "--gen-runs", type=int, default=None, help="generator runs per artifact, median (default 3)"
    )
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="5.1",
        help="the Mender client: 5.1 `mender-update` (default) or 3.4 `mender`",
    )
    args = parser.parse_args(argv)
    sizes = args.sizes or ([20] if args.quick else [60, 200])
    gen_runs = args.gen_runs or (1 if args.quick else 3)

    def body() -> int:
        require("mender" if args.client == "3.4" else "mender-update", "docker-registry",
                "docker-artifact-gen", "mender-docker")  # fmt: skip
        require_engine()
        rows: List[Dict[str, float]] = []
        with tempfile.TemporaryDirectory(prefix="delta-bench-") as temp:
            work = Path(temp)
            registry = Registry(work / "registry")
            registry.start()
            factory = ImageFactory(registry, work)
            try:
                module = work / "module"
                run(["mender-docker", "build-module", "-o", str(module)])
                for size in sizes:
                    release = build_release(factory, size)
                    generate_all(work, release, gen_runs)
                    done = {kind: measure(work, release, kind, args.client, module)
                            for kind in KINDS}  # fmt: skip
                    rows.append({
                        "size_mb": size,
                        **{f"{k}_bytes": release.artifacts[k].stat().st_size for k in KINDS},
                        **{f"{k}_gen": release.gen_seconds[k] for k in KINDS},
                        **{f"{k}_install": done[k].seconds for k in KINDS},
                        **{f"{k}_disk": done[k].peak_extra for k in KINDS},
                    })  # fmt: skip
                    for path in release.artifacts.values():
                        path.unlink()
            finally:
                note("cleaning up")
                factory.cleanup()
                registry.stop()
        print(report(rows, args.client, gen_runs))
        return 0

    return main_guard(body)


if __name__ == "__main__":
    sys.exit(main())

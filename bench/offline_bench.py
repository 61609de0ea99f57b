"""Offline artifacts: the device's peak extra disk during the install, and generation time.

Ours: `mender-docker gen --embed-images` (layers fetched from the registry as
stored, verified while streaming, no daemon) and our module, which streams the
payload from the client's pipe into `docker load`. Against the approach of
mender's docker-compose update module, in the same run on the same image:

  generation  `docker pull` (the image must be local), `docker save`, the
              image tar packed in a payload tar, `mender-artifact write
              module-image` (gzip, its default);
  device      a module that lets the payload land on disk (the client's
              files/ tree), extracts it, then `docker load -i` the image tar.

Disk: used bytes of the filesystem holding the docker data root (statvfs,
which also covers the client's and module's temp dirs when, as here, they are
on the same filesystem) sampled every 50 ms during `mender install`; peak
extra = highest sample minus the level before. Other processes writing to
that filesystem add noise: run it on a quiet machine.

    python bench/offline_bench.py [--quick] [--size-mb N] [--client 3.4|5.1]

The image is busybox plus one random-data layer of N MB (default 200,
--quick 20), incompressible, so stored and unpacked sizes are both ~N MB.
The installs are driven by the Mender client `--client` names (default 3.4,
`mender`; 5.1 is `mender-update`), and the output says which.
Needs dockerd, docker-registry, the client, mender-artifact (tests/realstack.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # so that `tests.realstack` imports from a plain script
    sys.path.insert(0, str(REPO_ROOT))

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
BASELINE_TYPE = "bench-extract-load"
# The docker-compose module's way, reduced to what costs disk: the payload is
# stored by the client (files/), extracted, and every image tar in it loaded.
BASELINE_MODULE = """#!/usr/bin/env python3
import glob, os, shutil, subprocess, sys, tarfile
state, tree = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "."
if state in ("SupportsRollback", "NeedsArtifactReboot"):
    os.write(1, b"No\\n")  # one write(2): the 5.x client takes a second chunk as a second line
elif state == "ArtifactInstall":
    work = os.path.join(tree, "tmp", "extracted")
    os.makedirs(work, exist_ok=True)
    for payload in glob.glob(os.path.join(tree, "files", "*")):
        with tarfile.open(payload) as archive:
            archive.extractall(work)
    for image in sorted(glob.glob(os.path.join(work, "images", "*"))):
        subprocess.run(["docker", "load", "-i", image], check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(work)
"""


def used_bytes(path: str) -> int:
    stat = os.statvfs(path)
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize


class DiskSampler:
    """Samples the used bytes of `path`'s filesystem every 50 ms in a thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.before = used_bytes(path)
        self.peak = self.before
        self.seconds = 0.0  # how long the measured install took
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, used_bytes(self.path))
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> DiskSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.after = used_bytes(self.path)

    @property
    def peak_extra(self) -> int:
        return self.peak - self.before


def docker_root() -> str:
    return run(["docker", "info", "--format", "{{.DockerRootDir}}"]).stdout.strip()


def timed(argv: Sequence[str], cwd: Optional[Path] = None) -> float:
    start = time.monotonic()
    proc = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"offline_bench: {argv[0]} {argv[1]} failed: {proc.stderr.strip()[-500:]}")
    return time.monotonic() - start


def remove_images(*refs: str) -> None:
    for ref in refs:
        run(["docker", "image", "rm", "-f", ref], check=False)


def generate_ours(work: Path, pinned: str) -> float:
    out = work / "ours.mender"
    return timed(["mender-docker", "gen", "--embed-images", "-n", "ours-v1", "-t", DEVICE_TYPE,
                  "-o", str(out), pinned])  # fmt: skip


def generate_baseline(work: Path, pinned: str) -> Dict[str, float]:
    """docker pull + docker save + payload tar + mender-artifact write module-image."""
    folder = work / "baseline"
    (folder / "images").mkdir(parents=True)
    pull = timed(["docker", "pull", "-q", pinned])
    save = timed(["docker", "save", "-o", str(folder / "images" / "app.tar"), pinned])
    pack = timed(["tar", "-cf", str(folder / "payload.tar"), "-C", str(folder), "images"])
    write = timed(["mender-artifact", "write", "module-image", "-T", BASELINE_TYPE,
                   "-t", DEVICE_TYPE, "-n", "baseline-v1", "-f", str(folder / "payload.tar"),
                   "-o", str(work / "baseline.mender")])  # fmt: skip
    os.unlink(folder / "payload.tar")
    os.unlink(folder / "images" / "app.tar")
    return {"pull": pull, "save+pack+write": save + pack + write}


def install_measured(
    device: MenderDevice, artifact: Path, root: str, after: Callable[[], None]
) -> DiskSampler:
    sampler = DiskSampler(root)
    start = time.monotonic()
    with sampler:
        result = device.install(artifact)
    sampler.seconds = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"offline_bench: install of {artifact.name} failed: "
                         f"{result.stderr.strip()[-800:]}")  # fmt: skip
    after()
    return sampler


def commit(device: MenderDevice) -> None:
    result = device.commit()
    if result.returncode != 0:
        raise SystemExit(f"offline_bench: commit failed: {result.stderr.strip()[-800:]}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 20 MB layer instead of 200 MB")
    parser.add_argument("--size-mb", type=int, default=None, help="random layer size in MB")
    parser.add_argument("--runs", type=int, default=1, help="installs per system (median)")
    parser.add_argument("--client", choices=CLIENTS, default="3.4",
                        help="the Mender client: 3.4 `mender` (default) or 5.1 `mender-update`")
    args = parser.parse_args(argv)
    size_mb = args.size_mb or (20 if args.quick else 200)
    command = "mender" if args.client == "3.4" else "mender-update"
    require(command, "mender-artifact", "docker-registry")
    require_engine()
    root = docker_root()
    with tempfile.TemporaryDirectory(prefix="offline-bench-") as temp:
        work = Path(temp)
        registry = Registry(work / "registry")
        registry.start()
        factory = ImageFactory(registry, work)
        device: Optional[MenderDevice] = None
        pinned = ""
        try:
            print(f"building a {size_mb} MB random-layer image", file=sys.stderr)
            pinned = factory.build(unique("offbench"), random_mb=size_mb)
            remove_images(*factory.tags, pinned)

            gen_ours = generate_ours(work, pinned)
            gen_base = generate_baseline(work, pinned)
            remove_images(pinned)
            # the image as the device holds it: busybox plus the random layer, unpacked
            meta = read_artifact(str(work / "ours.mender")).meta_data or {}
            image_bytes = int(meta["image_sizes"][0])

            module = work / "module"
            run(["mender-docker", "build-module", "-o", str(module)])
            baseline_module = work / "baseline-module"
            baseline_module.write_text(BASELINE_MODULE)
            device = dev = MenderDevice(work / "device", client=args.client)
            dev.use_module(module)
            dev.use_module(baseline_module, type_name=BASELINE_TYPE)
            namespace = unique("offbench.mender")
            conf = work / "mender-docker.conf"
            conf.write_text(f"scope = managed\nlabel_namespace = {namespace}\n"
                            f"data_dir = {work / 'journal'}\nhealth_window = 1\n")  # fmt: skip
            dev.env["MENDER_DOCKER_CONF"] = str(conf)

            def clear_ours() -> None:
                commit(dev)
                ids = run(["docker", "ps", "-aq", "--filter", f"label={namespace}.managed=1"])
                if ids.stdout.split():
                    run(["docker", "rm", "-f", *ids.stdout.split()])
                remove_images(loaded_tag(pinned))

            def clear_baseline() -> None:
                # without rollback support the client commits by itself
                remove_images(pinned)

            ours: List[DiskSampler] = []
            base: List[DiskSampler] = []
            for _ in range(args.runs):
                ours.append(install_measured(dev, work / "ours.mender", root, clear_ours))
                base.append(install_measured(dev, work / "baseline.mender", root, clear_baseline))
            ours_peak = statistics.median(s.peak_extra for s in ours)
            base_peak = statistics.median(s.peak_extra for s in base)
            ours_s = statistics.median(s.seconds for s in ours)
            base_s = statistics.median(s.seconds for s in base)
        finally:
            if device is not None:
                device.restore()
            if pinned:
                remove_images(pinned, loaded_tag(pinned))
            factory.cleanup()
            registry.stop()

    mib = 2**20
    gen_base_total = gen_base["pull"] + gen_base["save+pack+write"]
    print(f"## Offline artifacts: {size_mb} MB random-data image "
          f"({image_bytes / mib:.0f} MiB unpacked); Mender client {args.client} ({command})\n")
    print("| measure | ours | extract + docker load | ratio (ours / theirs) |")
    print("|---|---|---|---|")
    print(f"| device peak extra disk | {ours_peak / mib:.0f} MiB ({ours_peak / image_bytes:.2f}x "
          f"image) | {base_peak / mib:.0f} MiB ({base_peak / image_bytes:.2f}x image) | "
          f"{ours_peak / base_peak:.2f} |")  # fmt: skip
    print(f"| `{command} install` (ours also starts the container, 1 s health window) | "
          f"{ours_s:.1f} s | {base_s:.1f} s | {ours_s / base_s:.2f} |")
    print(f"| generation (registry -> artifact) | {gen_ours:.1f} s | {gen_base_total:.1f} s "
          f"(pull {gen_base['pull']:.1f} + save/pack/write {gen_base['save+pack+write']:.1f}) | "
          f"{gen_ours / gen_base_total:.2f} |")  # fmt: skip
    print(f"| generation, image already local | {gen_ours:.1f} s | "
          f"{gen_base['save+pack+write']:.1f} s | {gen_ours / gen_base['save+pack+write']:.2f} |")
    print(f"\npeak extra disk target: <= 1.1x image: "
          f"{'met' if ours_peak <= 1.1 * image_bytes else 'NOT met'} "
          f"({ours_peak / image_bytes:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

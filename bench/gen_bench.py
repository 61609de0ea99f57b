"""How long generating an artifact takes: the original generator vs ours.

The original `docker-artifact-gen` pulls every image through the daemon just to
read its digest, then runs mender-artifact; ours asks the registry for the
manifest only. Same registry, same images, same run:

  1. a real docker-registry on a free loopback port (temp storage);
  2. images with a random-data layer (never compressible, never cached) are
     built, pushed, and removed from the local daemon;
  3. the original runs N times per image, the image removed from the daemon
     before each run (as on a fresh workstation or CI runner);
  4. ours runs N times per image: its time does not grow with image size.

    python bench/gen_bench.py [--quick] [--runs N] [--bandwidth MB/S --latency MS]

By default the registry is on loopback, the original's best case (pulling is
as fast as the disk); --bandwidth/--latency put a throttling relay in front of
it, like a registry across a network.

Times are wall clock of the whole command (including Python's start-up for
ours), median of the runs. Needs dockerd, docker-registry, jq, mender-artifact.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # so that `tests.realstack` imports from a plain script
    sys.path.insert(0, str(REPO_ROOT))

from bench.harness import (  # noqa: E402
    ORIGINAL_GEN,
    BenchError,
    fmt,
    main_guard,
    median,
    note,
    ratio,
    table,
)
from tests.realstack import ImageFactory, Registry, require, require_engine, run, unique  # noqa: E402
from tests.tcprelay import TcpRelay  # noqa: E402

FULL_SIZES = (5, 60, 200)  # MB; the middle one is compared with the original
QUICK_SIZES = (1, 5, 20)


def timed(argv: Sequence[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        raise BenchError(f"{argv[0]} {argv[1]} failed: {tail}")
    return elapsed


def drop_local(ref: str) -> None:
    """Remove the image from the daemon so the next original run pulls it in full."""
    run(["docker", "image", "rm", "-f", ref], check=False)
    if run(["docker", "image", "inspect", ref], check=False).returncode == 0:
        raise BenchError(f"could not remove {ref} from the local daemon")


def original_args(ref: str, out: Path) -> List[str]:
    return ["bash", str(ORIGINAL_GEN), "-n", "bench", "-t", "bench-device", "-o", str(out), ref]


def our_args(ref: str, out: Path) -> List[str]:
    return [
        sys.executable,
        "-m",
        "mender_docker.cli.gen",
        "-n",
        "bench",
        "-t",
        "bench-device",
        "-o",
        str(out),
        ref,
    ]


def bench(
    sizes: Sequence[int],
    runs: int,
    workdir: Path,
    all_sizes: bool = True,
    bandwidth: float = 0.0,
    latency: float = 0.0,
) -> str:
    require_engine()
    require("docker-registry", "jq", "mender-artifact", "bash")
    if not ORIGINAL_GEN.is_file():
        raise BenchError(f"original generator missing: {ORIGINAL_GEN}")
    registry = Registry(workdir / "registry")
    registry.start()
    factory = ImageFactory(registry, workdir)
    refs: Dict[int, str] = {}
    link = (
        TcpRelay(registry.port, rate=bandwidth * 1e6, latency=latency / 1000)
        if bandwidth or latency
        else None
    )
    pushed: List[str] = []
    try:
        for size in sizes:
            note(f"building and pushing a {size} MB image")
            repo = unique(f"genbench{size}")
            factory.build(repo, "v1", random_mb=size)
            pushed.append(f"{registry.host}/{repo}:v1")
            drop_local(pushed[-1])
            # Both generators reach the registry through the slow link, if any.
            refs[size] = f"{link.host if link else registry.host}/{repo}:v1"
        compared = sizes[len(sizes) // 2]
        original_sizes = sizes if all_sizes else (compared,)
        theirs: Dict[int, List[float]] = {}
        for size in original_sizes:
            theirs[size] = []
            for index in range(runs):
                drop_local(refs[size])
                note(f"original generator, {size} MB, run {index + 1}/{runs}")
                cwd = Path(tempfile.mkdtemp(dir=workdir))  # it writes meta-data.json here
                theirs[size].append(timed(original_args(refs[size], cwd / "o.mender"), cwd))
            drop_local(refs[size])
        ours: Dict[int, List[float]] = {}
        for size in sizes:
            ours[size] = []
            for index in range(runs):
                note(f"our generator, {size} MB, run {index + 1}/{runs}")
                ours[size].append(timed(our_args(refs[size], workdir / "ours.mender"), workdir))
            if run(["docker", "image", "inspect", refs[size]], check=False).returncode == 0:
                raise BenchError("our generator must not have pulled the image")
        rows = []
        for size in sizes:
            original_s: Optional[float] = median(theirs[size]) if size in theirs else None
            ours_s = median(ours[size])
            rows.append(
                [
                    f"{size} MB",
                    fmt(original_s),
                    fmt(ours_s),
                    f"{min(ours[size]):.2f}-{max(ours[size]):.2f}",
                    ratio(original_s, ours_s),
                ]
            )
        network = f"link {bandwidth:g} MB/s, {latency:g} ms per request" if link else "loopback"
        header = (
            f"docker-artifact-gen, one image, median of {runs} runs, registry over {network}"
            f" (image not in the local daemon before each original run)"
        )
        lines = [
            header,
            "",
            table(["image", "original s", "ours s", "ours range s", "speed-up"], rows),
            "",
            f"ours {sizes[-1]} MB / ours {sizes[0]} MB = "
            f"{median(ours[sizes[-1]]) / median(ours[sizes[0]]):.2f} (flat: no layer is fetched)",
        ]
        return "\n".join(lines)
    finally:
        for ref in list(refs.values()) + pushed:
            run(["docker", "image", "rm", "-f", ref], check=False)
        factory.cleanup()
        if link is not None:
            link.kill()
        registry.stop()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"small images {QUICK_SIZES} MB instead of {FULL_SIZES} MB",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument(
        "--original-middle-only",
        action="store_true",
        help="time the original for the middle size only (faster)",
    )
    parser.add_argument(
        "--bandwidth",
        type=float,
        default=0.0,
        metavar="MB/S",
        help="put the registry behind a link of this bandwidth (default: plain loopback)",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="MS", help="delay per request on that link"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    sizes = QUICK_SIZES if args.quick else FULL_SIZES

    def body() -> int:
        workdir = Path(tempfile.mkdtemp(prefix="gen-bench-"))
        try:
            print(
                bench(
                    sizes,
                    args.runs,
                    workdir,
                    not args.original_middle_only,
                    args.bandwidth,
                    args.latency,
                )
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return 0

    return main_guard(body)


if __name__ == "__main__":
    os.environ.setdefault("DOCKER_BUILDKIT", "0")
    sys.exit(main())

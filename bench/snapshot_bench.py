"""The outage a volume snapshot adds to an update, and what a restore takes.

A snapshot is copied between the old container's stop and the new one's start
(module/snapshots.py): the service is down for that long on top of the update's
own stop + start. This measures, for volumes of 10 MB, 100 MB and 1 GB (ten
files of random data each, evicted from the page cache first, as on a device
that has been running), the module's own steps: `snapshots.copy_tree` into
`<volume>.partial`, `os.sync()`, rename (what `take` does per volume), and the
restore (`clear_dir`, `copy_tree`, `os.sync()`). The reference, in the same run:
the outage of an update without a snapshot, a real `docker stop` + `docker
start` of a small container (median of 3). Ratio: outage with / without.

Filesystems: the work directory's (a plain copy) and, where this runs as root
with mkfs.xfs (xfsprogs) and a free loop device, an XFS loop filesystem made
with reflink=1: `cp --reflink=auto` shares extents there instead of copying.

    python3 bench/snapshot_bench.py [--quick]  (--quick: 10 MB and 100 MB only)
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
from typing import Dict, Iterator, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from bench.harness import BenchError, fmt, main_guard, median, note, table  # noqa: E402
from mender_docker.module.snapshots import clear_dir, copy_tree  # noqa: E402
from tests.realstack import require_engine, run, unique  # noqa: E402

MB = 1 << 20
FILES = 10


def make_volume(path: Path, size: int) -> None:
    path.mkdir(parents=True)
    chunk = os.urandom(MB)
    for index in range(FILES):
        with open(path / f"part-{index}", "wb") as out:
            for _ in range(max(1, size // FILES // MB)):
                out.write(chunk)
    os.sync()
    evict(path)


def evict(path: Path) -> None:
    """Drop the files' pages from the cache (this process's files only)."""
    for item in path.rglob("*"):
        if item.is_file():
            fd = os.open(item, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def take(volume: Path, snapshots: Path) -> float:
    """What module/snapshots.take does for one volume; seconds."""
    partial, final = snapshots / "vol.partial", snapshots / "vol"
    started = time.monotonic()
    copy_tree(str(volume), str(partial))
    os.sync()
    os.rename(partial, final)
    return time.monotonic() - started


def restore(volume: Path, snapshots: Path) -> float:
    """What module/snapshots.restore does for one volume; seconds."""
    evict(snapshots / "vol")
    started = time.monotonic()
    clear_dir(str(volume))
    copy_tree(str(snapshots / "vol"), str(volume))
    os.sync()
    return time.monotonic() - started


def update_outage() -> float:
    """The reference: a real stop + start (seconds, median of 3)."""
    name = unique("bench-snap-ref")
    run(["docker", "run", "-d", "--name", name, "--stop-timeout", "5", "busybox-bench-ref",
         "sh", "-c", 'trap "exit 0" TERM; sleep 3600 & wait'])  # fmt: skip
    try:
        times = []
        for _ in range(3):
            started = time.monotonic()
            run(["docker", "stop", name])
            run(["docker", "start", name])
            times.append(time.monotonic() - started)
        return median(times)
    finally:
        run(["docker", "rm", "-f", name], check=False)


def reference_image(work: Path) -> None:
    context = work / "ref-image"
    (context / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", context / "rootfs" / "bin" / "busybox")
    for applet in ("sh", "sleep"):
        (context / "rootfs" / "bin" / applet).symlink_to("busybox")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY rootfs/ /\n")
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    run(["docker", "build", "-q", "-t", "busybox-bench-ref", str(context)], env=env)


def xfs_loop(work: Path, size_gb: int) -> Iterator[Optional[Path]]:
    """An XFS filesystem with reflinks on a loop device, or None where none can be made."""
    if os.geteuid() != 0 or shutil.which("mkfs.xfs") is None:
        note("no XFS loop filesystem (needs root and mkfs.xfs): reflink rows left out")
        yield None
        return
    image, mount = work / "xfs.img", work / "xfs"
    with open(image, "wb") as handle:
        handle.truncate(size_gb << 30)
    run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)])
    mount.mkdir()
    if subprocess.run(["mount", "-o", "loop", str(image), str(mount)]).returncode != 0:
        note("cannot mount a loop filesystem here: reflink rows left out")
        yield None
        return
    try:
        yield mount
    finally:
        run(["umount", str(mount)], check=False)


def measure(root: Path, size: int) -> Tuple[float, float]:
    volume, snapshots = root / "volume", root / "snapshots"
    make_volume(volume, size)
    snapshots.mkdir()
    try:
        return take(volume, snapshots), restore(volume, snapshots)
    finally:
        shutil.rmtree(volume, ignore_errors=True)
        shutil.rmtree(snapshots, ignore_errors=True)


def body() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 MB and 100 MB only")
    args = parser.parse_args()
    sizes = [10 * MB, 100 * MB] + ([] if args.quick else [1024 * MB])
    if shutil.which("cp") is None:
        raise BenchError("no cp on PATH")
    require_engine()
    work = Path(tempfile.mkdtemp(prefix="snapshot-bench."))
    results: Dict[str, List[Tuple[int, float, float]]] = {}
    try:
        reference_image(work)
        note("reference: stop + start of a container")
        outage = update_outage()
        plain = work / "plain"
        plain.mkdir()
        results["plain copy (" + fs_type(plain) + ")"] = [
            (size, *measure(plain, size)) for size in sizes
        ]
        for mount in xfs_loop(work, 3 if not args.quick else 1):
            if mount is not None:
                results["reflink (XFS loop)"] = [(size, *measure(mount, size)) for size in sizes]
    finally:
        run(["docker", "image", "rm", "-f", "busybox-bench-ref"], check=False)
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for kind, points in results.items():
        for size, taken, restored in points:
            rows.append([
                kind, f"{size // MB} MB", fmt(outage, 2), fmt(outage + taken, 2),
                fmt(taken, 2), f"{(outage + taken) / outage:.1f}x", fmt(restored, 2),
            ])  # fmt: skip
    print("### Outage a volume snapshot adds to an update (page cache evicted)\n")
    print(table(["copy", "volume", "outage without (s)", "outage with (s)", "added (s)",
                 "with / without", "restore (s)"], rows))  # fmt: skip
    return 0


def fs_type(path: Path) -> str:
    out = run(["stat", "-f", "-c", "%T", str(path)]).stdout.strip()
    return out or "unknown"


if __name__ == "__main__":
    sys.exit(main_guard(body))

"""Benchmark: our artifact library against the real mender-artifact 3.9.

    python bench/artifact_bench.py [--size-mb 1024] [--compression gzip] [--repeat 3]

Creates one payload file under a temp dir in /tmp (per MiB: 400 KiB random, 624 KiB
text-like, see make_payload; removed at the end), then:
write it into an artifact with ours and with `mender-artifact write module-image -f`,
same compression (gzip: both at zlib/flate level 6, Go's DefaultCompression),
and read+verify each artifact with ours and with `mender-artifact validate`/`read`.
Every step runs in its own child process. Peak RSS is ru_maxrss of that process as
reported by GNU time (/usr/bin/time -f %M, i.e. wait4's rusage): Linux copies a
parent's peak RSS into a forked child's ru_maxrss, so measuring from this Python
process would report at least its own size; GNU time's few MiB are the floor instead.
Each step runs --repeat times per side, ours and the reference alternating, each run
after a sync (else the first reader pays for the write-back of the artifacts just
written); the table shows median seconds and the highest peak RSS. The machine is
shared: single runs vary by 30% and more, so compare medians, and run it twice.
Prints a table; ratio = reference / ours (above 1: we are faster).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Tuple

WRITE = """
import sys
from mender_docker.artifact import ArtifactSpec, PayloadFile, write_artifact
spec = ArtifactSpec("bench", ["bench-device"], "docker",
                    provides={"rootfs-image.docker.version": "bench"},
                    clears_provides=["rootfs-image.docker.*"],
                    meta_data={"containers": [], "run_args": ""})
write_artifact(sys.argv[2], spec, files=[PayloadFile.from_path(sys.argv[1])],
               compression=sys.argv[3])
"""
READ = """
import sys
from mender_docker.artifact import read_artifact
info = read_artifact(sys.argv[1])
assert info.files[0].size == int(sys.argv[2]), info.files
"""


GNU_TIME = "/usr/bin/time"
Measured = Tuple[float, float]


def _summary(runs: List[Measured]) -> Measured:
    """Median seconds (the machine is shared and noisy), highest peak RSS."""
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def run_measured(argv: List[str], scratch: str) -> Tuple[float, float]:
    """(seconds, peak RSS in MiB) of one child process; fails loudly if it fails."""
    report = os.path.join(scratch, "rss")
    start = time.perf_counter()
    proc = subprocess.run([GNU_TIME, "-f", "%M", "-o", report, *argv],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace")
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{err[-2000:]}")
    with open(report) as handle:
        peak_kb = int(handle.read().split()[-1])
    return elapsed, peak_kb / 1024


def make_payload(path: str, size_mb: int) -> None:
    """Per MiB: 400 KiB random (already-compressed layers) then 624 KiB of text-like
    data; the boundaries do not fall on our 256 KiB gzip blocks."""
    words = [os.urandom(3).hex().encode() for _ in range(4096)]
    text = b" ".join(words[(i * 7919) % 4096] for i in range(200000))
    with open(path, "wb") as out:
        for i in range(size_mb):
            out.write(os.urandom(400 << 10))
            start = (i * 4099) % (len(text) - (624 << 10))
            out.write(text[start:start + (624 << 10)])


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="payload size in MiB")
    parser.add_argument("--compression", default="gzip", choices=["none", "gzip", "lzma"])
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per step and side, alternating ours/ref; medians shown")
    args = parser.parse_args(argv)
    tool = shutil.which("mender-artifact")
    if tool is None or not os.path.exists(GNU_TIME):
        print("needs mender-artifact and GNU time (Debian packages mender-artifact, time)",
              file=sys.stderr)
        return 1
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="artifact-bench-", dir="/tmp") as tmp:
        payload = os.path.join(tmp, "images.tar")
        make_payload(payload, args.size_mb)
        size = os.path.getsize(payload)
        ours, theirs = os.path.join(tmp, "ours.mender"), os.path.join(tmp, "theirs.mender")
        rows = []

        def pair(ours_argv: List[str], ref_argv: List[str]) -> Tuple[Measured, Measured]:
            """Each side --repeat times, alternating, after a sync (so no step pays for
            the write-back of the files another step wrote): median seconds, peak RSS."""
            runs: Tuple[List[Measured], List[Measured]] = ([], [])
            for _ in range(args.repeat):
                for side, argv in zip(runs, (ours_argv, ref_argv)):
                    os.sync()
                    side.append(run_measured(argv, tmp))
            return _summary(runs[0]), _summary(runs[1])

        write_ref = [tool, "write", "module-image", "-T", "docker", "-n", "bench",
                     "-t", "bench-device", "-o", theirs, "-f", payload,
                     "--compression", args.compression]
        rows.append(("write", *pair([py, "-c", WRITE, payload, ours, args.compression],
                                    write_ref)))
        rows.append(("validate our artifact", *pair([py, "-c", READ, ours, str(size)],
                                                    [tool, "validate", ours])))
        ours_read_ref = [py, "-c", READ, theirs, str(size)]
        rows.append(("validate ref artifact", *pair(ours_read_ref, [tool, "validate", theirs])))
        rows.append(("read (ref: `read`)", *pair(ours_read_ref, [tool, "read", theirs])))
        sizes = (os.path.getsize(ours), os.path.getsize(theirs))
    from mender_docker.artifact.compression import INFLATER

    levels = {
        "gzip": " (ours: zlib level 6, pigz-style blocks; ref: klauspost/pgzip, level 6)",
        "lzma": " (ours: xz preset 6; ref: ulikunitz/xz, 64 MiB dictionary)",
    }
    print(f"payload {args.size_mb} MiB, compression {args.compression}"
          f"{levels.get(args.compression, '')}")
    if args.compression == "gzip":
        print(f"ours reads gzip with {INFLATER} (isal: python-isal, ISA-L; zlib: fallback)")
    print(f"median of {args.repeat} runs per cell, ours and ref alternating, sync before each")
    print(f"artifact size: ours {sizes[0] / 2**20:.1f} MiB, ref {sizes[1] / 2**20:.1f} MiB")
    print(f"| {'step':<22} | {'ours s':>7} | {'ref s':>7} | {'ref/ours':>8} "
          f"| {'ours peak RSS MiB':>17} | {'ref peak RSS MiB':>16} |")
    print(f"|{'-' * 24}|{'-' * 9}|{'-' * 9}|{'-' * 10}|{'-' * 19}|{'-' * 18}|")
    for name, (os_, orss), (ts, trss) in rows:
        print(f"| {name:<22} | {os_:7.2f} | {ts:7.2f} | {ts / os_:8.2f} "
              f"| {orss:17.1f} | {trss:16.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

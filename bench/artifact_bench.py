"""Benchmark: our artifact library against the real mender-artifact 3.9 and 4.0.

    python bench/artifact_bench.py [--size-mb 1024] [--compression gzip] [--repeat 3]

References: `mender-artifact` (3.9, Debian's) and `mender-artifact-4` (4.0, installed by
scripts/setup); a missing one is left out with a note. Creates one payload file under a
temp dir in /tmp (per MiB: 400 KiB random, 624 KiB text-like, see make_payload; removed
at the end), then:
write it into an artifact with ours and with each reference's
`write module-image -f`, same compression (gzip: all at zlib/flate level 6, Go's
DefaultCompression; ours deflates with zlib-ng where installed), and read+verify each
artifact with ours and with each reference's `validate`/`read`: our artifact by every
reference, each reference's artifact by ours and by that reference.
Every step runs in its own child process. Peak RSS is ru_maxrss of that process as
reported by GNU time (/usr/bin/time -f %M, i.e. wait4's rusage): Linux copies a
parent's peak RSS into a forked child's ru_maxrss, so measuring from this Python
process would report at least its own size; GNU time's few MiB are the floor instead.
Each step runs --repeat times per side, all sides of a step alternating, each run
after a sync (else the first reader pays for the write-back of the artifacts just
written); the table shows median seconds and the highest peak RSS. The machine is
shared: single runs vary by 30% and more, so compare medians, and run it twice.
Prints a table, one row per step and reference; ratio = reference / ours (above 1: we
are faster); and the artifacts' sizes.
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


REFERENCES = (("3.9", "mender-artifact"), ("4.0", "mender-artifact-4"))


def references() -> List[Tuple[str, str]]:
    """(label, path) of each reference tool found; the label is its version, 3.9 or 4.0."""
    found = []
    for label, name in REFERENCES:
        path = shutil.which(name)
        if path is None:
            print(f"note: {name} ({label}) not found, left out", file=sys.stderr)
            continue
        found.append((label, path))
    return found


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="payload size in MiB")
    parser.add_argument("--compression", default="gzip", choices=["none", "gzip", "lzma"])
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per step and side, all sides alternating; medians shown")
    args = parser.parse_args(argv)
    refs = references()
    if not refs or not os.path.exists(GNU_TIME):
        print("needs mender-artifact (3.9 and/or mender-artifact-4) and GNU time "
              "(Debian packages mender-artifact, time)", file=sys.stderr)
        return 1
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="artifact-bench-", dir="/tmp") as tmp:
        payload = os.path.join(tmp, "images.tar")
        make_payload(payload, args.size_mb)
        size = os.path.getsize(payload)
        ours = os.path.join(tmp, "ours.mender")
        theirs = {label: os.path.join(tmp, f"ref-{label}.mender") for label, _ in refs}
        # (step, reference label, ours (s, RSS), reference (s, RSS))
        rows: List[Tuple[str, str, Measured, Measured]] = []

        def measure(sides: List[List[str]]) -> List[Measured]:
            """Each side --repeat times, all alternating, after a sync (so no run pays for
            the write-back of the files another one wrote): median seconds, peak RSS."""
            runs: List[List[Measured]] = [[] for _ in sides]
            for _ in range(args.repeat):
                for side, argv in zip(runs, sides):
                    os.sync()
                    side.append(run_measured(argv, tmp))
            return [_summary(side) for side in runs]

        def read_ours(path: str) -> List[str]:
            return [py, "-c", READ, path, str(size)]

        write = measure([[py, "-c", WRITE, payload, ours, args.compression]] + [
            [tool, "write", "module-image", "-T", "docker", "-n", "bench", "-t", "bench-device",
             "-o", theirs[label], "-f", payload, "--compression", args.compression]
            for label, tool in refs])
        rows += [("write", label, write[0], ref) for (label, _), ref in zip(refs, write[1:])]
        validate = measure([read_ours(ours)] + [[tool, "validate", ours] for _, tool in refs])
        rows += [("validate our artifact", label, validate[0], ref)
                 for (label, _), ref in zip(refs, validate[1:])]
        for label, tool in refs:
            ours_read, ref_validate, ref_read = measure(
                [read_ours(theirs[label]), [tool, "validate", theirs[label]],
                 [tool, "read", theirs[label]]])
            rows.append(("validate ref artifact", label, ours_read, ref_validate))
            rows.append(("read ref artifact", label, ours_read, ref_read))
        sizes = [("ours", os.path.getsize(ours))] + [
            (label, os.path.getsize(theirs[label])) for label, _ in refs]
    from mender_docker.artifact.compression import DEFLATER, INFLATER

    levels = {
        "gzip": f" (ours: {DEFLATER} level 6, pigz-style blocks, incompressible stretches "
                "stored; refs: pgzip or compress/gzip, level 6)",
        "lzma": " (ours: xz preset 6; refs: ulikunitz/xz, 64 MiB dictionary)",
    }
    print(f"payload {args.size_mb} MiB, compression {args.compression}"
          f"{levels.get(args.compression, '')}")
    if args.compression == "gzip":
        print(f"ours reads gzip with {INFLATER} (isal: python-isal, ISA-L; zlib: fallback)")
    print(f"median of {args.repeat} runs per cell, all sides of a step alternating, "
          "sync before each")
    print("artifact size: " + ", ".join(
        f"{'ours' if who == 'ours' else 'ref ' + who} {n / 2**20:.1f} MiB"
        + ("" if who == "ours" else f" ({n / sizes[0][1]:.2f}x ours)") for who, n in sizes))
    print(f"| {'step':<22} | {'ref':>3} | {'ours s':>7} | {'ref s':>7} | {'ref/ours':>8} "
          f"| {'ours peak RSS MiB':>17} | {'ref peak RSS MiB':>16} |")
    print(f"|{'-' * 24}|{'-' * 5}|{'-' * 9}|{'-' * 9}|{'-' * 10}|{'-' * 19}|{'-' * 18}|")
    for name, label, (os_, orss), (ts, trss) in rows:
        print(f"| {name:<22} | {label:>3} | {os_:7.2f} | {ts:7.2f} | {ts / os_:8.2f} "
              f"| {orss:17.1f} | {trss:16.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: our artifact library against the real mender-artifact 3.9 and 4.0.

    python bench/artifact_bench.py [--size-mb 512] [--data random,binary]
                                   [--compression gzip,zstd,none] [--repeat 3]

References: `mender-artifact` (3.9, Debian's) and `mender-artifact-4` (4.0, installed by
scripts/setup); a missing one is left out with a note. zstd is compared with 4.0 only
(3.9 has no zstd), both at `--compression zstd_fast` (ours: zstd level 3, 4.0: its Go
encoder's default speed). gzip: ours zlib-ng level 2 on every core (see compression.py),
3.9 and 4.0 their own defaults. Data, one payload file of --size-mb MiB per kind, made
under a temp dir in /tmp and removed at the end:
- random: os.urandom (already-compressed layers, media: nothing to gain);
- binary: the first --size-mb MiB of `tar --sort=name` of /usr/bin and
  /usr/lib/x86_64-linux-gnu: this machine's own executables and libraries, real
  compressible data (about 2.6:1 under gzip);
- mixed (not by default): per MiB 400 KiB random then 624 KiB of text-like words.
For each data kind and compression, each side writes the payload into an artifact with
the same command line (ours: `mender-docker write module-image`, theirs: `write
module-image`), then reads and verifies artifacts: ours is read by ours and validated
by each reference, each reference's by ours and by that reference.
Every step runs in its own child process. Peak RSS is ru_maxrss of that process as
reported by GNU time (/usr/bin/time -f %M): measuring from this Python process would
report at least its own size. Each step runs --repeat times per side, all sides of a
step alternating, each run after a sync; the tables show median seconds and the highest
peak RSS, and median CPU seconds (user + sys, from GNU time): on a shared machine wall
times vary by 30% and more, CPU seconds much less. ratio = reference / ours (above 1:
we are faster, or spend less CPU).
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
from typing import Dict, List, Optional, Tuple

READ = """
import sys
from mender_docker.artifact import read_artifact
info = read_artifact(sys.argv[1])
assert info.files[0].size == int(sys.argv[2]), info.files
"""

GNU_TIME = "/usr/bin/time"
BINARY_DIRS = ("/usr/bin", "/usr/lib/x86_64-linux-gnu")
DATA_KINDS = ("random", "binary", "mixed")
COMPRESSIONS = ("gzip", "zstd", "none", "lzma")
REFERENCES = (("3.9", "mender-artifact"), ("4.0", "mender-artifact-4"))
Measured = Tuple[float, float, float]  # wall seconds, CPU seconds (user + sys), peak RSS MiB
# (data, compression, step, reference label, ours, reference)
Row = Tuple[str, str, str, str, Measured, Measured]


def _summary(runs: List[Measured]) -> Measured:
    """Median seconds and CPU seconds (the machine is shared and noisy), highest peak RSS."""
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            max(r[2] for r in runs))


def run_measured(argv: List[str], scratch: str) -> Measured:
    """(seconds, CPU seconds, peak RSS in MiB) of one child process; fails loudly if it
    fails."""
    report = os.path.join(scratch, "rss")
    start = time.perf_counter()
    proc = subprocess.run([GNU_TIME, "-f", "%U %S %M", "-o", report, *argv],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace")
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{err[-2000:]}")
    with open(report) as handle:
        user, system, peak_kb = handle.read().split()[-3:]
    return elapsed, float(user) + float(system), int(peak_kb) / 1024


def make_payload(kind: str, path: str, size_mb: int) -> int:
    """Write `size_mb` MiB of the kind of data (see the module doc); its size in bytes."""
    size = size_mb << 20
    with open(path, "wb") as out:
        if kind == "random":
            for _ in range(size_mb):
                out.write(os.urandom(1 << 20))
        elif kind == "binary":
            dirs = [d for d in BINARY_DIRS if os.path.isdir(d)]
            proc = subprocess.Popen(["tar", "--sort=name", "-cf", "-", *dirs],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert proc.stdout is not None
            left = size
            while left:
                chunk = proc.stdout.read(min(left, 1 << 20))
                if not chunk:
                    break
                out.write(chunk)
                left -= len(chunk)
            proc.kill()
            proc.wait()
        else:
            words = [os.urandom(3).hex().encode() for _ in range(4096)]
            text = b" ".join(words[(i * 7919) % 4096] for i in range(200000))
            for i in range(size_mb):
                out.write(os.urandom(400 << 10))
                start = (i * 4099) % (len(text) - (624 << 10))
                out.write(text[start:start + (624 << 10)])
    return os.path.getsize(path)


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


def _names(text: str, known: Tuple[str, ...]) -> List[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(known)}")
    return names


class Bench:
    """One payload, every compression: the steps of the module doc, as rows."""

    def __init__(self, tmp: str, refs: List[Tuple[str, str]], repeat: int) -> None:
        self.tmp = tmp
        self.refs = refs
        self.repeat = repeat
        self.py = sys.executable

    def measure(self, sides: List[List[str]]) -> List[Measured]:
        """Each side --repeat times, all alternating, after a sync (so no run pays for
        the write-back of the files another one wrote): median seconds, peak RSS."""
        runs: List[List[Measured]] = [[] for _ in sides]
        for _ in range(self.repeat):
            for side, argv in zip(runs, sides):
                os.sync()
                side.append(run_measured(argv, self.tmp))
        return [_summary(side) for side in runs]

    def run(self, data: str, compression: str, payload: str, size: int
            ) -> Tuple[List[Row], Dict[str, int]]:
        refs = [(label, tool) for label, tool in self.refs
                if compression != "zstd" or label != "3.9"]  # 3.9 has no zstd
        name = "zstd_fast" if compression == "zstd" else compression
        ours = os.path.join(self.tmp, "ours.mender")
        theirs = {label: os.path.join(self.tmp, f"ref-{label}.mender") for label, _ in refs}
        args = ["module-image", "-T", "docker", "-n", "bench", "-t", "bench-device", "-f",
                payload, "--compression", name, "-o"]
        read_ours = [self.py, "-c", READ]
        rows: List[Row] = []
        write = self.measure(
            [[self.py, "-m", "mender_docker.cli.main", "write", *args, ours]]
            + [[tool, "write", *args, theirs[label]] for label, tool in refs])
        rows += [(data, compression, "write", label, write[0], ref)
                 for (label, _), ref in zip(refs, write[1:])]
        validate = self.measure([read_ours + [ours, str(size)]]
                                + [[tool, "validate", ours] for _, tool in refs])
        rows += [(data, compression, "verify our artifact", label, validate[0], ref)
                 for (label, _), ref in zip(refs, validate[1:])]
        for label, tool in refs:
            mine, ref = self.measure([read_ours + [theirs[label], str(size)],
                                      [tool, "validate", theirs[label]]])
            rows.append((data, compression, "verify ref's artifact", label, mine, ref))
        sizes = {"ours": os.path.getsize(ours)}
        sizes.update({label: os.path.getsize(theirs[label]) for label, _ in refs})
        return rows, sizes


def print_table(rows: List[Row]) -> None:
    """Wall seconds (what a user waits) and CPU seconds (what the machine spends; less
    noisy than wall time on a shared machine), both as reference / ours."""
    print(f"| {'data':<6} | {'compr.':<6} | {'step':<21} | {'ref':>3} | {'ours s':>6} "
          f"| {'ref s':>6} | {'ref/ours':>8} | {'CPU s ours / ref':>16} | {'ref/ours':>8} "
          f"| {'RSS MiB ours / ref':>18} |")
    print(f"|{'-' * 8}|{'-' * 8}|{'-' * 23}|{'-' * 5}|{'-' * 8}|{'-' * 8}|{'-' * 10}"
          f"|{'-' * 18}|{'-' * 10}|{'-' * 20}|")
    for data, compression, step, label, (os_, ocpu, orss), (ts, tcpu, trss) in rows:
        print(f"| {data:<6} | {compression:<6} | {step:<21} | {label:>3} | {os_:6.2f} "
              f"| {ts:6.2f} | {ts / os_:8.2f} | {f'{ocpu:.2f} / {tcpu:.2f}':>16} "
              f"| {tcpu / max(ocpu, 0.01):8.2f} | {f'{orss:.0f} / {trss:.0f}':>18} |")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=512, help="payload size in MiB")
    parser.add_argument("--data", type=lambda t: _names(t, DATA_KINDS),
                        default=["random", "binary"], help="random,binary[,mixed]")
    parser.add_argument("--compression", type=lambda t: _names(t, COMPRESSIONS),
                        default=["gzip", "zstd", "none"], help="gzip,zstd,none[,lzma]")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per step and side, all sides alternating; medians shown")
    args = parser.parse_args(argv)
    refs = references()
    if not refs or not os.path.exists(GNU_TIME):
        print("needs mender-artifact (3.9 and/or mender-artifact-4) and GNU time "
              "(Debian packages mender-artifact, time)", file=sys.stderr)
        return 1
    from mender_docker.artifact.compression import DEFLATER, GZIP_LEVEL, INFLATER, cpu_count

    print(f"payload {args.size_mb} MiB per data kind; {cpu_count()} cores; median of "
          f"{args.repeat} runs per cell, all sides of a step alternating, sync before each")
    print(f"ours: gzip {DEFLATER} level {GZIP_LEVEL} (read: {INFLATER}), zstd level 3; "
          "both on every core")
    rows: List[Row] = []
    with tempfile.TemporaryDirectory(prefix="artifact-bench-", dir="/tmp") as tmp:
        bench = Bench(tmp, refs, args.repeat)
        payload = os.path.join(tmp, "payload.bin")
        for data in args.data:
            size = make_payload(data, payload, args.size_mb)
            if size < args.size_mb << 20:
                print(f"note: {data} data is only {size / 2**20:.0f} MiB")
            for compression in args.compression:
                found, sizes = bench.run(data, compression, payload, size)
                rows += found
                print(f"{data}, {compression}: artifact MiB: ours "
                      f"{sizes['ours'] / 2**20:.1f}, " + ", ".join(
                          f"{label} {n / 2**20:.1f} ({n / sizes['ours']:.3f}x ours)"
                          for label, n in sizes.items() if label != "ours"), flush=True)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

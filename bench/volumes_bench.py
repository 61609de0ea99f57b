"""Volumes over many updates of a `VOLUME` image: does the device pile them up?

Two ways of updating one service whose image declares `VOLUME /data`, run on
the same dockerd, image and number of updates:

- `replace` (the reference): what the original module and Mender's compose
  module do, stop and remove the old container, `docker run` the new one;
- `ours`: our module (this checkout) driven by the real Mender client 5.1.

After every update, count the volumes any container of the run ever mounted
that still exist (other sessions on the engine are never counted), and check
the service's data: the log its container appends to at each start. Prints the
count after the first and the last update, the slope per update, and whether
the data survived; the ratio is reference / ours of the volumes left.

    python3 bench/volumes_bench.py [--updates 50] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Set

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BenchError, fmt, main_guard, note, table  # noqa: E402
from bench.soak_bench import slope  # noqa: E402
from tests.realstack import (  # noqa: E402
    DEVICE_TYPE,
    ImageFactory,
    MenderDevice,
    Registry,
    require_engine,
    run,
    unique,
)

APPEND = 'echo "$N" >> /data/log; trap "exit 0" TERM; sleep 3600 & wait'


@dataclass
class Series:
    counts: List[int] = field(default_factory=list)  # volumes left after each update
    seen: Set[str] = field(default_factory=set)
    log_lines: int = 0  # lines in the service's log after the last update


def volumes_of(containers: List[str]) -> Set[str]:
    if not containers:
        return set()
    data = json.loads(run(["docker", "container", "inspect", *containers]).stdout)
    return {m["Name"] for c in data for m in c.get("Mounts") or [] if m.get("Type") == "volume"}


def existing(names: Set[str]) -> int:
    listed = set(run(["docker", "volume", "ls", "-q"]).stdout.split())
    return len(names & listed)


def log_lines(container: str) -> int:
    return len(run(["docker", "exec", container, "cat", "/data/log"]).stdout.split())


def by_label(label: str) -> List[str]:
    return run(["docker", "ps", "-aq", "--no-trunc", "--filter", f"label={label}"]).stdout.split()


def bench_replace(image: str, updates: int) -> Series:
    """The reference: stop, remove, run the next."""
    name, label = unique("bench-vol-replace"), unique("bench.vol")
    series = Series()
    try:
        for n in range(1, updates + 1):
            run(["docker", "rm", "-f", name], check=False)
            run(["docker", "run", "-d", "--name", name, "--label", label, "-e", f"N=v{n}", image])
            series.seen |= volumes_of(by_label(label))
            series.counts.append(existing(series.seen))
        series.log_lines = log_lines(name)
    finally:
        run(["docker", "rm", "-f", name], check=False)
        remove_volumes(series.seen)
    return series


def bench_ours(image: str, updates: int, work: Path) -> Series:
    device = MenderDevice(work / "device", client="5.1")
    namespace = unique("bench.vol")
    conf = work / "mender-docker.conf"
    conf.write_text(
        f"label_namespace = {namespace}\nscope = managed\ndata_dir = {work / 'journal'}\n"
        "stop_timeout = 2\nhealth_window = 1\nhealth_timeout = 20\n"
    )
    module = work / "docker"
    run(["mender-docker", "build-module", "-o", str(module)])
    device.use_module(module)
    device.env["MENDER_DOCKER_CONF"] = str(conf)
    name = unique("bench-vol-ours")
    series = Series()
    try:
        for n in range(1, updates + 1):
            artifact = work / f"v{n}.mender"
            run(["docker-artifact-gen", "-n", f"vol-v{n}", "-t", DEVICE_TYPE, "-o", str(artifact),
                 "--name", name, "--container-args", f"-e N=v{n}", image])  # fmt: skip
            for step in (device.install(artifact), device.commit()):
                if step.returncode != 0:
                    raise BenchError(f"update {n} failed: {step.stderr.strip()[-300:]}")
            artifact.unlink()
            series.seen |= volumes_of(by_label(f"{namespace}.managed"))
            series.counts.append(existing(series.seen))
            note(f"ours: update {n}/{updates}: {series.counts[-1]} volume(s)")
        series.log_lines = log_lines(name)
    finally:
        found = by_label(f"{namespace}.managed")
        if found:
            run(["docker", "rm", "-f", *found], check=False)
        remove_volumes(series.seen)
        device.restore()
    return series


def remove_volumes(names: Set[str]) -> None:
    if names:
        run(["docker", "volume", "rm", *sorted(names)], check=False)


def body() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="10 updates")
    args = parser.parse_args()
    updates = 10 if args.quick else args.updates
    if updates < 2:
        raise BenchError("--updates must be at least 2")
    require_engine()
    work = Path(run(["mktemp", "-d", "/tmp/volumes-bench.XXXXXX"]).stdout.strip())
    registry = Registry(work / "registry")
    registry.start()
    factory = ImageFactory(registry, work)
    try:
        image = factory.build(unique("bench/vol"), cmd=["sh", "-c", APPEND], volumes=["/data"])
        results: Dict[str, Series] = {}
        note(f"reference: {updates} stop/rm/run updates")
        results["replace"] = bench_replace(image, updates)
        note(f"ours: {updates} updates through mender-update 5.1")
        results["ours"] = bench_ours(image, updates, work)
    finally:
        factory.cleanup()
        registry.stop()
        run(["rm", "-rf", str(work)], check=False)
    rows = []
    for system, series in results.items():
        rows.append([
            system, str(series.counts[0]), str(series.counts[-1]), fmt(slope(series.counts), 2),
            f"{series.log_lines}/{updates}",
        ])  # fmt: skip
    left = results["replace"].counts[-1] / max(results["ours"].counts[-1], 1)
    print(f"### Volumes left over {updates} updates of a `VOLUME /data` image (dockerd)\n")
    print(table(["system", "after 1", f"after {updates}", "per update", "log lines kept"], rows))
    print(f"\nreference / ours, volumes left after {updates} updates: {left:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main_guard(body))

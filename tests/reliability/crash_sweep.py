"""Run the full crash sweep on the real components and print the tables.

    python -m tests.reliability.crash_sweep [--client 3.4|5.1|both] [--engine docker|podman]
                                            [SCENARIO ...]

Needs root, dockerd, docker-registry, the Mender clients (`mender` 3.4,
`mender-update` 5.1) and busybox-static, like the tests; the module runs against
a private dockerd on a tmpfs (private_engine.py), or with `--engine podman` a
podman store of its own. For each client (default both)
prints one summary row per scenario and mode, then every crash point; exits 1 if
any point ended in a bad state.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from tests.realstack import (
    CLIENTS,
    EngineCli,
    ImageFactory,
    MenderDevice,
    PodmanStore,
    Registry,
    run,
    unique,
)
from tests.reliability.harness import Rig, remove_image, sweep_images
from tests.reliability.private_engine import PrivateDockerd
from tests.reliability.sweep import SCENARIOS, CrashSweep, Point


class Stage:
    """Registry, two versions of a tiny image, the packed module and the rig, torn down
    on exit: the same setup the pytest fixtures make."""

    def __init__(self, work: Path, client: str, engine: str = "docker") -> None:
        self.work = work
        self.client = client
        self.registry = Registry(work / "registry")
        self.factory: Optional[ImageFactory] = None
        self.device: Optional[MenderDevice] = None
        self.rig: Optional[Rig] = None
        self.dockerd: Optional[PrivateDockerd] = None
        self.podman: Optional[PodmanStore] = None
        if engine == "docker":
            self.dockerd = PrivateDockerd(work / "dockerd")
            self.engine = self.dockerd.cli()
        else:
            self.podman = PodmanStore(work / "podman", registries=[self.registry.host])
            self.engine = EngineCli("podman", self.podman)
        self.images: Tuple[str, str] = ("", "")

    def __enter__(self) -> CrashSweep:
        try:
            return self.setup()
        except BaseException:
            self.__exit__()  # `with` does not call it when __enter__ fails
            raise

    def setup(self) -> CrashSweep:
        self.registry.start()
        if self.dockerd is not None:
            self.dockerd.start()
        self.factory = ImageFactory(self.registry, self.work)
        self.images = sweep_images(self.factory, unique("rel/app"))
        module = self.work / "docker"
        run(["mender-docker", "build-module", "-o", str(module)])
        self.device = MenderDevice(self.work / "device", client=self.client)
        self.rig = Rig(self.device, self.factory, self.work / "rig", module, self.engine)
        a1 = self.rig.artifact("v1", self.images[0])
        a2 = self.rig.artifact("v2", self.images[1])
        return CrashSweep(self.rig, (a1, a2), self.images)

    def __exit__(self, *exc: object) -> None:
        if self.rig is not None:
            self.rig.cleanup()
        for ref in self.images:
            if ref:
                remove_image(ref)
        if self.factory is not None:
            self.factory.cleanup()
        if self.device is not None:
            self.device.restore()
        self.registry.stop()
        if self.dockerd is not None:
            self.dockerd.close()
        if self.podman is not None:
            self.podman.cleanup()


def summary(points: Sequence[Point]) -> Iterator[Tuple[str, str, int, Dict[str, int]]]:
    keys: List[Tuple[str, str]] = list(dict.fromkeys((p.scenario, p.when) for p in points))
    for scenario, when in keys:
        mine = [p for p in points if (p.scenario, p.when) == (scenario, when)]
        outcomes: Dict[str, int] = {}
        for p in mine:
            outcomes[p.outcome] = outcomes.get(p.outcome, 0) + 1
        yield scenario, when, len(mine), outcomes


def sweep_client(client: str, chosen: Sequence[str], engine: str = "docker") -> List[Point]:
    points: List[Point] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="crash-sweep-") as work, \
            Stage(Path(work), client, engine) as sweep:  # fmt: skip
        for scenario in chosen:
            whens = ("before",) if scenario == "install+client" else ("before", "after")
            points += sweep.sweep(
                scenario, whens, progress=lambda p: print(
                    f"  {client} {p.scenario:<16} {p.when:<6} {p.number:>2} {p.outcome:<16} "
                    f"{p.call[:60]}", file=sys.stderr, flush=True))  # fmt: skip
    report(client, engine, chosen, points, time.monotonic() - started)
    return points


def report(
    client: str, engine: str, chosen: Sequence[str], points: Sequence[Point], elapsed: float
) -> None:
    binary = "mender" if client == "3.4" else "mender-update"
    print(f"\n## Mender client {client} (`{binary}`), {engine}\n")
    print("| scenario | SIGKILL | crash points | outcomes |")
    print("|---|---|---|---|")
    for scenario, when, total, outcomes in summary(points):
        text = ", ".join(f"{count} {name}" for name, count in outcomes.items()) or "-"
        print(f"| {scenario} ({SCENARIOS[scenario]}) | {when} the call | {total} | {text} |")
    for scenario in chosen:
        if not any(p.scenario == scenario for p in points):
            print(f"| {scenario} ({SCENARIOS[scenario]}) | - | 0 | no engine call to cut |")
    bad = [p for p in points if not p.good]
    print(f"\n{client}: {len(points)} crash points, {len(points) - len(bad)} good, "
          f"{len(bad)} bad, {elapsed:.0f} s")  # fmt: skip
    print("\n| scenario | SIGKILL | # | engine call | outcome | wrong right after the client |")
    print("|---|---|---|---|---|---|")
    for p in points:
        call = " ".join(p.call.split()[:3])[:50]
        wrong = "; ".join(p.immediate) or "-"
        print(f"| {p.scenario} | {p.when} | {p.number} | `{call}` | {p.outcome} | {wrong} |")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.crash_sweep")
    parser.add_argument("--client", choices=[*CLIENTS, "both"], default="both")
    parser.add_argument("--engine", choices=["docker", "podman"], default="docker")
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO")
    args = parser.parse_args(argv)
    chosen = args.scenarios or list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        print(f"crash_sweep: unknown scenario(s) {', '.join(unknown)}; "
              f"known: {', '.join(SCENARIOS)}", file=sys.stderr)  # fmt: skip
        return 2
    clients = CLIENTS if args.client == "both" else (args.client,)
    bad = [p for c in clients for p in sweep_client(c, chosen, args.engine) if not p.good]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""One artifact with many containers (default 20): install time and outage, v1 -> v2.

Each container is an HTTP service on its own port. The original module gives
every container the same `run_args`, so the services cannot publish one
container port each; they use `--network host` and each image listens on its
own host port instead (same images and arguments for both systems). The
images are pushed to a local registry and absent locally before the update.

`--client 3.4|5.1|both` (default 3.4): the Mender client driving both
systems (`mender` 3.4 or `mender-update` 5.1); the table has a column pair per
client.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    BenchError,
    Lab,
    Poller,
    System,
    add_system_args,
    client_name,
    clients_title,
    deploy,
    fmt,
    main_guard,
    median,
    note,
    ratio,
    table,
)
from tests.realstack import free_port, unique  # noqa: E402


@dataclass
class Result:
    install_s: float
    commit_s: float
    outages: List[float]  # per service, longest stretch without an answer
    any_down_s: float  # time during which at least one service did not answer


def free_ports(count: int) -> List[int]:
    ports: List[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def wait_all(poller: Poller, ports: Sequence[int], want: str, after: float, what: str) -> float:
    """Wait until every port answered `want`; return when the last one first did."""
    latest = after
    for port in ports:
        hit = poller.wait_for(port, want, timeout=120, after=after)
        if hit is None:
            raise BenchError(f"{what}: port {port} never answered {want}")
        latest = max(latest, hit.answered)
    return latest


def measure(
    lab: Lab, system: System, client: str, poller: Poller, ports: Sequence[int],
    artifacts: Dict[str, Path], v2_refs: Sequence[str],
) -> Result:
    who = f"{system.name} under client {client}"
    with lab.device(system, client) as device:
        before = time.monotonic()
        deploy(device, system, artifacts["v1"])
        wait_all(poller, ports, ":v1", before, f"{who} v1")
        lab.drop_local(list(v2_refs))
        start = time.monotonic()
        timing = deploy(device, system, artifacts["v2"])
        back = wait_all(poller, ports, ":v2", start, f"{who} v2")
        end = max(back, start + timing.total_s)
        outages = [poller.outage(port, start, end) for port in ports]
        any_down = poller.any_down(start, end)
    lab.purge()
    note(f"{who}: install {timing.install_s:.1f}s, commit {timing.commit_s:.1f}s, "
         f"max outage {max(outages):.2f}s, some service down {any_down:.2f}s")
    return Result(timing.install_s, timing.commit_s, outages, any_down)


Results = Dict[Tuple[str, str], Result]  # (client, system) -> result


def run_bench(args: argparse.Namespace) -> Results:
    results: Results = {}
    with Lab("many", args.systems, dict(args.our_conf), clients=args.clients) as lab:
        ports = free_ports(args.containers)
        note(f"building {2 * args.containers} images")
        refs: Dict[str, List[str]] = {"v1": [], "v2": []}
        for index, port in enumerate(ports):
            repo = unique(f"bench/svc{index:02d}")
            for tag in ("v1", "v2"):
                refs[tag].append(lab.build_http(repo, tag, random_mb=args.random_mb, port=port))
        artifacts = {
            name: {
                tag: lab.systems[name].generate(
                    lab.work, f"many-{tag}", refs[tag], run_args="--network host"
                )
                for tag in ("v1", "v2")
            }
            for name in args.systems
        }
        lab.drop_local(refs["v1"] + refs["v2"])
        with Poller(ports, interval=args.interval) as poller:
            for client in args.clients:
                for name in args.systems:
                    results[client, name] = measure(lab, lab.systems[name], client, poller,
                                                    ports, artifacts[name], refs["v2"])
    return results


def summarize(results: Results, clients: Sequence[str]) -> str:
    def get(client: str, name: str, what: str) -> Optional[float]:
        result = results.get((client, name))
        if result is None:
            return None
        values = {
            "total": result.install_s + result.commit_s,
            "install": result.install_s,
            "max": max(result.outages),
            "median": median(result.outages),
            "any": result.any_down_s,
        }
        return values[what]

    rows = []
    for label, what in (
        ("install + commit s", "total"),
        ("  of which install s", "install"),
        ("outage, worst service s", "max"),
        ("outage, median service s", "median"),
        ("time some service was down s", "any"),
    ):
        row = [label]
        for client in clients:
            original, ours = get(client, "original", what), get(client, "ours", what)
            row += [fmt(original), fmt(ours), ratio(original, ours)]
        rows.append(row)
    headers = ["metric"]
    for client in clients:
        name = client_name(client)
        headers += [f"original, {name}", f"ours, {name}", "ratio"]
    return table(headers, rows)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 containers instead of 20")
    parser.add_argument("--containers", type=int, default=None)
    parser.add_argument("--random-mb", type=int, default=0, help="random layer per image (MB)")
    parser.add_argument("--interval", type=float, default=0.05, help="poll interval per port (s)")
    add_system_args(parser, clients="3.4")
    args = parser.parse_args(argv)
    if args.containers is None:
        args.containers = 5 if args.quick else 20
    if args.containers < 1:
        parser.error("--containers must be at least 1")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        results = run_bench(args)
        print(f"## One artifact with {args.containers} containers, v1 -> v2 "
              f"(`--network host`, one port per service, polled every "
              f"{args.interval * 1000:.0f} ms; {clients_title(args.clients)})\n")
        print(summarize(results, args.clients))
        return 0

    return main_guard(body)


if __name__ == "__main__":
    sys.exit(main())

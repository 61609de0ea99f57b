"""Soak: many consecutive deployments, each with a new image; does the device fill up?

After every `mender install` + `mender commit`, count the containers made from
the bench's images (all states), the bench's images present, and the disk
used by dockerd's data root. Prints the figures after the first and the last
deployment and the least-squares slope per deployment, for both systems.

`--client 3.4|5.1|both` (default 3.4): the Mender client driving both
systems (`mender` 3.4 or `mender-update` 5.1); the table has a row per client
and metric.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    Lab,
    add_system_args,
    client_name,
    clients_title,
    deploy,
    docker_root_bytes,
    fmt,
    main_guard,
    median,
    note,
    ratio,
    table,
)
from tests.realstack import unique  # noqa: E402

MB = 1 << 20


@dataclass
class Point:
    containers: int  # any state
    running: int
    images: int
    disk_bytes: int  # du of the docker data root
    seconds: float  # install + commit


def slope(values: Sequence[float]) -> float:
    """Least-squares slope per step."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    den = sum((x - mean_x) ** 2 for x in range(n))
    return num / den


Series = Dict[Tuple[str, str], List[Point]]  # (client, system) -> one point per deployment


def run_bench(args: argparse.Namespace) -> Series:
    our_conf = {"health_window": str(args.health_window), **dict(args.our_conf)}
    series: Series = {}
    with Lab("soak", args.systems, our_conf, clients=args.clients) as lab:
        note(f"building {args.deployments} images ({args.random_mb} MB random layer each)")
        repo = unique("bench/soak")
        refs = [
            lab.build_http(repo, f"d{i:03d}", random_mb=args.random_mb)
            for i in range(args.deployments)
        ]
        artifacts = {
            name: [
                lab.systems[name].generate(lab.work, f"soak-{i:03d}", [ref])
                for i, ref in enumerate(refs)
            ]
            for name in args.systems
        }
        lab.drop_local(refs)
        for client in args.clients:
            for name in args.systems:
                series[client, name] = soak(lab, name, client, artifacts[name])
                lab.purge()
    return series


def soak(lab: Lab, name: str, client: str, artifacts: Sequence[Path]) -> List[Point]:
    system = lab.systems[name]
    points: List[Point] = []
    with lab.device(system, client) as device:
        for i, artifact in enumerate(artifacts):
            timing = deploy(device, system, artifact)
            states = [state for _, state in lab.containers()]
            point = Point(
                containers=len(states),
                running=states.count("running"),
                images=len(lab.images()),
                disk_bytes=docker_root_bytes(),
                seconds=timing.total_s,
            )
            points.append(point)
            if i == 0 or (i + 1) % 10 == 0:
                note(f"{name} under client {client}, deployment {i + 1}: "
                     f"{point.containers} containers ({point.running} running), "
                     f"{point.images} images, docker root {point.disk_bytes / MB:.1f} MB")
    return points


def summarize(series: Series, clients: Sequence[str]) -> str:
    metrics = (
        ("containers (all states)", lambda p: float(p.containers), 0),
        ("containers running", lambda p: float(p.running), 0),
        ("images", lambda p: float(p.images), 0),
        ("docker data root MB", lambda p: p.disk_bytes / MB, 1),
    )
    rows = []
    for client in clients:
        for label, get, digits in metrics:
            row = [client_name(client), label]
            slopes: Dict[str, Optional[float]] = {}
            for name in ("original", "ours"):
                points = series.get((client, name))
                if not points:
                    row += ["n/a", "n/a", "n/a"]
                    slopes[name] = None
                    continue
                values = [get(p) for p in points]
                slopes[name] = slope(values)
                row += [fmt(values[0], digits), fmt(values[-1], digits), fmt(slopes[name], 3)]
            row.append(_slope_ratio(slopes["original"], slopes["ours"]))
            rows.append(row)
    headers = ["client", "after deployment", "original first", "original last",
               "original slope", "ours first", "ours last", "ours slope", "slope ratio"]
    lines = []
    for client in clients:
        times = {name: median([p.seconds for p in points])
                 for (c, name), points in series.items() if c == client}
        lines.append(
            f"median install+commit per deployment, client {client_name(client)}: "
            f"original {fmt(times.get('original'))} s, ours {fmt(times.get('ours'))} s "
            f"(ratio {ratio(times.get('original'), times.get('ours'))})"
        )
    return table(headers, rows) + "\n\n" + "\n\n".join(lines)


def _slope_ratio(original: Optional[float], ours: Optional[float]) -> str:
    if original is None or ours is None:
        return "n/a"
    if abs(ours) < 1e-3:  # flat: a ratio would only measure noise
        return "ours flat" if abs(original) >= 1e-3 else "both flat"
    return ratio(original, ours)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 deployments instead of 50")
    parser.add_argument("--deployments", type=int, default=None)
    parser.add_argument("--random-mb", type=int, default=1, help="random layer per image (MB)")
    parser.add_argument("--health-window", type=float, default=1.0,
                        help="our module's health window (s); the original has none")
    add_system_args(parser, clients="3.4")
    args = parser.parse_args(argv)
    if args.deployments is None:
        args.deployments = 10 if args.quick else 50
    if args.deployments < 2:
        parser.error("--deployments must be at least 2")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        series = run_bench(args)
        print(f"## Soak: {args.deployments} consecutive deployments, a new image each "
              f"({args.random_mb} MB random layer); our health window {args.health_window:g} s; "
              f"{clients_title(args.clients)}\n")
        print(summarize(series, args.clients))
        return 0

    return main_guard(body)


if __name__ == "__main__":
    sys.exit(main())

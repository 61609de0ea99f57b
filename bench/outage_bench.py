"""Outage of an HTTP service during an update v1 -> v2, against image size.

For each size, two images (v1, v2) with a random-data layer are pushed to a
local registry and removed locally, so the device must pull. Each system then
deploys v1 (install + commit) on a fresh Mender client, and is timed on the
update to v2 while a thread asks the published port every ~10 ms. Outage is
the longest stretch without a successful answer between the start of the
client's `install` and the first answer from v2. Same images, same run
arguments (`-p PORT:8080`), same dockerd, for both systems.

`--client 3.4|5.1|both` (default both): the Mender client that drives the
deployments, `mender` 3.4 or `mender-update` 5.1; under each, the original and
ours are measured in the same run, and the tables have a row per client.

The original module stops EVERY running container on the machine: run this
on a machine where nothing else runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    REPO_ROOT,
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

DEFAULT_PLOT = REPO_ROOT / "docs" / "outage.png"


@dataclass
class Result:
    system: str
    client: str  # the Mender client that drove the deployments
    size_mb: int
    outage_s: float  # longest stretch in which no answer arrived
    failing_s: float  # longest stretch in which every probe sent failed
    install_s: float
    commit_s: float


def measure(
    lab: Lab, system: System, client: str, poller: Poller, port: int,
    artifacts: Dict[str, Path], v2_ref: str, tag: str,
) -> Result:
    """Deploy v1, then time the update to v2 on a fresh device driven by `client`."""
    who = f"{system.name} under client {client}"
    with lab.device(system, client) as device:
        deploy(device, system, artifacts["v1"])
        before = time.monotonic()
        if poller.wait_for(port, ":v1", timeout=60, after=before) is None:
            raise BenchError(f"{who}: v1 never answered on port {port}")
        lab.drop_local([v2_ref])  # the device must pull v2 during the update
        start = time.monotonic()
        timing = deploy(device, system, artifacts["v2"])
        back = poller.wait_for(port, ":v2", timeout=60, after=start)
        if back is None:
            raise BenchError(f"{who}: v2 never answered on port {port} after the update")
        end = max(back.answered, start + timing.total_s)
        outage = poller.outage(port, start, end)
        failing = poller.outage(port, start, end, by="sent")
    lab.purge()  # nothing of this run may help the next one (images, containers)
    note(f"{who} {tag}: outage {outage:.3f}s (failing {failing:.3f}s), "
         f"install {timing.install_s:.2f}s, commit {timing.commit_s:.2f}s")
    return Result(system.name, client, 0, outage, failing, timing.install_s, timing.commit_s)


def run_bench(args: argparse.Namespace) -> List[Result]:
    results: List[Result] = []
    with Lab("outage", args.systems, dict(args.our_conf), clients=args.clients) as lab:
        port = free_port()
        run_args = f"-p {port}:8080"
        with Poller([port], interval=args.interval) as poller:
            for size in args.sizes:
                note(f"building v1/v2 images with a {size} MB random layer")
                repo = unique(f"bench/web{size}")
                refs = {tag: lab.build_http(repo, tag, random_mb=size) for tag in ("v1", "v2")}
                artifacts = {
                    name: {
                        tag: lab.systems[name].generate(
                            lab.work, f"web{size}-{tag}", [ref], run_args
                        )
                        for tag, ref in refs.items()
                    }
                    for name in args.systems
                }
                lab.drop_local(list(refs.values()))
                for repeat in range(args.repeat):
                    # Alternate who goes first, so neither always meets a warmer cache.
                    order = args.systems if repeat % 2 == 0 else list(reversed(args.systems))
                    for client in args.clients:
                        for name in order:
                            result = measure(lab, lab.systems[name], client, poller, port,
                                             artifacts[name], refs["v2"],
                                             f"{size} MB #{repeat + 1}")
                            result.size_mb = size
                            results.append(result)
    return results


def summarize(
    results: Sequence[Result], sizes: Sequence[int], clients: Sequence[str]
) -> str:
    """One row per client and size: original against ours under that client."""

    def runs(system: str, client: str, size: int) -> List[Result]:
        return [r for r in results
                if r.system == system and r.client == client and r.size_mb == size]

    def med(system: str, client: str, size: int, attr: str) -> Optional[float]:
        values = [getattr(r, attr) for r in runs(system, client, size)]
        return median(values) if values else None

    rows = []
    for client in clients:
        for size in sizes:
            o_out = med("original", client, size, "outage_s")
            u_out = med("ours", client, size, "outage_s")
            o_tot = _total(med("original", client, size, "install_s"),
                           med("original", client, size, "commit_s"))
            u_tot = _total(med("ours", client, size, "install_s"),
                           med("ours", client, size, "commit_s"))
            o_fail = med("original", client, size, "failing_s")
            u_fail = med("ours", client, size, "failing_s")
            rows.append([client_name(client), f"{size}",
                         fmt(o_out), fmt(u_out), ratio(o_out, u_out),
                         fmt(o_fail), fmt(u_fail), ratio(o_fail, u_fail),
                         fmt(o_tot, 1), fmt(u_tot, 1), ratio(o_tot, u_tot)])
    headers = ["client", "image MB", "outage original s", "outage ours s", "ratio",
               "failing original s", "failing ours s", "ratio",
               "install+commit original s", "install+commit ours s", "ratio"]
    spread = []
    for client in clients:
        for size in sizes:
            cells = [client_name(client), f"{size}"]
            for system in ("original", "ours"):
                these = runs(system, client, size)
                cells.append(", ".join(f"{r.outage_s:.2f}" for r in these) or "n/a")
                cells.append(", ".join(f"{r.install_s + r.commit_s:.1f}" for r in these)
                             or "n/a")
            spread.append(cells)
    every = table(["client", "image MB", "original outages s", "original totals s",
                   "ours outages s", "ours totals s"], spread)
    return table(headers, rows) + "\n\nEvery run, in order:\n\n" + every


def _total(install: Optional[float], commit: Optional[float]) -> Optional[float]:
    return None if install is None or commit is None else install + commit


def plot(
    results: Sequence[Result], sizes: Sequence[int], clients: Sequence[str], path: Path
) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        note("matplotlib is not installed (pip install matplotlib): no plot written")
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    top = 0.0
    styles = {"3.4": "--", "5.1": "-"}
    for client in clients:
        for system, marker in (("original", "o"), ("ours", "s")):
            runs = [r for r in results if r.system == system and r.client == client]
            if not runs:
                continue
            points = [(size, median([r.outage_s for r in runs if r.size_mb == size]))
                      for size in sizes if any(r.size_mb == size for r in runs)]
            line = ax.plot([p[0] for p in points], [p[1] for p in points], marker=marker,
                           linestyle=styles.get(client, "-"),
                           label=f"{system}, client {client_name(client)} (median)")[0]
            if len(runs) > len(points):  # repeats: show every run, faintly
                ax.scatter([r.size_mb for r in runs], [r.outage_s for r in runs],
                           color=line.get_color(), alpha=0.3, s=14)
            top = max([top, *(r.outage_s for r in runs)])
    ax.set_xlabel("image size (MB, random data layer)")
    ax.set_ylabel("longest time without an HTTP answer (s)")
    ax.set_title("Service outage during an update v1 -> v2")
    ax.set_ylim(0, top * 1.15 or 1)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    note(f"plot written to {path}")


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small size, no plot")
    parser.add_argument("--sizes", type=_sizes, default=None, help="MB list (default 5,60,200)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per size and system (default 3, --quick 1)")
    add_system_args(parser, clients="both")
    parser.add_argument("--interval", type=float, default=0.01, help="poll interval (s)")
    parser.add_argument("--plot", type=Path, default=None, help=f"PNG (default {DEFAULT_PLOT})")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [5] if args.quick else [5, 60, 200]
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.plot is None and not args.quick and not args.no_plot:
        args.plot = DEFAULT_PLOT
    return args


def _sizes(text: str) -> List[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MB like 5,60,200, got {text!r}") from None
    if not sizes or any(size < 0 for size in sizes):
        raise argparse.ArgumentTypeError("sizes must be non-negative")
    return sizes


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        results = run_bench(args)
        print(f"## Outage during an update (median of {args.repeat} run(s) per cell; "
              f"{clients_title(args.clients)})\n")
        print(summarize(results, args.sizes, args.clients))
        if args.plot is not None and not args.no_plot:
            plot(results, args.sizes, args.clients, args.plot)
        return 0

    return main_guard(body)


if __name__ == "__main__":
    sys.exit(main())

"""Module overhead per state call: `MODULE STATE DIR`, timed, for both modules.

The query states need no context. For ArtifactCommit and Cleanup to be real
no-ops, each system first deploys a tiny image through the real Mender client;
the client's file tree is copied while the install is pending, and after the
commit the states are re-run on that copy (the protocol requires every state
to be safe to run again: it must find nothing left to do and exit 0).
The original module is a /bin/sh script; ours is one python3 file.

`--client 3.4|5.1|both` (default both): the Mender client whose deployment
provides the file tree and the environment the module runs with (`mender` 3.4
or `mender-update` 5.1; only 5.1 asks ProvidePayloadFileSizes). Each client's
calls are timed in their own block, original and ours interleaved, and the
table has a row per client and state.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    DEVICE_PATH,
    BenchError,
    Lab,
    System,
    add_system_args,
    client_name,
    clients_title,
    fmt,
    main_guard,
    median,
    note,
    ratio,
    table,
)
from tests.realstack import MenderDevice, unique  # noqa: E402

QUERY_STATES = ("SupportsRollback", "NeedsArtifactReboot", "ProvidePayloadFileSizes")
NOOP_STATES = ("ArtifactCommit", "Cleanup")


def copy_tree(device: MenderDevice, target: Path) -> Path:
    """Copy the client's file tree of the pending deployment (without its named pipes)."""
    trees = [p for p in device.data.rglob("tree") if p.is_dir()]
    if len(trees) != 1:
        raise BenchError(f"expected one pending file tree under {device.data}, found {trees}")

    def skip_pipes(directory: str, names: List[str]) -> List[str]:
        return [n for n in names if stat.S_ISFIFO(os.lstat(os.path.join(directory, n)).st_mode)]

    shutil.copytree(trees[0], target, ignore=skip_pipes)
    return target


def prepare_tree(
    lab: Lab, system: System, client: str, artifact: Path
) -> Tuple[Path, Dict[str, str]]:
    """Deploy `artifact` with `client` (install, copy the tree, commit).

    Returns the copied tree and the environment the client gave the module.
    """
    who = f"{system.name} under client {client}"
    with lab.device(system, client) as device:
        device.use_module(system.module)
        proc = device.install(artifact)
        if proc.returncode != 0:
            raise BenchError(f"{who}: install failed: {proc.stderr.strip()[-300:]}")
        tree = copy_tree(device, lab.work / unique(f"{system.name}-{client}-tree"))
        proc = device.commit()
        if proc.returncode != 0:
            raise BenchError(f"{who}: commit failed: {proc.stderr.strip()[-300:]}")
        env = {**os.environ, **device.env}
    return tree, env


# What the interpreter alone costs, started the way each module's #! line starts it.
BASELINE = "interpreter start alone"
BASELINE_ARGV = {"original": ["/bin/sh", "-c", ":"], "ours": ["/usr/bin/env", "python3", "-c", ""]}


def time_call(argv: Sequence[str], tree: Path, env: Dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=tree, env=env, capture_output=True, timeout=60)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise BenchError(
            f"{' '.join(argv)} exited {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace').strip()[-300:]}"
        )
    return took


Timings = Dict[str, Dict[str, Dict[str, List[float]]]]  # client -> system -> state -> s


def run_bench(args: argparse.Namespace) -> Timings:
    timings: Timings = {}
    device_path = None if args.inherit_path else DEVICE_PATH
    with Lab("state", args.systems, dict(args.our_conf), device_path=device_path,
             clients=args.clients) as lab:
        ref = lab.build_http(unique("bench/state"), "v1")
        lab.drop_local([ref])
        artifacts = {name: lab.systems[name].generate(lab.work, "state-v1", [ref])
                     for name in args.systems}
        lab.drop_local([ref])
        for client in args.clients:
            timings[client] = time_client(args, lab, client, artifacts)
            lab.purge()  # the next client's deployments start from nothing too
    return timings


def time_client(
    args: argparse.Namespace, lab: Lab, client: str, artifacts: Dict[str, Path]
) -> Dict[str, Dict[str, List[float]]]:
    """Deploy with `client`, then time each state on the copied trees, systems interleaved."""
    trees: Dict[str, Path] = {}
    envs: Dict[str, Dict[str, str]] = {}
    timings: Dict[str, Dict[str, List[float]]] = {}
    # The original first: its install stops every container, ours' included.
    for name in sorted(args.systems, key=lambda n: n != "original"):
        trees[name], envs[name] = prepare_tree(lab, lab.systems[name], client, artifacts[name])
        if name == "original":
            lab.purge()  # ours must pull and start from nothing too
        timings[name] = {state: [] for state in (*QUERY_STATES, *NOOP_STATES)}
    note(f"client {client}: timing {args.calls} calls per state and system")
    for _ in range(args.calls):
        for state in (*QUERY_STATES, *NOOP_STATES, BASELINE):
            for name in args.systems:  # interleaved: load spikes hit both alike
                argv = BASELINE_ARGV[name] if state == BASELINE else [
                    str(lab.systems[name].module), state, str(trees[name])
                ]
                timings[name].setdefault(state, []).append(
                    time_call(argv, trees[name], envs[name])
                )
    return timings


def summarize(timings: Timings) -> str:
    rows = []
    for client, by_system in timings.items():
        name = client_name(client)
        totals: Dict[str, float] = {}
        for state in (*QUERY_STATES, *NOOP_STATES):
            meds: Dict[str, Optional[float]] = {}
            for system in ("original", "ours"):
                values = by_system.get(system, {}).get(state)
                meds[system] = median(values) * 1000 if values else None
                if meds[system] is not None:
                    totals[system] = totals.get(system, 0.0) + (meds[system] or 0.0)
            label = state + (" (no-op re-run)" if state in NOOP_STATES else "")
            rows.append([name, label, fmt(meds["original"], 1), fmt(meds["ours"], 1),
                         ratio(meds["original"], meds["ours"])])
        rows.append([name, "sum of the above", fmt(totals.get("original"), 1),
                     fmt(totals.get("ours"), 1),
                     ratio(totals.get("original"), totals.get("ours"))])
        base = {system: by_system.get(system, {}).get(BASELINE)
                for system in ("original", "ours")}
        base_ms = {system: median(v) * 1000 if v else None for system, v in base.items()}
        rows.append([name, f"{BASELINE} (`sh -c :` / `python3 -c ''`)",
                     fmt(base_ms["original"], 1), fmt(base_ms["ours"], 1),
                     ratio(base_ms["original"], base_ms["ours"])])
    return table(["client", "state", "original median ms", "ours median ms", "ratio"], rows)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 calls per state")
    parser.add_argument("--calls", type=int, default=None, help="calls per state (default 50)")
    add_system_args(parser, clients="both")
    parser.add_argument("--inherit-path", action="store_true",
                        help="run the modules with this shell's PATH, not a device's")
    args = parser.parse_args(argv)
    if args.calls is None:
        args.calls = 10 if args.quick else 50
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        timings = run_bench(args)
        print(f"## Module overhead per state call (median of {args.calls} calls; "
              f"file trees from {clients_title(args.clients)})\n")
        print(summarize(timings))
        return 0

    return main_guard(body)


if __name__ == "__main__":
    sys.exit(main())

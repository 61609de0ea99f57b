"""A 3-service Compose application, one service changed: `docker compose` against ours.

The application: three busybox `httpd` services (`s1`, `s2`, `s3`), each
publishing its own host port; release v2 changes only `s2`'s image. The images
are pushed to a local `docker-registry`; before every update `s2`'s v2 image is
removed from the engine, so every approach must pull it. From the same
starting point (v1 running, deployed the way the approach deploys it), while a
poller asks every service's port every `--interval` seconds, each approach
updates to v2:

  compose up    `docker compose -p P -f v2.yaml up -d` (the compose tool the
                device would otherwise run);
  down && up    `docker compose -p P -f v1.yaml down && docker compose -p P -f
                v2.yaml up -d` (what Mender's docker-compose update module
                does: the whole project down, then up);
  ours          `docker-artifact-gen --compose v2.yaml --project-name P`,
                installed and committed by the real Mender client running our
                module (v1 installed the same way before).

Per service: **outage** = the longest stretch, from the start of the update
until every service answers v2's content, in which no good answer arrived.
**update s** = wall time of the command(s) (ours: the client's `install` plus
`commit`; its `install` holds the health window, 5 s by default). Services whose
container changed (ID or start time) are listed as restarted. Medians of
`--repeat` runs; the approaches take turns at going first.

Then an offline release: v2 again, with a random-data layer of `--disk-mb` MB
in every image, as our `--embed-images` artifact, installed over v1 (also
offline) by the client. Measured: the artifact's size, the images' unpacked
sizes in the engine, ours' peak extra disk during the install (used bytes of
the docker root's filesystem every 50 ms, as bench/offline_bench.py does). The
three-copies approach (the compose module lets the client store the images
tarball, extracts it, `docker load`s every image, and keeps the previous
release's images until after the commit) is *computed* from those measured
sizes; the output says which figure is which.

    python3 bench/compose_bench.py [--quick] [--repeat N] [--client 3.4|5.1|both]

Needs dockerd, `docker compose` (v2), docker-registry, the client(s),
mender-artifact (tests/realstack.py). Everything it creates (containers,
networks, volumes, images, the registry, module files) is removed at the end,
also after a failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    BenchError,
    Lab,
    Poller,
    System,
    client_name,
    clients_arg,
    clients_title,
    deploy,
    fmt,
    image_id,
    key_value,
    main_guard,
    median,
    note,
    ratio,
    table,
)
from bench.many_containers_bench import free_ports  # noqa: E402
from bench.offline_bench import DiskSampler, docker_root, used_bytes  # noqa: E402
from tests.realstack import DEVICE_TYPE, run, unique  # noqa: E402

SERVICES = ("s1", "s2", "s3")
CHANGED = "s2"
RELEASES = ("v1", "v2")
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
MIB = 2**20

UP = "compose up"
DOWN_UP = "down && up"
OURS = "ours"


# --------------------------------------------------------------------------- the app


@dataclass
class App:
    """Three services' images per release, their host ports and what each answers."""

    refs: Dict[str, Dict[str, str]]  # release -> service -> pinned reference
    bodies: Dict[str, Dict[str, str]]  # release -> service -> `repo:tag` it serves
    ids: Dict[str, Dict[str, str]]  # release -> service -> image ID
    ports: Dict[str, int]  # service -> host port

    def compose_file(self, folder: Path, release: str) -> Path:
        """The release's Compose file: one published port per service, nothing else."""
        lines = ["services:"]
        for service in SERVICES:
            lines += [
                f"  {service}:",
                f"    image: {self.refs[release][service]}",
                "    ports:",
                f'      - "127.0.0.1:{self.ports[service]}:8080"',
            ]
        path = folder / f"{release}.yaml"
        path.write_text("\n".join(lines) + "\n")
        return path


def build_app(lab: Lab, name: str, random_mb: int) -> App:
    """v1 and v2 images of the three services (only s2 differs), pushed, none left local."""
    refs: Dict[str, Dict[str, str]] = {release: {} for release in RELEASES}
    bodies: Dict[str, Dict[str, str]] = {release: {} for release in RELEASES}
    for service in SERVICES:
        repo = unique(f"bench/{name}-{service}")
        tags = {"v1": "v1", "v2": "v2" if service == CHANGED else "v1"}
        built: Dict[str, str] = {}
        for release, tag in tags.items():
            if tag not in built:
                built[tag] = lab.factory.http_service(repo, tag, random_mb=random_mb)
                lab.image_ids.add(image_id(built[tag]))  # so that lab.purge removes it
            refs[release][service] = built[tag]
            bodies[release][service] = f"{repo}:{tag}"
    ids = {release: {s: image_id(ref) for s, ref in refs[release].items()}
           for release in RELEASES}
    if not all(ids[release][s] for release in RELEASES for s in SERVICES):
        raise BenchError("a freshly built image is not on the engine")
    ports = free_ports(len(SERVICES))
    lab.factory.cleanup()  # the build tags; the pinned references stay until drop_local
    lab.drop_local([ref for release in RELEASES for ref in refs[release].values()])
    return App(refs, bodies, ids, dict(zip(SERVICES, ports)))


# --------------------------------------------------------------------------- engine views


def project_containers(project: str) -> Dict[str, Tuple[str, str]]:
    """service -> (container ID, start time) of the project's running containers."""
    ids = run(["docker", "ps", "-q", "--no-trunc", "--filter",
               f"label={PROJECT_LABEL}={project}"], check=False).stdout.split()
    if not ids:
        return {}
    template = (f'{{{{index .Config.Labels "{SERVICE_LABEL}"}}}}\t{{{{.Id}}}}\t'
                "{{.State.StartedAt}}\t{{.State.Running}}")
    out = run(["docker", "inspect", "--format", template, *ids], check=False).stdout
    found: Dict[str, Tuple[str, str]] = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[3] == "true":
            found[parts[0]] = (parts[1], parts[2])
    return found


def restarted(before: Dict[str, Tuple[str, str]], after: Dict[str, Tuple[str, str]]) -> str:
    """The services whose container is another one, or was started again."""
    changed = [s for s in SERVICES if before.get(s) is None or before.get(s) != after.get(s)]
    return ", ".join(changed) or "none"


def remove_project(project: str) -> None:
    """Every container, network and volume labelled with the project (either tool's)."""
    label = f"label={PROJECT_LABEL}={project}"
    ids = run(["docker", "ps", "-aq", "--filter", label], check=False).stdout.split()
    if ids:
        run(["docker", "rm", "-f", *ids], check=False)
    for kind in ("network", "volume"):
        found = run(["docker", kind, "ls", "-q", "--filter", label], check=False).stdout.split()
        if found:
            run(["docker", kind, "rm", *found], check=False)


def engine_size(ident: str) -> int:
    """Unpacked bytes of an image on the engine (`docker image inspect .Size`)."""
    proc = run(["docker", "image", "inspect", "--format", "{{.Size}}", ident], check=False)
    try:
        return int(proc.stdout.strip())
    except ValueError:
        raise BenchError(f"image {ident} is not on the engine: {proc.stderr.strip()}") from None


def compose(project: str, path: Path, *args: str) -> None:
    argv = ["docker", "compose", "-p", project, "-f", str(path), *args]
    proc = run(argv, check=False, timeout=600)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise BenchError(f"`{' '.join(argv[:2])} ... {' '.join(args)}` failed: {tail}")


def generate_ours(
    folder: Path, compose_file: Path, project: str, name: str, embed: bool = False
) -> Path:
    out = folder / f"{name}.mender"
    argv = ["docker-artifact-gen", "-n", name, "-t", DEVICE_TYPE, "-o", str(out),
            "--compose", str(compose_file), "--project-name", project]
    if embed:
        argv.append("--embed-images")
    proc = run(argv, check=False, timeout=900)
    if proc.returncode != 0 or not out.is_file():
        raise BenchError(f"docker-artifact-gen --compose failed: "
                         f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return out


# --------------------------------------------------------------------------- outage


@dataclass
class Run:
    approach: str  # UP, DOWN_UP or OURS
    client: str  # the Mender client for OURS, "" for the compose tool
    outages: Dict[str, float]  # service -> seconds
    update_s: float  # wall time of the update command(s)
    serves_s: float  # start -> first answer of the changed service's v2
    restarted: str

    @property
    def worst(self) -> float:
        return max(self.outages.values())


@dataclass
class Setup:
    app: App
    files: Dict[str, Path]  # release -> Compose file
    ours_project: str
    ours_artifacts: Dict[str, Path]  # release -> artifact
    projects: Set[str] = field(default_factory=set)  # every project used, for the cleanup


def wait_serving(
    poller: Poller, app: App, release: str, start: float, done: float, what: str
) -> Tuple[float, float]:
    """Wait until every service answers `release`'s content after the update.

    Returns (end of the measured stretch, first answer of the changed service).
    The changed service counts from `start`; the others from `done` (they
    answer the same before and after, so only an answer after the command
    proves they are back)."""
    end = done
    first_changed = done
    for service in SERVICES:
        after = start if service == CHANGED else done
        hit = poller.wait_for(app.ports[service], app.bodies[release][service], timeout=120,
                              after=after)
        if hit is None:
            raise BenchError(f"{what}: {service} never answered {release} "
                             f"on port {app.ports[service]}")
        end = max(end, hit.answered)
        if service == CHANGED:
            first_changed = hit.answered
    return end, first_changed


def measure_compose(lab: Lab, setup: Setup, approach: str, poller: Poller) -> Run:
    app, files = setup.app, setup.files
    project = unique("cbench").lower()
    setup.projects.add(project)
    try:
        before_v1 = time.monotonic()
        compose(project, files["v1"], "up", "-d")
        wait_serving(poller, app, "v1", before_v1, time.monotonic(), f"{approach} v1")
        lab.drop_local([app.refs["v2"][CHANGED]])
        seen = project_containers(project)
        start = time.monotonic()
        if approach == DOWN_UP:
            compose(project, files["v1"], "down")
        compose(project, files["v2"], "up", "-d")
        done = time.monotonic()
        end, first = wait_serving(poller, app, "v2", start, done, approach)
        outages = {s: poller.outage(app.ports[s], start, end) for s in SERVICES}
        result = Run(approach, "", outages, done - start, first - start,
                     restarted(seen, project_containers(project)))
    finally:
        remove_project(project)
    lab.purge()  # nothing of this run helps the next one
    return result


def measure_ours(lab: Lab, setup: Setup, client: str, poller: Poller) -> Run:
    app, system = setup.app, lab.systems["ours"]
    who = f"ours under client {client}"
    try:
        with lab.device(system, client) as device:
            before_v1 = time.monotonic()
            v1 = deploy(device, system, setup.ours_artifacts["v1"])
            wait_serving(poller, app, "v1", before_v1, before_v1 + v1.total_s, f"{who} v1")
            lab.drop_local([app.refs["v2"][CHANGED]])
            seen = project_containers(setup.ours_project)
            start = time.monotonic()
            timing = deploy(device, system, setup.ours_artifacts["v2"])
            done = time.monotonic()
            end, first = wait_serving(poller, app, "v2", start, done, who)
            outages = {s: poller.outage(app.ports[s], start, end) for s in SERVICES}
            result = Run(OURS, client, outages, timing.total_s, first - start,
                         restarted(seen, project_containers(setup.ours_project)))
    finally:
        remove_project(setup.ours_project)
    lab.purge()
    return result


def run_outage(lab: Lab, args: argparse.Namespace, projects: Set[str]) -> List[Run]:
    note("building the 3-service app (v1, v2: s2 changed)")
    app = build_app(lab, "cmp", args.random_mb)
    folder = lab.work / "outage"
    folder.mkdir()
    files = {release: app.compose_file(folder, release) for release in RELEASES}
    ours_project = unique("cbench-ours").lower()
    projects.add(ours_project)
    artifacts = {release: generate_ours(folder, files[release], ours_project, f"app-{release}")
                 for release in RELEASES}
    setup = Setup(app, files, ours_project, artifacts, projects)
    turns: List[Tuple[str, str]] = [(UP, ""), (DOWN_UP, "")]
    turns += [(OURS, client) for client in args.clients]
    runs: List[Run] = []
    with Poller(list(app.ports.values()), interval=args.interval) as poller:
        for repeat in range(args.repeat):
            shift = repeat % len(turns)  # each approach takes its turn at going first
            for approach, client in turns[shift:] + turns[:shift]:
                if approach == OURS:
                    result = measure_ours(lab, setup, client, poller)
                else:
                    result = measure_compose(lab, setup, approach, poller)
                note(f"{label(approach, client)} #{repeat + 1}: outages "
                     + ", ".join(f"{s} {v * 1000:.0f} ms" for s, v in result.outages.items())
                     + f"; update {result.update_s:.2f} s; restarted {result.restarted}")
                runs.append(result)
    return runs


def label(approach: str, client: str = "") -> str:
    if approach == UP:
        return "`docker compose -p P -f v2.yaml up -d`"
    if approach == DOWN_UP:
        return "`docker compose -p P -f v1.yaml down && docker compose -p P -f v2.yaml up -d`"
    return f"ours: `{'mender' if client == '3.4' else 'mender-update'} install` + `commit`"


def outage_table(runs: Sequence[Run], client: str) -> str:
    """One row per approach under `client` (the compose rows are client-independent)."""

    def pick(approach: str) -> List[Run]:
        return [r for r in runs if r.approach == approach
                and (approach != OURS or r.client == client)]

    ours = pick(OURS)
    ours_worst = median([r.worst for r in ours])
    ours_update = median([r.update_s for r in ours])
    rows = []
    for approach in (UP, DOWN_UP, OURS):
        these = pick(approach)
        if not these:
            continue
        worst = median([r.worst for r in these])
        update = median([r.update_s for r in these])
        kinds = sorted({r.restarted for r in these})
        rows.append([
            label(approach, client),
            *(fmt(median([r.outages[s] for r in these]) * 1000, 0) for s in SERVICES),
            ratio(worst, ours_worst),
            fmt(update, 2),
            ratio(update, ours_update),
            fmt(median([r.serves_s for r in these]), 2),
            " / ".join(kinds),
        ])
    headers = ["approach", *(f"{s}{' (changed)' if s == CHANGED else ''} outage ms"
                             for s in SERVICES),
               "worst outage ratio", "update s", "update ratio", f"{CHANGED} v2 after s",
               "restarted"]
    return table(headers, rows)


def every_run_table(runs: Sequence[Run]) -> str:
    rows = []
    for approach in (UP, DOWN_UP, OURS):
        clients = sorted({r.client for r in runs if r.approach == approach})
        for client in clients:
            these = [r for r in runs if r.approach == approach and r.client == client]
            rows.append([
                approach if not client else f"{approach}, {client_name(client)}",
                ", ".join(f"{r.worst * 1000:.0f}" for r in these),
                ", ".join(f"{r.outages[CHANGED] * 1000:.0f}" for r in these),
                ", ".join(f"{r.update_s:.2f}" for r in these),
            ])
    return table(["approach", "worst outage ms", f"{CHANGED} outage ms", "update s"], rows)


# --------------------------------------------------------------------------- disk


@dataclass
class Disk:
    client: str
    artifact: int  # bytes of our v2 --embed-images artifact
    v1_images: int  # unpacked bytes of v1's images in the engine
    v2_images: int  # unpacked bytes of v2's images in the engine
    new_images: int  # of which not in v1
    peak_extra: int  # ours, during the install of v2
    after_commit: int  # ours, used bytes after the commit minus before the install
    install_s: float

    @property
    def three_copies_peak(self) -> int:
        """Computed: payload kept + extracted image tars + the new images loaded."""
        return self.artifact + self.v2_images + self.new_images


def run_disk(lab: Lab, args: argparse.Namespace, projects: Set[str]) -> List[Disk]:
    note(f"building the offline app (a {args.disk_mb} MB random layer per image)")
    app = build_app(lab, "cmpoff", args.disk_mb)
    folder = lab.work / "offline"
    folder.mkdir()
    project = unique("cbench-offline").lower()
    projects.add(project)
    artifacts = {
        release: generate_ours(folder, app.compose_file(folder, release), project,
                               f"offline-{release}", embed=True)
        for release in RELEASES
    }
    root = docker_root()
    system = lab.systems["ours"]
    results = []
    for client in args.clients:
        try:
            results.append(measure_disk(lab, system, client, app, artifacts, root))
        finally:
            remove_project(project)
        lab.purge()
    return results


def measure_disk(
    lab: Lab, system: System, client: str, app: App, artifacts: Dict[str, Path], root: str
) -> Disk:
    who = f"ours offline under client {client}"
    with lab.device(system, client) as device:
        deploy(device, system, artifacts["v1"])
        v1_ids = set(app.ids["v1"].values())
        v2_ids = set(app.ids["v2"].values())
        v1_images = sum(engine_size(i) for i in v1_ids)
        device.use_module(system.module)
        sampler = DiskSampler(root)
        start = time.monotonic()
        with sampler:
            proc = device.install(artifacts["v2"])
        install_s = time.monotonic() - start
        if proc.returncode != 0:
            raise BenchError(f"{who}: install of v2 failed: {proc.stderr.strip()[-600:]}")
        proc = device.commit()
        if proc.returncode != 0:
            raise BenchError(f"{who}: commit failed: {proc.stderr.strip()[-600:]}")
        after_commit = used_bytes(root) - sampler.before
        v2_images = sum(engine_size(i) for i in v2_ids)
        new_images = sum(engine_size(i) for i in v2_ids - v1_ids)
    result = Disk(client, os.path.getsize(artifacts["v2"]), v1_images, v2_images, new_images,
                  sampler.peak_extra, after_commit, install_s)
    note(f"{who}: peak extra {result.peak_extra / MIB:.1f} MiB, "
         f"install {install_s:.1f} s")
    return result


def mib(value: int) -> str:
    return f"{value / MIB:.1f}"


def disk_tables(results: Sequence[Disk]) -> str:
    measured = []
    for r in results:
        name = client_name(r.client)
        measured += [
            [name, "our v2 artifact (`--compose --embed-images`), file size", mib(r.artifact)],
            [name, "v1's images in the engine before the update (unpacked)", mib(r.v1_images)],
            [name, "v2's images in the engine (s1 + s2 + s3, unpacked)", mib(r.v2_images)],
            [name, f"  of which new in v2 ({CHANGED})", mib(r.new_images)],
            [name, "ours: peak extra disk during the install of v2", mib(r.peak_extra)],
            [name, "ours: extra disk after the commit", mib(r.after_commit)],
            [name, "ours: install s", f"{r.install_s:.1f}"],
        ]
    compared = []
    for r in results:
        three = r.three_copies_peak
        compared.append([
            client_name(r.client),
            "peak extra disk during the install, MiB",
            mib(r.peak_extra),
            f"{mib(three)} = {mib(r.artifact)} payload + {mib(r.v2_images)} extracted "
            f"+ {mib(r.new_images)} loaded",
            ratio(three, r.peak_extra),
        ])
        compared.append([
            client_name(r.client),
            "app's disk at that peak (v1's images + peak extra), MiB",
            mib(r.v1_images + r.peak_extra),
            mib(r.v1_images + three),
            ratio(r.v1_images + three, r.v1_images + r.peak_extra),
        ])
    return (
        "Measured (statvfs of the docker root's filesystem every 50 ms; sizes from the "
        "artifact file and `docker image inspect`):\n\n"
        + table(["client", "figure", "MiB"], measured)
        + "\n\nThe three-copies approach, **computed** from the measured sizes above (not "
        "run): the client stores the payload (the images tarball, taken as large as our "
        "artifact), the module extracts every image's `docker save` tar (unpacked size) and "
        "`docker load`s them, adding the images v1 lacks; v1's images stay until after the "
        "commit. dockerd's temp copy during each `docker load` is left out, so it is a "
        "lower bound:\n\n"
        + table(["client", "figure", "ours (measured)", "three copies (computed)",
                 "ratio three copies / ours"], compared)
    )


# --------------------------------------------------------------------------- main


def run_bench(args: argparse.Namespace) -> Tuple[List[Run], List[Disk]]:
    runs: List[Run] = []
    disks: List[Disk] = []
    projects: Set[str] = set()
    with Lab("compose", ["ours"], dict(args.our_conf), clients=args.clients) as lab:
        try:
            if not args.no_outage:
                runs = run_outage(lab, args, projects)
            if not args.no_disk:
                disks = run_disk(lab, args, projects)
        finally:
            for project in projects:  # before the lab removes the images
                remove_project(project)
    return runs, disks


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one run per approach, a 10 MB layer for the disk figures")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per approach (default 3, --quick 1); medians are reported")
    parser.add_argument("--client", dest="clients", type=clients_arg,
                        default=clients_arg("5.1"), metavar="3.4|5.1|both",
                        help="the Mender client(s) running ours (default 5.1 `mender-update`; "
                             "3.4 is `mender`)")
    parser.add_argument("--our-conf", action="append", type=key_value, default=[],
                        metavar="KEY=VALUE",
                        help="a setting for our module's config file (repeatable)")
    parser.add_argument("--interval", type=float, default=0.02,
                        help="poll interval per port, seconds (default 0.02)")
    parser.add_argument("--random-mb", type=int, default=0,
                        help="random-data layer per image for the outage runs (default 0)")
    parser.add_argument("--disk-mb", type=int, default=None,
                        help="random-data layer per image for the disk figures "
                             "(default 50, --quick 10)")
    parser.add_argument("--no-outage", action="store_true", help="only the disk figures")
    parser.add_argument("--no-disk", action="store_true", help="only the outage table")
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.disk_mb is None:
        args.disk_mb = 10 if args.quick else 50
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.random_mb < 0 or args.disk_mb < 0:
        parser.error("sizes must be non-negative")
    if args.interval <= 0:
        parser.error("--interval must be positive")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        started = time.monotonic()
        runs, disks = run_bench(args)
        window = dict(args.our_conf).get("health_window", "5 (default)")
        if runs:
            for client in args.clients:
                print(f"## A 3-service Compose app, only {CHANGED} changed: `docker compose` "
                      f"against ours (median of {args.repeat} run(s); "
                      f"{clients_title([client])}; each port polled every "
                      f"{args.interval * 1000:.0f} ms)\n")
                print(outage_table(runs, client))
                print()
            print("Ratios are approach / ours (above 1: ours is better). update s = wall time "
                  "of the command(s); ours' `install` includes its health window "
                  f"(health_window = {window} s). {CHANGED} v2 after s = from the start of "
                  f"the update to {CHANGED}'s first v2 answer. restarted = services whose "
                  "container is another one or was started again.\n")
            print("Every run, in order:\n")
            print(every_run_table(runs))
            print()
        if disks:
            print(f"## Offline release v2: device disk, ours against three copies "
                  f"(3 images with a {args.disk_mb} MB random layer each, only {CHANGED} "
                  f"changed; {clients_title(args.clients)})\n")
            print(disk_tables(disks))
            print()
        note(f"done in {time.monotonic() - started:.0f} s")
        return 0

    return main_guard(body)


if __name__ == "__main__":
    sys.exit(main())

"""The crash sweep on a Compose application (issue 11): SIGKILL the module at every
engine call of a Compose release's ArtifactInstall, with the real Mender client, our
packed module and a real dockerd (the private one, see sweep.py and harness.py).

v1: `api` (writes `started v1` to its named volume `data`, healthy once it did) and
`web` (`depends_on: api: service_healthy`), both on the project network `front`.
Both restart `unless-stopped`. v2 changes both services (new image, new environment)
and adds a network `back` that both join, so its install creates a network, renames
both v1 containers, creates two containers and connects each to its second network,
sets the old ones' restart policy to `no`, stops them, starts api, waits for it to be
healthy, starts web and runs the health gate.

After every crash point the client carries on (ArtifactRollback, ArtifactFailure,
Cleanup; with the client killed too: `mender-update resume` on 5.1, the next
deployment on 3.4) and the device must hold exactly v1 again: the same two container
IDs running under their Compose names, attached to exactly v1's networks, with
their restart policy `unless-stopped` again; the
project's networks are v1's (the same network IDs, no `back`); the volume is the same
one (same creation time) and still holds v1's data; no container of v2, in any state;
v2's image gone; the journal final.

Which call is the N-th one depends on timing only in one place: the polls waiting
for api to be healthy before web starts. Points are therefore aimed at calls by
their *signature* (command and occurrence: the 2nd `start`), and a run that cut
another call than aimed at (itself a crash point, checked like the others) is
followed by one aimed again. Health-gate polls (`container inspect`) are equivalent:
one hit at the number is enough, and any may be missed, as in test_crash_sweep.py.

`RELIABILITY_FULL=1` runs the full sweep (SIGKILL after every call too, the client
killed at every call, and ArtifactRollback cut before and after every call).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

from tests.realstack import CLIENTS, ImageFactory, MenderDevice, Registry, unique
from tests.reliability.harness import QUICK_EXIT, Rig, sweep_images
from tests.reliability.private_engine import PrivateDockerd
from tests.reliability.sweep import NEXT_DEPLOYMENT, NOT_REACHED, RESTORED, CrashSweep, Point
from tests.reliability.test_crash_sweep import check_points

pytestmark = pytest.mark.real

FULL = os.environ.get("RELIABILITY_FULL", "") not in ("", "0")
POLL = "container inspect"
ATTEMPTS = 4  # runs aimed at one call before giving up on it (timing moves it by 1 or 2)
# `$$`: Compose would interpolate `$VERSION` itself, on the workstation
API_START = 'echo "started $$VERSION" >> /data/log; trap "exit 0" TERM; sleep 3600 & wait'


def compose_file(folder: Path, release: str, image: str, networks: Sequence[str]) -> Path:
    attach = json.dumps(list(networks))
    declared = "".join(f"  {name}: {{}}\n" for name in networks)
    path = folder / f"compose-{release}.yaml"
    path.write_text(
        f"""
services:
  api:
    image: {image}
    restart: unless-stopped
    command: {json.dumps(["sh", "-c", API_START])}
    environment:
      VERSION: "{release}"
    volumes:
      - data:/data
    networks: {attach}
    healthcheck:
      test: ["CMD", "cat", "/data/log"]
      interval: 500ms
      retries: 3
  web:
    image: {image}
    restart: unless-stopped
    command: {json.dumps(QUICK_EXIT)}
    environment:
      RELEASE: "{release}"
    networks: {attach}
    depends_on:
      api:
        condition: service_healthy
networks:
{declared}volumes:
  data: {{}}
"""
    )
    return path


def key(call: str) -> str:
    """What a call does: `network create`, `container inspect`, `start`..."""
    words = call.split()
    if words and words[0] in ("network", "container", "image", "volume"):
        return " ".join(words[:2])
    return words[0] if words else ""


def signatures(calls: Sequence[str]) -> List[Tuple[str, int]]:
    """Each call as (key, its occurrence among the calls with that key)."""
    seen: Counter[str] = Counter()
    out: List[Tuple[str, int]] = []
    for call in calls:
        seen[key(call)] += 1
        out.append((key(call), seen[key(call)]))
    return out


class ComposeSweep(CrashSweep):
    """The crash sweep between two releases of a Compose project; `problems` also
    compares the project with the snapshot taken when v1 was deployed."""

    def __init__(
        self, rig: Rig, artifacts: Tuple[Path, Path], images: Tuple[str, str], project: str
    ) -> None:
        super().__init__(rig, artifacts, images)
        self.project = project
        self.snapshot: Optional[Dict[str, object]] = None
        # the calls never cut: (scenario, when, signature)
        self.missed: List[Tuple[str, str, Tuple[str, int]]] = []

    # -- the project on the engine ---------------------------------------------------
    def names(self, kind: str) -> Dict[str, str]:
        """The project's networks or volumes, name -> ID (network) or creation time
        (volume). By name, not label: an unlabelled leftover counts too."""
        fmt = "{{.Name}}"
        listed = self.rig.engine.run(kind, "ls", "--format", fmt).stdout.split()
        mine = sorted(n for n in listed if n.startswith(f"{self.project}_"))
        if not mine:
            return {}
        field = "{{.Id}}" if kind == "network" else "{{.CreatedAt}}"
        out = self.rig.engine.run(kind, "inspect", "--format", field, *mine).stdout.splitlines()
        return dict(zip(mine, out))

    def project_state(self) -> Dict[str, object]:
        engine = self.rig.engine
        label = f"com.docker.compose.project={self.project}"
        state: Dict[str, object] = {
            "networks": self.names("network"),
            "volumes": self.names("volume"),
            "project containers": sorted(engine.container_ids(label)),
        }
        running = {c.name: c.id for c in self.rig.containers(all_states=False)}
        state["running"] = running
        inspected = {name: engine.inspect(cid) for name, cid in running.items()}
        state["attached"] = {
            name: sorted(data["NetworkSettings"]["Networks"]) for name, data in inspected.items()
        }
        state["restart policies"] = {
            name: data["HostConfig"]["RestartPolicy"]["Name"] for name, data in inspected.items()
        }
        # read through a running api container (by its service: it may be renamed)
        api = [
            data["Id"] for data in inspected.values()
            if data["Config"]["Labels"].get("com.docker.compose.service") == "api"
        ]  # fmt: skip
        log = engine.run("exec", api[0], "cat", "/data/log", check=False) if api else None
        lines = log.stdout.splitlines() if log is not None and log.returncode == 0 else []
        state["volume data"] = lines[:1]  # what v1 wrote first; later starts append
        return state

    def base(self) -> List[str]:
        running = self.rig.containers(all_states=False)
        if len(running) != 2 or any(c.image != self.v1 for c in running):
            self.must("install", self.a1)
            self.must("commit")
            running = self.rig.containers(all_states=False)
            self.snapshot = None
        if self.snapshot is None:
            self.snapshot = self.project_state()
        return sorted(c.id for c in running)

    def problems(self, want_running: Sequence[str], gone_image: str) -> List[str]:
        found = super().problems(want_running, gone_image)
        if gone_image != self.v2 or self.snapshot is None:
            return found  # (a committed v2: not swept here)
        now = self.project_state()
        for what, want in self.snapshot.items():
            if now[what] != want:
                found.append(f"{what} {now[what]}, expected {want}")
        return found

    def progress(self, point: Point, target: Tuple[str, int], seconds: float) -> None:
        """One line per crash point (pytest shows them with -s, or when a test fails)."""
        print(f"mender {self.rig.device.client} {point.scenario}: SIGKILL {point.when} "
              f"{target[0]} #{target[1]}, call {point.number}: {point.outcome} "
              f"({seconds:.1f} s) {point.call[:50]}")  # fmt: skip
        for wrong in point.immediate:
            print(f"    right after the client: {wrong}")

    # -- aiming at calls -------------------------------------------------------------
    def sweep_calls(
        self,
        scenario: str,
        whens: Sequence[str] = ("before",),
        only: Sequence[str] = (),
    ) -> List[Point]:
        """A crash point at every call of the clean run (if `only` is given: the calls
        with a key in it, or named in it as `KEY #N`, the N-th call with that key), each
        aimed at by its signature: see the module docstring."""
        if scenario not in self.counted:
            before = self.base()
            self.counted[scenario] = self.count(scenario)
            trouble = self.problems(before, self.v2)  # the clean run, rolled back
            assert not trouble, f"after a clean {scenario} and its rollback: {trouble}"
        calls = self.counted[scenario]
        targets = signatures(calls)
        points: List[Point] = []
        for when in whens:
            for number, target in enumerate(targets, 1):
                if only and target[0] not in only and f"{target[0]} #{target[1]}" not in only:
                    continue
                guess = number
                for _ in range(ATTEMPTS):
                    started = time.monotonic()
                    point = self.run_point(scenario, guess, when)
                    points.append(point)
                    reached = signatures(self.last_calls)
                    self.progress(point, target, time.monotonic() - started)
                    if target[0] == POLL or (
                        point.outcome != NOT_REACHED
                        and len(reached) >= guess
                        and reached[guess - 1] == target
                    ):
                        break
                    where = [i for i, s in enumerate(reached, 1) if s == target]
                    guess = where[0] if where else guess + 1
                else:
                    self.missed.append((scenario, when, target))
        return points


@pytest.fixture
def compose_sweep(
    mender_device: MenderDevice,
    image_factory: ImageFactory,
    registry: Registry,
    private_dockerd: PrivateDockerd,
    packed_module: Path,
    tmp_path: Path,
) -> Iterator[ComposeSweep]:
    images = sweep_images(image_factory, unique("rel/compose"))
    project = unique("crash").lower()
    rig = Rig(mender_device, image_factory, tmp_path / "rig", packed_module, private_dockerd.cli())
    artifacts = []
    for release, image, networks in (("v1", images[0], ["front"]),
                                     ("v2", images[1], ["front", "back"])):  # fmt: skip
        path = compose_file(rig.work, release, image, networks)
        artifacts.append(
            rig.artifact(release, extra=["--compose", str(path), "--project-name", project])
        )
    sweep = ComposeSweep(rig, (artifacts[0], artifacts[1]), images, project)
    try:
        yield sweep
    finally:
        rig.cleanup()
        engine = rig.engine
        # what a project leaves: its containers (above), networks, volumes, images
        left = engine.container_ids(f"com.docker.compose.project={project}")
        engine.remove_containers(*left)
        for kind in ("network", "volume"):
            names = list(sweep.names(kind))
            if names:
                engine.run(kind, "rm", *names, check=False)
        for ref in images:
            rig.remove_image(ref)


def covered(
    sweep: ComposeSweep, scenario: str, points: Sequence[Point], only: Sequence[str] = ()
) -> None:
    """Every call of the clean run (with a key in `only`, if given) but the health polls
    was cut, under each SIGKILL mode."""
    assert not sweep.missed, f"calls never cut: {sweep.missed}"
    wanted = {key(c) for c in sweep.counted[scenario]} - {POLL}
    if only:
        wanted &= {name.split(" #")[0] for name in only}
    for when in {p.when for p in points}:
        cut = {key(p.call) for p in points if p.when == when and p.outcome != NOT_REACHED}
        assert wanted <= cut, (when, wanted - cut)


def clients(*subset: str) -> pytest.MarkDecorator:
    """The clients a test runs on: all under RELIABILITY_FULL, else `subset`."""
    chosen = CLIENTS if FULL else subset
    ids = [f"mender-{c}" for c in chosen]
    return pytest.mark.parametrize("mender_device", chosen, indirect=True, ids=ids)


@clients("5.1")
def test_sigkill_at_every_engine_call_of_a_compose_install(compose_sweep: ComposeSweep) -> None:
    """Before every call (and after every call, with RELIABILITY_FULL). On 5.1 only in
    CI (time): the module is the one killed, and both clients then run
    ArtifactRollback, ArtifactFailure and Cleanup alike (the single-image sweep: the
    same outcomes on both)."""
    points = compose_sweep.sweep_calls("install", ("before",))
    if FULL:
        points += compose_sweep.sweep_calls("install", ("after",))
    calls = compose_sweep.counted["install"]
    # the sweep really covers a Compose switch: every one of these occurs in it
    verbs = {"network create", "network connect", "rename", "create", "update", "stop", "start"}
    assert verbs <= {key(c) for c in calls}, calls
    assert [key(c) for c in calls].count("network connect") == 2, calls  # both services
    check_points(points, RESTORED)
    covered(compose_sweep, "install", [p for p in points if p.when == "before"])
    if FULL:
        covered(compose_sweep, "install", [p for p in points if p.when == "after"])


@clients("5.1")
def test_compose_client_killed_with_the_module(compose_sweep: ComposeSweep) -> None:
    """The client dies with the module (power cut): 5.1's `resume` rolls back at once;
    3.4 forgets the deployment and the next one (install v2 again, roll it back) must
    undo it first."""
    only = () if FULL else ("network create", "stop #1", "start #1", "start #2")
    points = compose_sweep.sweep_calls("install+client", ("before",), only=only)
    expected = NEXT_DEPLOYMENT if compose_sweep.rig.device.client == "3.4" else RESTORED
    check_points(points, expected)
    covered(compose_sweep, "install+client", points, only)


if FULL:  # collected only for the full sweep: CI has no skipped test to misread

    def test_sigkill_at_every_engine_call_of_a_compose_rollback(
        compose_sweep: ComposeSweep,
    ) -> None:
        points = compose_sweep.sweep_calls("rollback", ("before", "after"))
        assert "network rm" in {key(c) for c in compose_sweep.counted["rollback"]}
        check_points(points, RESTORED)
        covered(compose_sweep, "rollback", points)

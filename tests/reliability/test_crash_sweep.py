"""The crash sweep in CI: SIGKILL the module at every engine call of a state, with the
real Mender client, our packed module and a real dockerd (see sweep.py).

The full sweep (also SIGKILL after each call, and the client killed with the module)
is `python -m tests.reliability.crash_sweep`; docs/RELIABILITY.md has its tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Sequence

import pytest

from tests.realstack import ImageFactory, MenderDevice, Registry, unique
from tests.reliability.harness import Rig, sweep_images
from tests.reliability.private_engine import PrivateDockerd
from tests.reliability.sweep import NEXT_DEPLOYMENT, NOT_REACHED, RESTORED, CrashSweep, Point


@pytest.fixture
def crash_sweep(
    mender_device: MenderDevice,
    image_factory: ImageFactory,
    registry: Registry,
    private_dockerd: PrivateDockerd,
    packed_module: Path,
    tmp_path: Path,
) -> Iterator[CrashSweep]:
    images = sweep_images(image_factory, unique("rel/app"))
    rig = Rig(mender_device, image_factory, tmp_path / "rig", packed_module, private_dockerd.cli())
    sweep = CrashSweep(rig, (rig.artifact("v1", images[0]), rig.artifact("v2", images[1])), images)
    try:
        yield sweep
    finally:
        rig.cleanup()
        for ref in images:
            rig.remove_image(ref)


def check_points(points: Sequence[Point], expected: str) -> None:
    bad = [p for p in points if not p.good]
    assert not bad, "\n".join(f"{p.when} call {p.number} ({p.call}): {p.outcome}" for p in bad)
    # Only a health-gate poll may be missed: their number depends on timing.
    missed = [p for p in points if p.outcome == NOT_REACHED]
    assert all(p.call.startswith("container inspect") for p in missed), missed
    assert all(p.outcome in (expected, NOT_REACHED) for p in points), [
        (p.number, p.outcome) for p in points
    ]


def calls_named(calls: List[str], *verbs: str) -> List[str]:
    """The calls running one of these docker commands."""
    return [c for c in calls if c.split()[0] in verbs]


MUTATING = ("update", "stop", "rename", "create", "run", "rm", "rmi", "start")


def test_sigkill_at_every_engine_call_of_artifact_install(crash_sweep: CrashSweep) -> None:
    points = crash_sweep.sweep("install", ("before",))
    calls = crash_sweep.counted["install"]
    # the sweep really covers every dangerous call: each verb below occurs in it
    verbs = {"update", "rename", "create", "stop", "start"}
    assert verbs <= {c.split()[0] for c in calls}, calls
    assert len(points) == len(calls)
    check_points(points, RESTORED)
    # killed right after a call that changed something (the rest: crash_sweep.py)
    check_points(crash_sweep.sweep("install", ("after",), only=MUTATING), RESTORED)


def test_sigkill_at_every_engine_call_of_artifact_rollback(crash_sweep: CrashSweep) -> None:
    points = crash_sweep.sweep("rollback", ("before",))
    assert calls_named(crash_sweep.counted["rollback"], "rm", "rename", "start")
    check_points(points, RESTORED)


def test_sigkill_in_cleanup_after_a_failure(
    crash_sweep: CrashSweep,
) -> None:
    """The client does not run Cleanup again: the next deployment must finish it."""
    points = crash_sweep.sweep("cleanup-failure", ("before",), only=MUTATING)
    assert {p.call.split()[0] for p in points} == {"rm", "rmi"}, points
    check_points(points, NEXT_DEPLOYMENT)
    # only leftovers wait for the next deployment: the old containers run at once
    assert all(p.containers_right_away for p in points), [p.immediate for p in points]


def test_sigkill_in_cleanup_after_a_commit(crash_sweep: CrashSweep) -> None:
    points = crash_sweep.sweep("cleanup-commit", ("before",), only=MUTATING)
    assert {p.call.split()[0] for p in points} == {"rm", "rmi"}, points
    check_points(points, NEXT_DEPLOYMENT)
    assert all(p.containers_right_away for p in points), [p.immediate for p in points]


def test_artifact_commit_makes_no_engine_call(crash_sweep: CrashSweep) -> None:
    """Nothing to cut: ArtifactCommit only writes the journal (atomically)."""
    assert crash_sweep.sweep("commit") == []
    assert crash_sweep.counted["commit"] == []


def test_client_killed_with_the_module(crash_sweep: CrashSweep) -> None:
    """Mender 3.4 standalone forgets an install it was killed in (`mender rollback`:
    "nothing to commit"); the next `mender install` must put the old state back first.
    5.x keeps it: `commit` is refused ("Cannot commit from this state") and
    `mender-update resume` rolls it back at once."""
    only = ("rename", "create", "stop", "start")
    points = crash_sweep.sweep("install+client", ("before",), only=only)
    assert len(points) == 4, points
    log = "\n".join(crash_sweep.log)
    if crash_sweep.rig.device.client == "3.4":
        check_points(points, NEXT_DEPLOYMENT)
        assert "There is nothing to commit" in log, log
    else:
        check_points(points, RESTORED)
        assert "mender-update resume -> 0" in log and "Cannot commit from this state" in log, log

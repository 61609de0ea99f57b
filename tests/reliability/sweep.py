"""The crash sweep: SIGKILL the module at each engine call of a state, then let the
real Mender client carry on, and check the device ends in a good state.

A scenario is a protocol state plus how the client gets there:

    install          `mender install v2` is cut in ArtifactInstall
    install+client   the same, but the Mender client dies with the module. 3.4
                     (standalone) then forgets the deployment, so the next
                     deployment (`mender install v2` again) must undo it; 5.x keeps
                     it in its database and `mender-update resume` rolls it back
    rollback         `mender install v2`, then `mender rollback` is cut in ArtifactRollback
    cleanup-failure  `mender install v2`, then `mender rollback` is cut in Cleanup
    commit           `mender install v2`, then `mender commit` is cut in ArtifactCommit
    cleanup-commit   `mender install v2`, then `mender commit` is cut in Cleanup

Good state, right after the client finished (outcome "restored"), or else after
the next deployment (outcome "next deployment"): the containers that should run
do, with the same IDs; no other container of ours exists (any state); the image
of the abandoned deployment is gone; the journal parses and its phase is final.
Anything else is a failure, with the reason.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tests.reliability.harness import Rig, client_log

SCENARIOS: Dict[str, str] = {
    "install": "ArtifactInstall",
    "install+client": "ArtifactInstall",
    "rollback": "ArtifactRollback",
    "cleanup-failure": "Cleanup",
    "commit": "ArtifactCommit",
    "cleanup-commit": "Cleanup",
}
FINAL_PHASES = ("failed", "cleaned")
RESTORED = "restored"
NEXT_DEPLOYMENT = "next deployment"
NOT_REACHED = "not reached"


@dataclass
class Point:
    scenario: str
    when: str  # before | after the engine command ran
    number: int
    call: str  # the engine call the module died at
    outcome: str  # RESTORED, NEXT_DEPLOYMENT, NOT_REACHED, or "BAD: why"
    immediate: List[str] = field(default_factory=list)  # what was wrong right after the client

    @property
    def containers_right_away(self) -> bool:
        """The right containers ran as soon as the client finished (leftovers aside)."""
        return not any(t.startswith("running ") for t in self.immediate)

    @property
    def good(self) -> bool:
        return not self.outcome.startswith("BAD")


class CrashSweep:
    """Drives one rig between two artifacts: v1 (the device's state) and v2 (the update)."""

    def __init__(self, rig: Rig, artifacts: Tuple[Path, Path], images: Tuple[str, str]) -> None:
        self.rig = rig
        self.a1, self.a2 = artifacts
        self.v1, self.v2 = images
        self.log: List[str] = []  # client output of the last point, for failure messages
        self.last_calls: List[str] = []
        self.counted: Dict[str, List[str]] = {}  # scenario -> calls of its clean run

    # -- the client ------------------------------------------------------------------
    def client(self, action: str, artifact: Optional[Path] = None) -> int:
        device = self.rig.device
        if action == "install":
            assert artifact is not None
            proc: subprocess.CompletedProcess[str] = device.install(artifact)
        else:
            proc = {"commit": device.commit, "rollback": device.rollback,
                    "resume": device.resume}[action]()  # fmt: skip
        self.log.append(
            f"$ {device.binary} {action} -> {proc.returncode}\n{client_log(proc)[-3000:]}"
        )
        return proc.returncode

    def must(self, action: str, artifact: Optional[Path] = None) -> None:
        code = self.client(action, artifact)
        if code != 0:
            raise AssertionError(f"client {action} failed ({code}):\n{self.log[-1]}")

    # -- states ----------------------------------------------------------------------
    def base(self) -> List[str]:
        """Make v1 the deployed state (if it is not); return its running container IDs."""
        running = self.rig.containers(all_states=False)
        if not running or any(c.image != self.v1 for c in running):
            self.must("install", self.a1)
            self.must("commit")
            running = self.rig.containers(all_states=False)
        return sorted(c.id for c in running)

    def problems(self, want_running: Sequence[str], gone_image: str) -> List[str]:
        found: List[str] = []
        everything = self.rig.containers()
        running = sorted(c.id for c in everything if c.state == "running")
        if running != sorted(want_running):
            found.append(f"running {short(running)}, expected {short(want_running)}")
        extra = [c for c in everything if c.id not in want_running]
        if extra:
            found.append("leaked containers " + ", ".join(f"{c.name}({c.state})" for c in extra))
        if self.rig.image_present(gone_image):
            found.append(f"leaked image {gone_image.rsplit('/', 1)[-1][:40]}")
        try:
            phase = self.rig.journal_phase()
        except AssertionError as exc:
            return [*found, str(exc)]
        if phase not in FINAL_PHASES:
            found.append(f"journal phase {phase}")
        return found

    def run_point(self, scenario: str, kill_at: int, when: str = "before") -> Point:
        """One crash point (kill_at = 0: a clean run that only counts the calls)."""
        self.log = []
        state = SCENARIOS[scenario]
        base = self.base()
        if scenario != "install" and scenario != "install+client":
            self.must("install", self.a2)
        v2_ids = sorted(c.id for c in self.rig.containers(all_states=False))
        self.rig.arm(state, kill_at, when, kill_client=scenario == "install+client")
        action = {"ArtifactInstall": "install", "ArtifactRollback": "rollback"}.get(state)
        if scenario == "cleanup-failure":
            action = "rollback"
        self.client(action or "commit", self.a2 if action == "install" else None)
        calls = self.last_calls = self.rig.calls()
        killed = self.rig.killed()
        self.rig.arm("")
        call = calls[kill_at - 1] if 0 < kill_at <= len(calls) else ""
        point = Point(scenario, when, kill_at, call, NOT_REACHED)
        forgets = self.rig.device.client == "3.4"  # a killed 3.4 forgets its deployment
        if scenario == "install+client" and killed and forgets:
            # the client died too: it has nothing to roll back; the next deployment undoes
            point.immediate = self.problems(base, self.v2)
            self.client("rollback")
            self.must("install", self.a2)
            self.must("rollback")
        elif scenario == "install+client" and killed:
            # 5.x refuses anything else until `resume` has rolled the deployment back
            self.client("commit")
            self.must("resume")
        committed = scenario in ("commit", "cleanup-commit")
        if not killed:  # a clean run, or the call was not reached: nothing to check here
            point.outcome = "clean run" if not kill_at else NOT_REACHED
            if state == "ArtifactInstall":
                self.must("rollback")
            return point
        want, gone = (v2_ids, self.v1) if committed else (base, self.v2)
        trouble = self.problems(want, gone)
        if not trouble:
            later = scenario == "install+client" and forgets
            point.outcome = NEXT_DEPLOYMENT if later else RESTORED
            return point
        point.immediate = point.immediate or trouble
        first = "; ".join(trouble)
        self.recover(committed)
        want = self.base() if committed else base
        later = self.problems(want, self.v2)
        point.outcome = NEXT_DEPLOYMENT if not later else f"BAD: {first} / then {'; '.join(later)}"
        return point

    def recover(self, committed: bool) -> None:
        """The next deployment: v2 again and a rollback, or (after a commit) v1 again."""
        if committed:
            self.must("install", self.a1)
            self.must("commit")
        else:
            code = self.client("install", self.a2)
            if code == 0:
                self.must("rollback")

    def count(self, scenario: str) -> List[str]:
        """The engine calls of a clean run of the scenario's state."""
        self.run_point(scenario, 0)
        return self.last_calls

    def sweep(
        self,
        scenario: str,
        whens: Sequence[str] = ("before", "after"),
        progress: Optional[Callable[[Point], None]] = None,
        only: Sequence[str] = (),
    ) -> List[Point]:
        """Every crash point of the scenario (or those at the engine commands in `only`)."""
        calls = self.counted[scenario] = self.count(scenario)
        points: List[Point] = []
        for when in whens:
            for number in range(1, len(calls) + 1):
                if only and calls[number - 1].split()[0] not in only:
                    continue
                point = self.run_point(scenario, number, when)
                if not point.call:
                    point.call = calls[number - 1]
                points.append(point)
                if progress is not None:
                    progress(point)
        return points


def short(ids: Sequence[str]) -> str:
    return "[" + ", ".join(i[:12] for i in ids) + "]"

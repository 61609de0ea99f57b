"""Fixtures of the module tests."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from mender_docker.cli.main import main as cli_main
from mender_docker.module.deployment import FINAL, NEXT, Phase
from mender_docker.module.journal import Deployment, Journal, JournalStore


@pytest.fixture(scope="package")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The single-file module, built in-process by this interpreter (so the device-side
    run on Python 3.9 packs 3.9 bytecode)."""
    out = tmp_path_factory.mktemp("build") / "docker"
    assert cli_main(["build-module", "-o", str(out)]) == 0
    return out


def phase_change_problem(before: Optional[Deployment], after: Optional[Deployment]) -> str:
    """Why the journal may not go from `before` to `after` (deployment.NEXT), or ''."""
    if after is None:
        return "a save without a deployment"
    if before is None or before.id != after.id:
        if after.phase != Phase.DOWNLOADING:
            return f"a new deployment starts {after.phase}"
        if before is not None and before.phase not in FINAL:
            return f"a new deployment replaces one that is {before.phase}"
        return ""
    if after.phase != before.phase and after.phase not in NEXT[before.phase]:
        return f"{before.phase} -> {after.phase}"
    return ""


@pytest.fixture
def phases_follow_the_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[List[str]]:
    """Check every journal write against the phase table; yields the phases written."""
    real_save = JournalStore.save
    written: List[str] = []

    def save(store: JournalStore, journal: Journal) -> None:
        before = store.load().deployment
        problem = phase_change_problem(before, journal.deployment)
        assert not problem, f"journal phase change not in deployment.NEXT: {problem}"
        if journal.deployment is not None:
            written.append(journal.deployment.phase.value)
        real_save(store, journal)

    monkeypatch.setattr(JournalStore, "save", save)
    yield written

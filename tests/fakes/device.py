"""A device for state-machine tests: a file tree, a journal dir, a fake engine and clock."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional

from mender_docker.module.config import Config
from mender_docker.module.context import Context
from mender_docker.module.journal import Journal, JournalStore
from mender_docker.module.main import STATES
from tests.fakes.engine import FakeEngine


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Device:
    def __init__(self, root: Path, **config: Any) -> None:
        self.root = root
        self.engine = FakeEngine(data_root_dir=str(root))
        self.clock = FakeClock()
        defaults: Dict[str, Any] = {"health_window": 1.0, "health_timeout": 10.0}
        defaults.update(config)
        self.config = replace(Config(), data_dir=str(root / "data"), **defaults)
        self.store = JournalStore(self.config.journal_dir)
        self.tree = root / "tree-0"
        self._trees = 0

    def new_deployment(self, artifact: str, metadata: Dict[str, Any]) -> Path:
        """A fresh file tree, as the client makes one per deployment."""
        self._trees += 1
        self.tree = self.root / f"tree-{self._trees}"
        (self.tree / "header").mkdir(parents=True)
        (self.tree / "tmp").mkdir()
        (self.tree / "header" / "artifact_name").write_text(artifact + "\n")
        (self.tree / "header" / "meta-data").write_text(json.dumps(metadata))
        return self.tree

    def context(self) -> Context:
        return Context(
            config=self.config,
            engine=self.engine,
            store=self.store,
            tree=str(self.tree),
            clock=self.clock,
            sleep=self.clock.sleep,
        )

    def run(self, *states: str) -> None:
        for state in states:
            STATES[state](self.context())

    def journal(self) -> Journal:
        return self.store.load()

    def deploy(self, artifact: str, containers: List[str], **meta: Any) -> None:
        """A whole successful deployment."""
        self.new_deployment(artifact, {"containers": containers, "run_args": "", **meta})
        self.run("Download", "ArtifactInstall", "ArtifactCommit", "Cleanup")

    def journal_text(self) -> Optional[str]:
        path = os.path.join(self.config.journal_dir, "journal.json")
        return Path(path).read_text() if os.path.exists(path) else None

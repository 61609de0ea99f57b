"""What every state handler gets: configuration, engine, journal and the file tree."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from mender_docker.atomicfile import write_atomic
from mender_docker.module.config import Config
from mender_docker.module.engine import ContainerEngine
from mender_docker.module.errors import DeploymentError
from mender_docker.module.journal import JournalStore
from mender_docker.spec import DockerMetadata, MetadataError, PlannedContainer, parse_metadata_json

DEPLOYMENT_ID_FILE = "mender-docker-deployment"


@dataclass
class Context:
    config: Config
    engine: ContainerEngine
    store: JournalStore
    tree: str  # the FILE_TREE_DIR the client passed
    clock: Callable[[], float] = field(default=time.monotonic)
    sleep: Callable[[float], None] = field(default=time.sleep)

    def label(self, key: str) -> str:
        return self.config.label(key)

    def read_metadata(self) -> DockerMetadata:
        path = os.path.join(self.tree, "header", "meta-data")
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise MetadataError(f"no meta-data in the file tree ({path})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise MetadataError(f"cannot read meta-data {path}: {exc}") from None
        return parse_metadata_json(text if text.strip() else "{}")

    def plan(self, meta: DockerMetadata) -> List[PlannedContainer]:
        """The containers to run, their arguments parsed for this device's engine."""
        return meta.plan(self.config.engine_kind, self.config.label_namespace)

    def mender_dirs(self) -> List[str]:
        """The Mender client's own directories on this device: its data directory as
        the file tree shows it (<data>/modules/v3/payloads/NNNN/tree), and those its
        environment names (5.x: MENDER_DATA_DIR, MENDER_CONF_DIR). A container that
        reaches them can forge the client's state or read its keys."""
        found = [os.environ.get(name, "") for name in ("MENDER_DATA_DIR", "MENDER_CONF_DIR")]
        parts = os.path.abspath(self.tree).split(os.sep)
        if len(parts) > 6 and parts[-5:-2] == ["modules", "v3", "payloads"]:
            found.append(os.sep.join(parts[:-5]) or os.sep)
        return [path for path in dict.fromkeys(found) if path.startswith("/")]

    def artifact_name(self) -> str:
        try:
            with open(os.path.join(self.tree, "header", "artifact_name"), encoding="utf-8") as f:
                return f.read().strip() or "unknown"
        except OSError:
            return "unknown"

    def deployment_id(self, create: bool = False, fresh: bool = False) -> Optional[str]:
        """The id of this deployment, kept in the tree's tmp/ (the client keeps it until
        the deployment ends, across reboots); the journal is matched against it."""
        directory = os.path.join(self.tree, "tmp")
        path = os.path.join(directory, DEPLOYMENT_ID_FILE)
        if not fresh:
            try:
                with open(path, encoding="utf-8") as handle:
                    value = handle.read().strip()
                if value:
                    return value
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise DeploymentError(f"cannot read {path}: {exc}") from None
        if not (create or fresh):
            return None
        value = uuid.uuid4().hex
        try:
            os.makedirs(directory, exist_ok=True)
            write_atomic(path, value.encode() + b"\n")
        except OSError as exc:
            raise DeploymentError(f"cannot write {path}: {exc}") from None
        return value

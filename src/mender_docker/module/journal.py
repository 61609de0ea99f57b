"""The persistent journal: what a deployment changed, written before each change.

One JSON file, `journal.json` in the data directory, replaced atomically
(temp file, fsync, os.replace, fsync of the directory): after a power cut it
holds either the old or the new content, never a mix.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional

from mender_docker.module.errors import JournalError

FILE_NAME = "journal.json"
FORMAT_VERSION = 1

# Phases of a deployment, in the order they normally happen.
DOWNLOADING = "downloading"
DOWNLOADED = "downloaded"
INSTALLING = "installing"
INSTALLED = "installed"
COMMITTED = "committed"
ROLLING_BACK = "rolling-back"
ROLLED_BACK = "rolled-back"
CLEANED = "cleaned"  # committed and cleaned up: the normal end
FAILED = "failed"  # rolled back (or never installed) and cleaned up


@dataclass
class Deployment:
    """One deployment: enough to undo it at any point, or to finish it."""

    id: str
    artifact: str
    phase: str = DOWNLOADING
    tree: str = ""
    scope: str = "all"
    images: List[str] = field(default_factory=list)  # refs this deployment runs
    pulled: List[str] = field(default_factory=list)  # refs that were absent before it
    planned: List[Dict[str, str]] = field(default_factory=list)  # name, image, config_hash
    # running containers in scope before the install: id, name, restart_policy, managed
    previous: List[Dict[str, Any]] = field(default_factory=list)
    kept: List[str] = field(default_factory=list)  # previous ids left running as they were
    stopped: List[str] = field(default_factory=list)  # previous ids the install stops
    renamed: List[Dict[str, str]] = field(default_factory=list)  # id, from, to
    created: List[str] = field(default_factory=list)  # ids of new containers
    networks: List[str] = field(default_factory=list)  # the networks the release uses
    networks_created: List[str] = field(default_factory=list)  # made by this deployment

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Deployment:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Journal:
    deployment: Optional[Deployment] = None
    # images of previous committed deployments, candidates for removal after a commit
    previous_images: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "deployment": asdict(self.deployment) if self.deployment else None,
            "previous_images": list(self.previous_images),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Journal:
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise ValueError("not a version 1 journal")
        raw = data.get("deployment")
        return cls(
            deployment=Deployment.from_dict(raw) if isinstance(raw, dict) else None,
            previous_images=[str(ref) for ref in data.get("previous_images") or []],
        )


class JournalStore:
    """Reads and atomically replaces the journal file in `directory`."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, FILE_NAME)

    def load(self) -> Journal:
        try:
            with open(self.path, encoding="utf-8") as handle:
                return Journal.from_dict(json.load(handle))
        except FileNotFoundError:
            return Journal()
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise JournalError(f"cannot read journal {self.path}: {exc}") from None

    def save(self, journal: Journal) -> None:
        data = json.dumps(journal.to_dict(), indent=1, sort_keys=True).encode() + b"\n"
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            write_atomic(self.path, data)
        except OSError as exc:
            raise JournalError(f"cannot write journal {self.path}: {exc}") from None


def write_atomic(path: str, data: bytes, mode: Optional[int] = None) -> None:
    """Write `data` to `path` so that a crash leaves the old or the new file, whole."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=".mender-docker-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)

"""The persistent journal: what a deployment changed, written before each change.

One JSON file, `journal.json` in the data directory, replaced atomically
(temp file, fsync, os.replace, fsync of the directory): after a power cut it
holds either the old or the new content, never a mix. Its deployment record
(`Deployment`, with `PreviousContainer` and `Rename` entries) keeps the JSON keys
of the released module; the phases and what each leaves here: module/deployment.py.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, FrozenSet, List, Mapping, Optional

from mender_docker.atomicfile import write_atomic
from mender_docker.module.deployment import Phase
from mender_docker.module.errors import JournalError

FILE_NAME = "journal.json"
FORMAT_VERSION = 1
# Deployment keys added after the first release (module/volumes.py, module/snapshots.py)
LATER_KEYS = ("inherited", "orphan_volumes", "snapshots")


@dataclass
class PreviousContainer:
    """A container in scope that ran before the install, as it was."""

    id: str
    name: str
    restart_policy: str
    managed: bool

    def to_dict(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "restart_policy": self.restart_policy,
            "managed": self.managed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreviousContainer:
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            restart_policy=str(data["restart_policy"]),
            managed=bool(data.get("managed", False)),
        )


@dataclass
class Rename:
    """A container the install renamed out of the way of a new one."""

    id: str
    from_name: str  # "from" in the JSON
    to: str

    def to_dict(self) -> Dict[str, Any]:
        return {"id": self.id, "from": self.from_name, "to": self.to}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rename:
        return cls(id=str(data["id"]), from_name=str(data["from"]), to=str(data["to"]))


@dataclass
class Deployment:
    """One deployment: enough to undo it at any point, or to finish it (what each
    phase leaves here: module/deployment.py)."""

    id: str
    artifact: str
    phase: Phase = Phase.DOWNLOADING
    tree: str = ""
    scope: str = "all"
    images: List[str] = field(default_factory=list)  # refs this deployment runs
    pulled: List[str] = field(default_factory=list)  # refs that were absent before it
    planned: List[Dict[str, str]] = field(default_factory=list)  # name, image, config_hash
    # running containers in scope before the install
    previous: List[PreviousContainer] = field(default_factory=list)
    kept: List[str] = field(default_factory=list)  # previous ids left running as they were
    stopped: List[str] = field(default_factory=list)  # previous ids the install stops
    renamed: List[Rename] = field(default_factory=list)
    created: List[str] = field(default_factory=list)  # ids of new containers
    networks: List[str] = field(default_factory=list)  # the networks the release uses
    networks_created: List[str] = field(default_factory=list)  # made by this deployment
    # anonymous volumes the new containers take over: container, volume, destination, from
    inherited: List[Dict[str, str]] = field(default_factory=list)
    # anonymous volumes of containers this deployment removes, recorded before the
    # removal: each is removed once no container uses it (never an inherited one)
    orphan_volumes: List[str] = field(default_factory=list)
    # volume snapshots (module/snapshots.py): volume, mountpoint, state
    snapshots: List[Dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.phase = Phase(self.phase)  # a bare string (JSON, callers) becomes the enum

    def to_dict(self) -> Dict[str, Any]:
        """The JSON form; the keys are those the released module wrote."""
        data: Dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            data[f.name] = list(value) if isinstance(value, list) else value
        data["phase"] = self.phase.value
        data["planned"] = [dict(entry) for entry in self.planned]
        data["inherited"] = [dict(entry) for entry in self.inherited]
        data["snapshots"] = [dict(entry) for entry in self.snapshots]
        for key in LATER_KEYS:  # absent when empty: a released module's journal stays the same
            if not data[key]:
                del data[key]
        data["previous"] = [entry.to_dict() for entry in self.previous]
        data["renamed"] = [entry.to_dict() for entry in self.renamed]
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Deployment:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["previous"] = [PreviousContainer.from_dict(p) for p in data.get("previous") or []]
        values["renamed"] = [Rename.from_dict(r) for r in data.get("renamed") or []]
        return cls(**values)


@dataclass
class Journal:
    deployment: Optional[Deployment] = None
    # images of previous committed deployments, candidates for removal after a commit
    previous_images: List[str] = field(default_factory=list)
    # the containers of the release that runs; None in a journal of a module before it
    owned: Optional[List[str]] = None

    def to_dict(self) -> Dict[str, Any]:
        data = {
            "version": FORMAT_VERSION,
            "deployment": self.deployment.to_dict() if self.deployment else None,
            "previous_images": list(self.previous_images),
        }
        if self.owned is not None:  # an older journal saves as it was written
            data["owned"] = list(self.owned)
        return data

    def release_containers(self) -> Optional[List[str]]:
        """The containers of the release that runs, as this installation recorded
        them; from an older journal, what its last deployment says (None when it
        says nothing: labels decide until the next deployment records it)."""
        if self.owned is not None:
            return list(self.owned)
        d = self.deployment
        if d is None or not (d.created or d.kept or d.previous):
            return None
        if d.phase in (Phase.CLEANED, Phase.COMMITTED):
            return [*d.created, *d.kept]
        return [*d.kept, *(p.id for p in d.previous if p.managed)]

    def ours(self) -> Optional[FrozenSet[str]]:
        """Every container this installation deployed and may still hold: the
        running release's and the journal's deployment's (None: see above)."""
        release = self.release_containers()
        d = self.deployment
        if d is None:
            return None if release is None else frozenset(release)
        mine = [*d.created, *d.kept, *(p.id for p in d.previous if p.managed)]
        if release is None and not mine:
            return None
        return frozenset([*(release or ()), *mine])

    @classmethod
    def from_dict(cls, data: Any) -> Journal:
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise ValueError("not a version 1 journal")
        raw = data.get("deployment")
        owned = data.get("owned")
        return cls(
            deployment=Deployment.from_dict(raw) if isinstance(raw, dict) else None,
            previous_images=[str(ref) for ref in data.get("previous_images") or []],
            owned=[str(i) for i in owned] if isinstance(owned, list) else None,
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

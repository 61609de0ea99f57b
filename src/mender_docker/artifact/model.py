"""Pure data: what an artifact is made of (to write) and what one was found to hold (read)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Dict, List, Optional, Tuple, Union

# type-info depends values are strings or lists of strings.
ProvideValue = Union[str, List[str]]
# meta-data top-level values: strings, numbers, or lists of strings and numbers.
MetaValue = Union[str, int, float, List[Union[str, int, float]]]


@dataclass
class ArtifactSpec:
    """Everything the header of a one-payload artifact says."""

    artifact_name: str
    device_types: List[str]
    payload_type: Optional[str]  # None: a bootstrap artifact (no payload, type null)
    artifact_group: Optional[str] = None
    # Extra header-info artifact_depends keys ("artifact_name", "artifact_group", ...).
    artifact_depends: Dict[str, List[str]] = field(default_factory=dict)
    # type-info artifact_provides: strings only (mender-artifact 3.9 refuses lists).
    provides: Dict[str, str] = field(default_factory=dict)
    # type-info artifact_depends: strings or lists of strings.
    depends: Dict[str, ProvideValue] = field(default_factory=dict)
    clears_provides: List[str] = field(default_factory=list)
    meta_data: Optional[Dict[str, Any]] = None
    # State scripts as (name, content), e.g. ("ArtifactInstall_Enter_00", b"#!/bin/sh ...").
    scripts: List[Tuple[str, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class PayloadFile:
    """One payload file: its name in the data tar, its exact size and how to read it.

    The writer calls `open` once and reads the stream to its end, hashing as it
    goes; a given `sha256` is checked against what was read.
    """

    name: str
    size: int
    open: Callable[[], IO[bytes]]
    sha256: Optional[str] = None

    @classmethod
    def from_path(cls, path: str, name: Optional[str] = None,
                  sha256: Optional[str] = None) -> PayloadFile:
        import os

        size = os.stat(path).st_size
        return cls(name=name or os.path.basename(path), size=size,
                   open=lambda: open(path, "rb"), sha256=sha256)

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> PayloadFile:
        import io

        return cls(name=name, size=len(data), open=lambda: io.BytesIO(data),
                   sha256=hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class FileInfo:
    """A payload file or state script as found in an artifact."""

    name: str
    size: int
    sha256: str


@dataclass
class ArtifactInfo:
    """What `read_artifact` found; every checksum in it has been verified."""

    format: str
    version: int
    artifact_name: str
    artifact_group: Optional[str]
    device_types: List[str]
    artifact_depends: Dict[str, Any]
    payload_type: Optional[str]  # None: a bootstrap artifact (no payload)
    provides: Dict[str, Any]
    depends: Dict[str, Any]
    clears_provides: List[str]
    meta_data: Optional[Dict[str, Any]]
    scripts: List[FileInfo]
    script_contents: Dict[str, bytes]
    files: List[FileInfo]
    compression: str
    signed: bool
    signature_verified: bool
    header_info: Dict[str, Any]
    type_info: Dict[str, Any]
    manifest: Dict[str, str]

    def to_json(self) -> Dict[str, Any]:
        """A JSON-ready dict (script contents left out; their checksums are in)."""
        return {
            "format": self.format,
            "version": self.version,
            "artifact_name": self.artifact_name,
            "artifact_group": self.artifact_group,
            "device_types": list(self.device_types),
            "artifact_depends": self.artifact_depends,
            "payload_type": self.payload_type,
            "provides": self.provides,
            "depends": self.depends,
            "clears_provides": list(self.clears_provides),
            "meta_data": self.meta_data,
            "scripts": [vars(s).copy() for s in self.scripts],
            "files": [vars(f).copy() for f in self.files],
            "compression": self.compression,
            "signed": self.signed,
            "signature_verified": self.signature_verified,
            "header_info": self.header_info,
            "type_info": self.type_info,
            "manifest": dict(self.manifest),
        }

"""Build artifacts member by member, consistent unless told otherwise, to test the
reader against one defect at a time."""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from tests.artifact.helpers import Member, tar_bytes

HEADER_INFO = {"payloads": [{"type": "docker"}], "artifact_provides": {"artifact_name": "x"},
               "artifact_depends": {"device_type": ["dev1"]}}
TYPE_INFO = {"type": "docker", "artifact_provides": {"rootfs-image.docker.version": "x"}}


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Crafted:
    version: bytes = b'{"format":"mender","version":3}'
    header_files: List[Member] = field(default_factory=lambda: [
        ("header-info", json.dumps(HEADER_INFO).encode()),
        ("headers/0000/type-info", json.dumps(TYPE_INFO).encode()),
        ("headers/0000/meta-data", b'{"containers":[],"run_args":""}')])
    data_files: List[Member] = field(default_factory=lambda: [("a.bin", b"payload" * 100)])
    header_kinds: Optional[Dict[str, bytes]] = None
    data_kinds: Optional[Dict[str, bytes]] = None
    manifest_extra: List[Tuple[str, str]] = field(default_factory=list)
    manifest_drop: List[str] = field(default_factory=list)
    manifest_override: Optional[bytes] = None
    signature: Optional[bytes] = None

    def header_tar(self) -> bytes:
        return gz(tar_bytes(self.header_files, self.header_kinds))

    def data_tar(self) -> bytes:
        return gz(tar_bytes(self.data_files, self.data_kinds))

    def manifest(self) -> bytes:
        if self.manifest_override is not None:
            return self.manifest_override
        entries = {"version": sha(self.version), "header.tar.gz": sha(self.header_tar())}
        for name, data in self.data_files:
            entries[f"data/0000/{name}"] = sha(data)
        entries.update(dict(self.manifest_extra))
        for name in self.manifest_drop:
            entries.pop(name, None)
        return "".join(f"{entries[n]}  {n}\n" for n in sorted(entries)).encode()

    def members(self) -> List[Member]:
        out: List[Member] = [("version", self.version), ("manifest", self.manifest())]
        if self.signature is not None:
            out.append(("manifest.sig", self.signature))
        out += [("header.tar.gz", self.header_tar()), ("data/0000.tar.gz", self.data_tar())]
        return out

    def build(self, members: Optional[List[Member]] = None,
              kinds: Optional[Dict[str, bytes]] = None) -> bytes:
        return tar_bytes(members if members is not None else self.members(), kinds)


SYMLINK = tarfile.SYMTYPE
HARDLINK = tarfile.LNKTYPE
CHARDEV = tarfile.CHRTYPE
FIFO = tarfile.FIFOTYPE
DIRECTORY = tarfile.DIRTYPE

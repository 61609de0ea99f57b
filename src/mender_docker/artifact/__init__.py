"""A pure-Python Mender Artifact v3 library: read, verify, write, sign.

Knows nothing of docker. Depends on the standard library, plus `cryptography`
for signatures and `zstandard` for zstd, both imported only when used.

    write_artifact(path, ArtifactSpec(...), files=[PayloadFile(...)], compression="gzip",
                   signer=load_private_key("key.pem"))
    info = read_artifact(path, verify_key=load_public_key("key.pub"))
"""

from __future__ import annotations

from mender_docker.errors import ArtifactError, SignatureError

from .compression import COMPRESSIONS
from .headers import check_flat_meta_data
from .manifest import parse_manifest, serialise_manifest
from .model import ArtifactInfo, ArtifactSpec, FileInfo, PayloadFile
from .reader import ArtifactReader, Headers, iter_payloads, read_artifact
from .signing import load_private_key, load_public_key, sign_manifest, verify_manifest
from .writer import write_artifact

__all__ = [
    "COMPRESSIONS",
    "ArtifactError",
    "ArtifactInfo",
    "ArtifactReader",
    "ArtifactSpec",
    "FileInfo",
    "Headers",
    "PayloadFile",
    "SignatureError",
    "check_flat_meta_data",
    "iter_payloads",
    "load_private_key",
    "load_public_key",
    "parse_manifest",
    "read_artifact",
    "serialise_manifest",
    "sign_manifest",
    "verify_manifest",
    "write_artifact",
]

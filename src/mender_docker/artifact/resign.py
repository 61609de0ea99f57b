"""Sign an existing artifact (`mender-artifact sign`): the same members, a new manifest.sig.

Every member is copied as it is, in order, with a new `manifest.sig` right after
`manifest` (an old one is dropped: with `force` only, as mender-artifact). Unlike
mender-artifact, the copy is read back and verified (every checksum and the new
signature) before it replaces anything: we never sign what does not verify.
"""

from __future__ import annotations

import os
from typing import IO, Any, Optional

from mender_docker.atomicfile import atomic_file
from mender_docker.errors import ArtifactError, SignatureError

from .manifest import MAX_MANIFEST
from .reader import read_artifact
from .safetar import END_OF_ARCHIVE, check_member, member_header, padding
from .signing import sign_manifest
from .tarstream import TarStream

_CHUNK = 1 << 20


def sign_artifact(source: str, signer: Any, output: Optional[str] = None,
                  force: bool = False) -> None:
    """Sign `source` with the private key `signer`, into `output` (default: in place)."""
    target = output or source
    mode = os.stat(source).st_mode & 0o7777
    with open(source, "rb") as raw, atomic_file(target, mode) as out:
        _copy_signed(raw, out, signer, force)
        out.flush()
        out.seek(0)
        read_artifact(out, verify_key=signer.public_key())


def _copy_signed(raw: IO[bytes], out: IO[bytes], signer: Any, force: bool) -> None:
    tar = TarStream(raw, "artifact")
    buffer = bytearray(_CHUNK)
    signed = False
    while True:
        member = tar.next()
        if member is None:
            break
        name = check_member(member, "artifact")
        if name == "manifest.sig":
            if not force:
                raise SignatureError("the artifact is already signed; refusing to re-sign "
                                     "(use -f/--force)")
            continue
        out.write(member_header(name, member.size))
        if name == "manifest":
            manifest = tar.read_all(MAX_MANIFEST)
            out.write(manifest)
            out.write(padding(member.size))
            signature = sign_manifest(manifest, signer)
            out.write(member_header("manifest.sig", len(signature)))
            out.write(signature)
            out.write(padding(len(signature)))
            signed = True
            continue
        while True:
            count = tar.readinto(buffer)
            if not count:
                break
            out.write(memoryview(buffer)[:count])
        out.write(padding(member.size))
    if not signed:
        raise ArtifactError("not a Mender artifact: it has no manifest")
    out.write(END_OF_ARCHIVE)

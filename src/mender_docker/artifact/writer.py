"""Write a one-payload Mender Artifact v3, streaming, deterministic and atomic.

Layout (as mender-artifact 3.9): version, manifest, [manifest.sig],
header.tar<ext>, data/0000.tar<ext>; every tar header owned by 0/0, mode 0600
(scripts 0755), mtime 0, no user names; no tar record padding.

One pass over the payload: the manifest (before the data) lists each payload
file's sha256, but its length is known in advance (64 hex digits, two spaces, the
name, a newline per entry), and so is the signature's (RSA: the modulus size;
ECDSA P-256 and Ed25519: 64 bytes; all base64). So the manifest and manifest.sig
members are written as zero-filled placeholders of their exact size, the data tar
is streamed while each file is hashed (in a second thread: hashlib releases the GIL,
and so do the deflaters, in threads of their own, see compression), and then both
are filled in. The compressed data tar's size is unknown until it is written, so its
tar header is a placeholder patched the same way: no temp copy of a multi-GB
payload, each byte read once and written once. Only a non-seekable output
stream is spooled to a temp file first. A given `PayloadFile.sha256` is checked
against what was read; a file whose size differs from `PayloadFile.size` fails.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, Dict, Optional, Sequence, Union

from mender_docker.atomicfile import atomic_file
from mender_docker.errors import ArtifactError

from . import compression as comp
from .headers import build_header_files
from .manifest import serialise_manifest
from .model import ArtifactSpec, PayloadFile
from .safetar import BLOCK, END_OF_ARCHIVE, check_payload_name, member_header, padding
from .signing import sign_manifest

CHUNK = 1 << 20
VERSION = b'{"format":"mender","version":3}'
Output = Union[str, "os.PathLike[str]", IO[bytes]]


def write_artifact(out: Output, spec: ArtifactSpec, files: Sequence[PayloadFile] = (),
                   compression: str = "gzip", signer: Optional[Any] = None) -> None:
    """Write the artifact to a path (atomically) or to a binary stream."""
    ext = comp.suffix_of(compression)
    _check_files(files)
    if spec.payload_type is None and files:
        raise ArtifactError("a bootstrap artifact (no payload type) has no payload files")
    header = _header_tar(spec, compression)
    body = _Body(header, ext, files, compression, signer)
    if isinstance(out, (str, os.PathLike)):
        with atomic_file(os.fspath(out), 0o644) as handle:
            body.write(handle)
    elif _seekable(out):
        body.write(out)
    else:
        with tempfile.TemporaryFile() as spool:
            body.write(spool)
            spool.seek(0)
            while True:
                chunk = spool.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)


def _check_files(files: Sequence[PayloadFile]) -> None:
    seen = set()
    for f in files:
        check_payload_name(f.name, "writing")
        if f.name in seen:
            raise ArtifactError(f"payload file {f.name!r} given twice")
        seen.add(f.name)
        if f.size < 0:
            raise ArtifactError(f"payload file {f.name!r} has a negative size")
        if f.sha256 is not None and (len(f.sha256) != 64 or
                                     not all(c in "0123456789abcdefABCDEF" for c in f.sha256)):
            raise ArtifactError(f"payload file {f.name!r}: bad sha256 {f.sha256!r}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def _read_into(stream: IO[bytes], buffer: bytearray) -> int:
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        return int(readinto(buffer) or 0)
    chunk = stream.read(len(buffer))
    buffer[: len(chunk)] = chunk
    return len(chunk)


def _header_tar(spec: ArtifactSpec, compression: str) -> bytes:
    raw = io.BytesIO()
    with comp.open_writer(compression, raw) as tar:
        for name, content in build_header_files(spec):
            mode = 0o755 if name.startswith("scripts/") else 0o600
            tar.write(member_header(name, len(content), mode))
            tar.write(content)
            tar.write(padding(len(content)))
        tar.write(END_OF_ARCHIVE)
    return raw.getvalue()


class _Body:
    """The outer tar's members, streamed into a seekable output (see module doc)."""

    def __init__(self, header: bytes, ext: str, files: Sequence[PayloadFile],
                 compression: str, signer: Optional[Any]) -> None:
        self.header = header
        self.header_name = f"header.tar{ext}"
        self.data_name = f"data/0000.tar{ext}"
        self.files = files
        self.compression = compression
        self.signer = signer
        self.entries: Dict[str, str] = {"version": _sha256(VERSION),
                                        self.header_name: _sha256(header)}

    def _member(self, out: IO[bytes], name: str, content: bytes) -> int:
        """Write a member; return where its content starts."""
        out.write(member_header(name, len(content)))
        at = out.tell()
        out.write(content)
        out.write(padding(len(content)))
        return at

    def write(self, out: IO[bytes]) -> None:
        names = list(self.entries) + [f"data/0000/{f.name}" for f in self.files]
        manifest_size = sum(64 + 2 + len(name.encode("utf-8")) + 1 for name in names)
        self._member(out, "version", VERSION)
        manifest_at = self._member(out, "manifest", bytes(manifest_size))
        signature_at = signature_size = 0
        if self.signer is not None:
            signature_size = len(sign_manifest(b"length probe", self.signer))
            signature_at = self._member(out, "manifest.sig", bytes(signature_size))
        self._member(out, self.header_name, self.header)
        self._data(out)
        end = out.tell()
        manifest = serialise_manifest(self.entries)
        if len(manifest) != manifest_size:  # pragma: no cover - guarded by _check_files
            raise ArtifactError("internal error: manifest length changed")
        out.seek(manifest_at)
        out.write(manifest)
        if self.signer is not None:
            signature = sign_manifest(manifest, self.signer)
            if len(signature) != signature_size:  # pragma: no cover - fixed-size encodings
                raise ArtifactError("internal error: signature length changed")
            out.seek(signature_at)
            out.write(signature)
        out.seek(end)
        out.flush()

    def _data(self, out: IO[bytes]) -> None:
        start = out.tell()
        out.write(member_header(self.data_name, 0))  # placeholder, patched below
        with ThreadPoolExecutor(max_workers=1) as hasher:
            with comp.open_writer(self.compression, out) as tar:
                for f in self.files:
                    tar.write(member_header(f.name, f.size))
                    self.entries[f"data/0000/{f.name}"] = self._copy(f, tar, hasher)
                    tar.write(padding(f.size))
                tar.write(END_OF_ARCHIVE)
        end = out.tell()
        size = end - start - BLOCK
        out.seek(start)
        out.write(member_header(self.data_name, size))
        out.seek(end)
        out.write(padding(size))
        out.write(END_OF_ARCHIVE)

    def _copy(self, f: PayloadFile, tar: IO[bytes], hasher: ThreadPoolExecutor) -> str:
        """Stream one file into the data tar; its sha256, hashed alongside."""
        digest = hashlib.sha256()
        buffers = (bytearray(CHUNK), bytearray(CHUNK))
        total = 0
        pending: Optional[Future[None]] = None
        with f.open() as stream:
            for turn in itertools.count():
                buffer = buffers[turn % 2]  # the other one may still be being hashed
                n = _read_into(stream, buffer)
                if pending is not None:
                    pending.result()
                if not n:
                    break
                chunk = memoryview(buffer)[:n]
                pending = hasher.submit(digest.update, chunk)
                tar.write(chunk)
                total += n
                if total > f.size:
                    break
        if pending is not None:
            pending.result()
        if total != f.size:
            raise ArtifactError(f"payload file {f.name!r} is {total} bytes or more, not "
                                f"{f.size} as given (changed while being written?)")
        actual = digest.hexdigest()
        if f.sha256 is not None and actual != f.sha256.lower():
            raise ArtifactError(f"payload file {f.name!r} does not match its given sha256 "
                                f"({actual})")
        return actual

"""Read and verify a Mender Artifact v3 as a stream, with bounded memory.

Members must come in this order, each at most once:
    version, manifest, [manifest.sig], header.tar<ext>, data/0000.tar<ext>
Every member but `manifest`/`manifest.sig` must be listed in the manifest and match
its sha256 (payload files as `data/0000/<name>`); every manifest entry must be seen.
Anything malformed raises ArtifactError (SignatureError for signatures): tarfile,
decompressor, JSON and EOF errors are translated at this boundary.

    with ArtifactReader("a.mender", verify_key=key) as reader:
        reader.headers           # parsed and verified before any payload byte
        for name, size, stream in reader.payloads():
            ...                  # stream.read() verifies sha256 at the end of the file
        info = reader.info()     # after every payload was seen
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Tuple, Union, cast

from mender_docker.errors import ArtifactError, SignatureError

from . import compression as comp
from .headers import (
    check_keys,
    check_script_name,
    parse_header_info,
    parse_json,
    parse_meta_data,
    parse_type_info,
)
from .manifest import MAX_MANIFEST, parse_manifest
from .model import ArtifactInfo, FileInfo
from .safetar import check_member, check_name, check_payload_name
from .signing import verify_manifest
from .tarstream import TarMember, TarStream
from .threadedhash import ThreadedSha256

MAX_HEADER_FILE = 1 << 20  # header-info, type-info, meta-data, each script
MAX_HEADER_TAR = 16 << 20  # the header.tar member, and all its files together
MAX_HEADER_MEMBERS = 256
MAX_SIGNATURE = 4096
PADDING_LIMIT = 1 << 20  # zeros after a tar's end-of-archive marker
CHUNK = 128 << 10  # as compression's _OUTPUT_CHUNK: larger reads page-fault (see there)
_MEMBERS = ("version", "manifest", "manifest.sig", "manifest-augment")
Source = Union[str, "os.PathLike[str]", IO[bytes]]
PayloadSink = Callable[[str, int, IO[bytes]], None]


_LIBRARY_ERRORS = (EOFError, UnicodeError, ValueError, OSError) + comp.decompress_errors()


def _translate(exc: BaseException, where: str) -> ArtifactError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ArtifactError(f"{where}: corrupt or truncated ({detail})")


@contextlib.contextmanager
def _translated(where: str) -> Iterator[None]:
    """Errors of the parsing libraries become one-line ArtifactErrors."""
    try:
        yield
    except ArtifactError:
        raise
    except _LIBRARY_ERRORS as exc:
        raise _translate(exc, where) from None


@dataclass
class Headers:
    """Everything before the data: parsed, checksummed and (if asked) signature-checked."""

    manifest: Dict[str, str]
    signed: bool
    signature_verified: bool
    compression: str
    header_info: Dict[str, Any]
    type_info: Dict[str, Any]
    meta_data: Optional[Dict[str, Any]]
    scripts: Dict[str, bytes]


class _VerifyingStream:
    """A payload file: counts and hashes what is read, checks sha256 at its end.
    The hash runs in `hasher`'s thread while the next chunks are decompressed."""

    def __init__(self, raw: IO[bytes], name: str, size: int, expected: str,
                 hasher: ThreadPoolExecutor) -> None:
        self._raw = raw
        self.name = name
        self.size = size
        self._expected = expected
        self._digest = ThreadedSha256(hasher, size)
        self._seen = 0
        self.verified = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:  # everything that is left, as io's read() does
            parts = []
            while not self.verified:
                parts.append(self.read(CHUNK))
            return b"".join(parts)
        if self.verified:
            return b""
        want = min(n, self.size - self._seen)
        if not want:
            if self._seen == self.size:  # an empty file is complete before any read
                self._finish()
            return b""
        try:
            data = self._raw.read(want)
        except _LIBRARY_ERRORS as exc:  # try/except: the per-chunk path stays cheap
            raise _translate(exc, f"payload file {self.name!r}") from None
        if not data:
            raise ArtifactError(f"payload file {self.name!r} is truncated")
        self._digest.update(data)
        self._seen += len(data)
        if self._seen == self.size:
            self._finish()
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while not self.verified:
            self.read(CHUNK)

    def _finish(self) -> None:
        actual = self._digest.hexdigest()
        if actual != self._expected:
            raise ArtifactError(f"payload file {self.name!r}: sha256 {actual} does not match "
                                f"the manifest's {self._expected}")
        self.verified = True


class ArtifactReader:
    """Streaming reader; see the module docstring. Use as a context manager."""

    def __init__(self, source: Source, verify_key: Optional[Any] = None) -> None:
        self._own = isinstance(source, (str, os.PathLike))
        self._file: IO[bytes] = open(source, "rb") if isinstance(  # noqa: SIM115
            source, (str, os.PathLike)) else source
        self._key = verify_key
        self._files: List[FileInfo] = []
        self._done = False
        self._hasher = ThreadPoolExecutor(max_workers=1)
        self._tar = TarStream(self._file, "artifact")
        try:
            self.headers = self._read_headers()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ArtifactReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._hasher.shutdown(wait=True)
        if self._own:
            self._file.close()

    # -- outer tar, up to the data member --------------------------------------------------

    def _next(self) -> Optional[TarMember]:
        with _translated("artifact"):
            member = self._tar.next()
        if member is not None:
            check_member(member, "artifact")
        return member

    def _small(self, member: TarMember, limit: int) -> bytes:
        if member.size > limit:
            raise ArtifactError(f"member {member.name!r} is {member.size} bytes; "
                                f"refusing more than {limit}")
        with _translated(f"member {member.name!r}"):
            return self._tar.read_all(limit)

    def _expect(self, name: str, after: str) -> TarMember:
        member = self._next()
        if member is None:
            raise ArtifactError(f"artifact ends where {name!r} was expected (truncated?)")
        if member.name != name:
            raise _misplaced(member.name, name, after)
        return member

    def _checksum(self, manifest: Dict[str, str], name: str, data: bytes) -> None:
        expected = manifest.get(name)
        if expected is None:
            raise ArtifactError(f"member {name!r} is not in the manifest")
        if hashlib.sha256(data).hexdigest() != expected:
            raise ArtifactError(f"member {name!r} does not match its sha256 in the manifest "
                                "(corrupt artifact)")

    def _read_headers(self) -> Headers:
        first = self._next()
        if first is None or first.name != "version":
            found = "nothing" if first is None else repr(first.name)
            raise ArtifactError(f"not a Mender artifact (its first member is {found}, "
                                "not 'version')")
        version_raw = self._small(first, 4096)
        version_fault = _version_fault(version_raw)
        if version_fault and version_fault.startswith("unsupported"):
            raise ArtifactError(version_fault)  # another format version: no manifest to check
        manifest_raw = self._small(self._expect("manifest", "version"), MAX_MANIFEST)
        manifest = parse_manifest(manifest_raw)
        # The checksum first: a damaged version member is a damaged artifact.
        self._checksum(manifest, "version", version_raw)
        if version_fault:
            raise ArtifactError(version_fault)
        member = self._next()
        if member is not None and member.name == "manifest":
            raise _misplaced(member.name, "header.tar", "manifest")
        signature: Optional[bytes] = None
        if member is not None and member.name == "manifest.sig":
            signature = self._small(member, MAX_SIGNATURE)
            member = self._next()
        if self._key is not None:
            if signature is None:
                raise SignatureError(self._why_unsigned(member))
            verify_manifest(manifest_raw, signature, self._key)
        if member is None:
            raise ArtifactError("artifact ends before its header.tar (truncated?)")
        if member.name in ("manifest-augment",) or member.name.startswith("header-augment"):
            raise ArtifactError("augmented (delta) artifacts are not supported")
        if not member.name.startswith("header.tar"):
            raise _misplaced(member.name, "header.tar[.gz|.xz|.zst]",
                             "manifest.sig" if signature is not None else "manifest")
        compression = comp.compression_of(member.name, "header.tar")
        self._header_name = member.name
        header_raw = self._small(member, MAX_HEADER_TAR)
        self._checksum(manifest, member.name, header_raw)
        parsed = _parse_header_tar(header_raw, compression)
        data_member = self._next()
        if data_member is None:
            raise ArtifactError("artifact ends before its data/0000.tar (truncated?)")
        if not data_member.name.startswith("data/0000.tar"):
            raise _misplaced(data_member.name, "data/0000.tar[.gz|.xz|.zst]", member.name)
        self._data_member: TarMember = data_member
        data_compression = comp.compression_of(data_member.name, "data/0000.tar")
        header_info, type_info, meta_data, scripts = parsed
        payload_type = header_info["payloads"][0]["type"]
        data_files = [k for k in manifest if k.startswith("data/")]
        if payload_type is None and data_files:
            raise ArtifactError(f"header-info: the payload type is null (a bootstrap artifact, "
                                f"no payload), but the manifest lists {data_files[0]!r}")
        if payload_type == "rootfs-image" and len(data_files) > 1:
            raise ArtifactError(f"a rootfs-image payload holds one file; the manifest lists "
                                f"{len(data_files)}")
        return Headers(manifest=manifest, signed=signature is not None,
                       signature_verified=signature is not None and self._key is not None,
                       compression=data_compression, header_info=header_info,
                       type_info=type_info, meta_data=meta_data, scripts=scripts)

    def _why_unsigned(self, member: Optional[TarMember]) -> str:
        """The message for a missing signature: a manifest.sig further on is out of order."""
        if member is not None and member.name.startswith("header.tar"):
            self._small(member, MAX_HEADER_TAR)  # bytes only: nothing unverified is parsed
            member = self._next()
        if member is not None and member.name == "manifest.sig":
            return ("members out of order: 'manifest.sig' must follow 'manifest' (the "
                    "signature cannot be checked)")
        return "artifact is not signed, but a verification key was given"

    # -- the data member ---------------------------------------------------------------------

    def payloads(self) -> Iterator[Tuple[str, int, IO[bytes]]]:
        """Yield (name, size, stream) per payload file; each is verified when fully read
        (or drained by the next step). Call once."""
        if self._done:
            raise ArtifactError("payloads() was already iterated")
        self._done = True
        manifest = self.headers.manifest
        where = f"member {self._data_member.name!r}"
        with _translated(where):
            inner_raw = comp.open_reader(self.headers.compression, cast(IO[bytes], self._tar))
        inner = TarStream(inner_raw, where)
        seen = set()
        while True:
            with _translated(where):
                member = inner.next()
            if member is None:
                break
            name = check_member(member, where)
            if "/" in name:
                raise ArtifactError(f"{where}: payload file {name!r} is in a directory")
            check_payload_name(name, where)
            key = f"data/0000/{name}"
            if key not in manifest:
                raise ArtifactError(f"payload file {name!r} is not in the manifest")
            if key in seen:
                raise ArtifactError(f"payload file {name!r} appears twice")
            seen.add(key)
            verifying = _VerifyingStream(cast(IO[bytes], inner), name, member.size, manifest[key],
                                         self._hasher)
            yield name, member.size, cast(IO[bytes], verifying)
            verifying.drain()
            self._files.append(FileInfo(name, member.size, manifest[key]))
        with _translated(where):
            _end_of_stream(inner_raw, where)
            _end_of_stream(cast(IO[bytes], self._tar), where, limit=None)
        missing = sorted(k for k in manifest if k.startswith("data/") and k not in seen)
        if missing:
            raise ArtifactError(f"manifest lists {missing[0]!r} but the artifact lacks it")
        unexpected = sorted(k for k in manifest if not k.startswith("data/")
                            and k not in ("version", self._header_name))
        if unexpected:
            raise ArtifactError(f"manifest lists {unexpected[0]!r} but the artifact lacks it")
        after = self._next()
        if after is not None:
            raise ArtifactError(f"unexpected member {after.name!r} after the data")
        with _translated("artifact"):
            _end_of_stream(self._file, "artifact", limit=None)

    def info(self) -> ArtifactInfo:
        if not self._done:
            for _name, _size, _stream in self.payloads():
                pass
        h = self.headers
        provides = h.header_info["artifact_provides"]
        depends = dict(h.header_info["artifact_depends"])
        scripts = [FileInfo(name, len(content), hashlib.sha256(content).hexdigest())
                   for name, content in h.scripts.items()]
        return ArtifactInfo(
            format="mender", version=3,
            artifact_name=provides["artifact_name"],
            artifact_group=provides.get("artifact_group"),
            device_types=list(depends.get("device_type", [])),
            artifact_depends=depends,
            payload_type=h.header_info["payloads"][0]["type"],
            provides=dict(h.type_info.get("artifact_provides") or {}),
            depends=dict(h.type_info.get("artifact_depends") or {}),
            clears_provides=list(h.type_info.get("clears_artifact_provides") or []),
            meta_data=h.meta_data, scripts=scripts, script_contents=dict(h.scripts),
            files=list(self._files), compression=h.compression, signed=h.signed,
            signature_verified=h.signature_verified, header_info=h.header_info,
            type_info=h.type_info, manifest=dict(h.manifest))


def _version_fault(raw: bytes) -> Optional[str]:
    """What is wrong with the `version` member, or None for format mender, version 3."""
    try:
        version = parse_json(raw, "member 'version'")
    except ArtifactError as exc:
        return str(exc) if "is not valid JSON" not in str(exc) else (
            "member 'version' is not JSON (not a Mender artifact?)")
    if not isinstance(version, dict) or version.get("format") != "mender":
        return "not a Mender artifact (member 'version' does not say format 'mender')"
    number = version.get("version")
    if isinstance(number, bool) or not isinstance(number, int):
        return f"member 'version': the version must be a number, not {number!r}"
    if number != 3:
        return (f"unsupported Mender artifact format version {number}; only version 3 is "
                "supported")
    try:
        check_keys(version, ("format", "version"), "member 'version'")
    except ArtifactError as exc:
        return str(exc)
    return None


def _misplaced(found: str, expected: str, after: str) -> ArtifactError:
    """An unexpected member: out of order if it is one of the artifact's own members."""
    if found == after:
        return ArtifactError(f"member {found!r} appears twice")
    if found in _MEMBERS or found.startswith(("header.tar", "data/0000.tar")):
        return ArtifactError(f"members out of order: found {found!r} where {expected!r} "
                             f"must follow {after!r}")
    return ArtifactError(f"unexpected member {found!r} where {expected!r} must follow "
                         f"{after!r}")


def _end_of_stream(stream: IO[bytes], where: str,
                   limit: Optional[int] = PADDING_LIMIT) -> None:
    """After a tar's end-of-archive: zeros only (tar writers pad to their record size),
    then the end of the stream; a decompressor checks its trailer there. Decompressed
    padding is limited: compressed zeros cost little to send and much to inflate. Raw
    bytes (limit None: the artifact's own tail) cost only their size."""
    seen = 0
    while True:
        chunk = stream.read(CHUNK if limit is None else min(CHUNK, limit + 1 - seen))
        if not chunk:
            return
        if chunk.count(0) != len(chunk):
            raise ArtifactError(f"{where}: unexpected data after the end of the tar")
        seen += len(chunk)
        if limit is not None and seen > limit:
            raise ArtifactError(f"{where}: more than {limit >> 10} KiB of zeros after the "
                                "end of the tar (padding is at most a tar record)")


def _parse_header_tar(raw: bytes, compression: str
                      ) -> Tuple[Dict[str, Any], Dict[str, Any], Optional[Dict[str, Any]],
                                 Dict[str, bytes]]:
    where = "header.tar"
    files: List[Tuple[str, bytes]] = []
    total = 0
    with _translated(where):
        stream = comp.open_reader(compression, io.BytesIO(raw))
        tar = TarStream(stream, where)
        while True:
            member = tar.next()
            if member is None:
                break
            if len(files) >= MAX_HEADER_MEMBERS:
                raise ArtifactError(f"{where}: more than {MAX_HEADER_MEMBERS} members")
            if member.type == tarfile.DIRTYPE and files:
                # Directory entries (GNU tar, a repack) carry nothing: skipped, as the
                # reference does, once header-info came first.
                check_name(member.name.rstrip("/"), where)
                continue
            name = check_member(member, where)
            if member.size > MAX_HEADER_FILE:
                raise ArtifactError(f"{where}: {name!r} is {member.size} bytes; refusing more "
                                    f"than {MAX_HEADER_FILE}")
            total += member.size
            if total > MAX_HEADER_TAR:
                raise ArtifactError(f"{where}: more than {MAX_HEADER_TAR} bytes in all")
            files.append((name, tar.read_all(MAX_HEADER_FILE)))
        _end_of_stream(stream, where)
    if not files or files[0][0] != "header-info":
        raise ArtifactError(f"{where}: first member must be 'header-info'")
    header_info = parse_header_info(files[0][1])
    scripts: Dict[str, bytes] = {}
    type_info: Optional[Dict[str, Any]] = None
    meta_data: Optional[Dict[str, Any]] = None
    names = [name for name, _ in files]
    for name, content in files[1:]:
        if name.startswith("scripts/"):
            script = name[len("scripts/"):]
            if type_info is not None:
                raise ArtifactError(f"{where}: script {name!r} after headers/0000/")
            check_script_name(script)
            if script in scripts:
                raise ArtifactError(f"{where}: {name!r} appears twice")
            scripts[script] = content
        elif name in ("headers/0000/type-info", "headers/0000/meta-data"):
            # One of each, type-info first: what every writer does and the C++ client
            # (mender-update) demands; mender-artifact would take the last of each.
            if names.count(name) > 1:
                raise ArtifactError(f"{where}: {name!r} appears twice")
            if name.endswith("type-info"):
                type_info = parse_type_info(content, header_info["payloads"][0]["type"])
            elif type_info is None and "headers/0000/type-info" in names:
                raise ArtifactError(f"{where}: 'headers/0000/meta-data' comes before "
                                    "'headers/0000/type-info' (type-info must be first)")
            elif type_info is None:
                break  # no type-info at all: said below
            elif header_info["payloads"][0]["type"] is None:
                raise ArtifactError(f"{where}: {name!r} in a bootstrap artifact (payload type "
                                    "null: it has a type-info only)")
            else:
                meta_data = parse_meta_data(content)
        else:
            raise ArtifactError(f"{where}: unknown member {name!r}")
    if type_info is None:
        raise ArtifactError(f"{where}: headers/0000/type-info is missing (every payload "
                            "header starts with its type-info)")
    return header_info, type_info, meta_data, scripts


def read_artifact(source: Source, verify_key: Optional[Any] = None,
                  payload_sink: Optional[PayloadSink] = None) -> ArtifactInfo:
    """Read and verify a whole artifact. `payload_sink(name, size, stream)` may consume
    each payload file (it is verified as it is read); without it files are hashed only."""
    with ArtifactReader(source, verify_key=verify_key) as reader:
        for name, size, stream in reader.payloads():
            if payload_sink is not None:
                payload_sink(name, size, stream)
        return reader.info()


def iter_payloads(source: Source, verify_key: Optional[Any] = None
                  ) -> Iterator[Tuple[str, int, IO[bytes]]]:
    """Shorthand: headers are verified first, then each (name, size, stream)."""
    with ArtifactReader(source, verify_key=verify_key) as reader:
        yield from reader.payloads()

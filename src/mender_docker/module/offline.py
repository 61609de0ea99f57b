"""Embedded images: check the payload tar against the signed header while it
streams into `docker load`, then verify what the engine loaded.

The payload (written by the generator, see mender_docker/offline.py) is a
`docker save` tar whose first member is manifest.json. Before a single byte
reaches the engine, manifest.json must list exactly the header's images: for
each pinned reference one entry tagged `spec.loaded_tag(ref)` whose Config is
`<hex>.json` with `sha256:<hex>` the header's image ID, and (module/provenance.py)
the registry manifest that ties the image to its reference. Every later member
must be one of the files manifest.json names, each once; configs come first,
are hashed and must match their name. The engine itself checks each layer
against the config's diff_ids, and an image's ID is the digest of its config:
so what loads is what the signed header describes. Anything else aborts the
stream: `docker load` then gets a broken tar and loads nothing.

`head()` reads and checks manifest.json and the configs before anything goes
to the engine (images.py calls it before the journal changes); `events()`
hands them out first. An entry without a registry manifest (a payload of an
older generator) is refused when the device's policy restricts registries
(`require_manifests`), else accepted with a warning: its reference is unproven.

`PayloadChecker.events()` hands out the tar member by member (header, data,
padding), so the caller can route each image's first layer to `docker
import` instead of `docker load` (see images.load_checked: it keeps the
engine from spooling that layer to its temp dir first). A delta artifact's
payload holds zero-byte placeholders for the base layers the device already
has (`member_size` 0): those always go to `docker load`.

The tar headers are read by our own strict parser (`parse_header`), not by
Python's tarfile: the engine reads the same bytes with Go's archive/tar, and
the two disagree on non-canonical headers (a size field `\0` `0000001000`
`\0` is 0 to tarfile, which stops at the first NUL, and 512 to Go, which
trims NULs and spaces on both ends: the engine would see members, a second
manifest.json among them, that the check never saw). Only canonical headers,
those Go's and Python's writers produce and both readers read identically,
pass:
- a 512-byte block whose checksum (unsigned byte sum, or the signed one, with
  the chksum field read as spaces) matches its chksum field;
- magic `ustar\0` + version `00` (POSIX/PAX) or `ustar ` + ` \0` (GNU);
- mode, uid, gid, size, mtime and chksum: octal ASCII digits from the field's
  first byte, at least one, then only NUL/space bytes to the field's end, at
  least one of them (every writer puts one), except that size may fill all 12
  bytes with digits (GNU tar writes sizes from 8 GiB up that way; both readers
  take all 12). No base-256, no sign, no leading NUL or space. devmajor and
  devminor are all NUL or the same octal form;
- name: ASCII bytes up to the first NUL (or all 100), only NULs after it;
  uname and gname likewise (any bytes before the NUL); the prefix field
  (Python joins it to the name even for GNU headers, Go does not), linkname
  and the 12 bytes after prefix all NUL;
- type `0` or `\0` (a regular file: no PAX or GNU long-name records).
The archive ends with two zero blocks; whatever follows must be zeros.
Memory stays bounded whatever a header says: data is read in CHUNK pieces,
only manifest.json and configs (at most MAX_SMALL) are held whole.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import IO, Dict, Iterator, List, NamedTuple, Optional, Set, Tuple

from mender_docker.module.errors import DeploymentError
from mender_docker.module.log import log
from mender_docker.module.provenance import check_config, check_entry, reference_of

BLOCK = 512
CHUNK = 1 << 20
MANIFEST = "manifest.json"
MAX_SMALL = 16 * 1024 * 1024  # manifest.json and configs are JSON, never this large
_FILE_RE = re.compile(r"^[0-9a-f]{64}(\.json|\.tar|\.tar\.gz|\.tar\.zst)$")


class PayloadError(DeploymentError):
    """The embedded images do not match the artifact's signed header."""


def _read_exact(source: IO[bytes], size: int, what: str) -> bytes:
    parts: List[bytes] = []
    left = size
    while left:
        chunk = source.read(min(left, CHUNK))
        if not chunk:
            raise PayloadError(f"payload is truncated ({what})")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


ZERO_BLOCK = bytes(BLOCK)
_MAGICS = (b"ustar\x0000", b"ustar  \x00")  # magic + version: POSIX/PAX, GNU
_REGULAR = (b"0", b"\x00")
_OCTAL_RE = re.compile(rb"([0-7]+)[\x00 ]*")
# (field, start, end) of the numeric fields we read, in header order
_NUMERIC = (
    ("mode", 100, 108),
    ("uid", 108, 116),
    ("gid", 116, 124),
    ("size", 124, 136),
    ("mtime", 136, 148),
)
_CHKSUM = (148, 156)


class TarHeader(NamedTuple):
    """What a canonical regular-file header says (see parse_header)."""

    name: str
    size: int
    mode: int
    uid: int
    gid: int
    mtime: int


def _octal(field: bytes, what: str, whole: bool = False) -> int:
    """A strict octal field: digits from the first byte, then NUL/space only.
    `whole`: the digits may fill the field (no terminator). Raises ValueError
    with the reason."""
    match = _OCTAL_RE.fullmatch(field)
    if match is None:
        if field[0] & 0x80:
            raise ValueError(f"has a base-256 {what} field (only octal digits are accepted)")
        if field[:1] in (b"\x00", b" "):
            raise ValueError(f"has a {what} field {field!r} starting with NUL or space")
        raise ValueError(f"has a {what} field {field!r} that is not octal digits then NUL/space")
    if match.end(1) == len(field) and not whole:
        raise ValueError(f"has a {what} field {field!r} without a NUL or space terminator")
    return int(match.group(1), 8)


def _cstring(field: bytes, what: str) -> bytes:
    """Bytes up to the first NUL (or the whole field); only NULs may follow."""
    end = field.find(b"\x00")
    if end < 0:
        return field
    if field.count(0, end) != len(field) - end:
        raise ValueError(f"has bytes after the NUL that ends its {what} field")
    return field[:end]


def _checksums(block: bytes) -> Tuple[int, int]:
    """Unsigned and signed byte sums of a header, its chksum field read as spaces."""
    rest = block[: _CHKSUM[0]] + block[_CHKSUM[1] :]
    unsigned = 8 * 0x20 + sum(rest)
    signed = unsigned - 256 * sum(1 for byte in rest if byte & 0x80)
    return unsigned, signed


def parse_header(block: bytes, offset: int) -> TarHeader:
    """The regular-file header at `offset` in the payload; PayloadError unless it
    is canonical (see the module's docstring), naming the member and field."""
    label = repr(block[:100].split(b"\x00", 1)[0].decode("ascii", "backslashreplace"))

    def refuse(problem: str) -> PayloadError:
        return PayloadError(f"payload member {label} {problem} (tar header at offset {offset})")

    if len(block) != BLOCK:
        raise refuse("is truncated")
    try:
        chksum = _octal(block[_CHKSUM[0] : _CHKSUM[1]], "chksum")
    except ValueError as exc:
        raise refuse(str(exc)) from None
    sums = _checksums(block)
    if chksum not in sums:
        raise refuse(f"has a bad checksum (field {chksum:o}, the header sums to {sums[0]:o})")
    if block[257:265] not in _MAGICS:
        raise refuse(f"has magic/version {block[257:265]!r}, not POSIX (ustar) or GNU")
    typeflag = block[156:157]
    if typeflag not in _REGULAR:
        raise refuse(f"is not a regular file (type {typeflag!r})")
    try:
        numbers = {
            field: _octal(block[start:end], field, whole=field == "size")
            for field, start, end in _NUMERIC
        }
        for field, start, end in (("devmajor", 329, 337), ("devminor", 337, 345)):
            if block[start:end] != bytes(end - start):
                _octal(block[start:end], field)
        raw_name = _cstring(block[0:100], "name")
        _cstring(block[265:297], "uname")
        _cstring(block[297:329], "gname")
    except ValueError as exc:
        raise refuse(str(exc)) from None
    for field, start, end in (("linkname", 157, 257), ("prefix", 345, 500), ("padding", 500, 512)):
        if block[start:end] != bytes(end - start):
            raise refuse(f"has a non-empty {field} field")
    if not raw_name:
        raise refuse("has an empty name")
    try:
        name = raw_name.decode("ascii")
    except UnicodeDecodeError:
        raise refuse("has a name that is not ASCII") from None
    return TarHeader(name=name, **numbers)


def check_manifest(raw: bytes, expected: Dict[str, str]) -> Set[str]:
    """Validate manifest.json against {loaded tag: image ID}; return the file names
    it references (configs and layers)."""
    try:
        entries = json.loads(raw)
    except ValueError:
        raise PayloadError("payload manifest.json is not valid JSON") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise PayloadError("payload manifest.json is not a list of images")
    files: Set[str] = set()
    found: Dict[str, str] = {}
    for entry in entries:
        tags, config, layers = entry.get("RepoTags"), entry.get("Config"), entry.get("Layers")
        if not isinstance(tags, list) or len(tags) != 1 or not isinstance(tags[0], str):
            raise PayloadError("payload image without exactly one tag")
        tag = tags[0]
        if tag not in expected:
            raise PayloadError(f"payload image {tag} is not listed in the artifact header")
        if tag in found:
            raise PayloadError(f"payload lists image {tag} twice")
        if not isinstance(config, str) or not _FILE_RE.fullmatch(config):
            raise PayloadError(f"payload image {tag}: bad config name {config!r}")
        image_id = "sha256:" + config.split(".", 1)[0]
        if image_id != expected[tag]:
            raise PayloadError(
                f"payload image {tag} has ID {image_id}, the artifact header says {expected[tag]}"
            )
        if not isinstance(layers, list) or not all(
            isinstance(name, str) and _FILE_RE.fullmatch(name) for name in layers
        ):
            raise PayloadError(f"payload image {tag}: bad layer names")
        found[tag] = image_id
        files.add(config)
        files.update(layers)
    missing = sorted(set(expected) - set(found))
    if missing:
        raise PayloadError(f"header image(s) missing from the payload: {', '.join(missing)}")
    return files


class PayloadChecker:
    """Walks the payload tar as it streams, member by member.

    `events()` yields (kind, member name, bytes) with kind "header", "data",
    "pad" (possibly empty: every member ends with one) or "end" (the two
    end-of-archive blocks, then the zeros after them in CHUNK pieces); the bytes
    of all events, in order, are the payload unchanged.
    PayloadError is raised before the offending bytes are yielded. After the
    first member, `manifest` holds manifest.json's entries; from a member's
    "header" event on, `member_size` holds its size (0 for a delta artifact's
    placeholder of a base layer the device already has)."""

    def __init__(
        self, source: IO[bytes], expected: Dict[str, str], require_manifests: bool = False
    ) -> None:
        self.source = source
        self.expected = expected
        self.require_manifests = require_manifests
        self.manifest: List[Dict[str, object]] = []
        self.member_size = 0
        self._head: Optional[List[Tuple[str, str, bytes]]] = None  # events read by head()
        self._wanted: Set[str] = set()
        self._seen: Set[str] = set()
        self._offset = 0  # of the next block to read, in the payload

    def head(self) -> None:
        """Read and check manifest.json and every config (they come first), ties
        each image to its reference included; nothing is handed out yet."""
        if self._head is not None:
            return
        events: List[Tuple[str, str, bytes]] = []
        header, info = self._member_header()
        if info is None or info.name != MANIFEST or info.size > MAX_SMALL:
            raise PayloadError("payload does not start with manifest.json")
        body, padding = self._small(info)
        self._wanted = check_manifest(body, self.expected)
        self.manifest = json.loads(body)
        events += [("header", MANIFEST, header), ("data", MANIFEST, body),
                   ("pad", MANIFEST, padding)]  # fmt: skip
        layers = self._provenance()
        configs = {str(entry["Config"]) for entry in self.manifest}
        while not configs <= self._seen:
            header, info = self._member_header()
            if info is None or info.name not in configs or info.name in self._seen:
                shown = repr(info.name) if info else "the end of the archive"
                raise PayloadError(f"payload member {shown} comes before the image configs")
            self._seen.add(info.name)
            if info.size > MAX_SMALL:
                raise PayloadError(f"payload config {info.name} is too large")
            body, padding = self._small(info)
            if hashlib.sha256(body).hexdigest() != info.name[:64]:
                raise PayloadError(f"payload config {info.name} does not match its digest")
            for entry in self.manifest:
                tag = str(entry["RepoTags"][0])  # type: ignore[index]
                if entry["Config"] == info.name and tag in layers:
                    files = [str(name) for name in entry["Layers"]]  # type: ignore[attr-defined]
                    check_config(tag, files, layers[tag], _diff_ids(body, tag))
            events += [("header", info.name, header), ("data", info.name, body),
                       ("pad", info.name, padding)]  # fmt: skip
        self._head = events

    def _provenance(self) -> Dict[str, List[str]]:
        """Each entry's registry manifest checked: tag -> the manifest's layer digests."""
        layers: Dict[str, List[str]] = {}
        for entry in self.manifest:
            tag = str(entry["RepoTags"][0])  # type: ignore[index]
            found = check_entry(tag, entry, self.expected[tag])
            if found is not None:
                layers[tag] = found
            elif self.require_manifests:
                raise PayloadError(
                    f"image {reference_of(tag)}: the payload carries no registry manifest "
                    "(an older generator's artifact): refused under allowed_registries"
                )
            else:
                log(f"warning: image {reference_of(tag)}: the payload carries no registry "
                    "manifest (an older generator's artifact): its reference is unproven")
        return layers

    def _member_header(self) -> Tuple[bytes, Optional[TarHeader]]:
        """The next header block and what it says (None: the first end block)."""
        header = _read_exact(self.source, BLOCK, "tar header")
        if header == ZERO_BLOCK:
            return header, None
        info = parse_header(header, self._offset)
        self.member_size = info.size
        self._offset += BLOCK + info.size + (-info.size % BLOCK)
        return header, info

    def _small(self, info: TarHeader) -> Tuple[bytes, bytes]:
        body = _read_exact(self.source, info.size, info.name)
        return body, _read_exact(self.source, -info.size % BLOCK, info.name)

    @property
    def base_layers(self) -> Set[str]:
        """Layer files that are only ever an image's first layer (no parent)."""
        first: Set[str] = set()
        upper: Set[str] = set()
        for entry in self.manifest:
            layers = entry.get("Layers")
            if isinstance(layers, list) and layers:
                first.add(str(layers[0]))
                upper.update(str(name) for name in layers[1:])
        return first - upper

    def events(self) -> Iterator[Tuple[str, str, bytes]]:
        self.head()
        assert self._head is not None
        yield from self._head
        source = self.source
        while True:
            offset = self._offset
            header, info = self._member_header()
            if info is None:
                missing = sorted(self._wanted - self._seen)
                if missing:
                    raise PayloadError(f"payload lacks file(s) {', '.join(missing)}")
                yield from self._end(header, offset)
                return
            name, size = info.name, info.size
            if name not in self._wanted or name in self._seen or name.endswith(".json"):
                raise PayloadError(f"payload member {name!r} is not expected here")
            self._seen.add(name)
            yield "header", name, header
            left = size
            while left:
                chunk = source.read(min(left, CHUNK))
                if not chunk:
                    raise PayloadError(f"payload is truncated (in {name})")
                left -= len(chunk)
                yield "data", name, chunk
            yield "pad", name, _read_exact(source, -size % BLOCK, name)

    def _end(self, first: bytes, offset: int) -> Iterator[Tuple[str, str, bytes]]:
        """The end-of-archive: two zero blocks, then only zeros (a writer's record
        padding) to the end of the stream, read and passed on in CHUNK pieces."""
        second = _read_exact(self.source, BLOCK, "end-of-archive")
        if second != ZERO_BLOCK:  # checked before the first goes on: Go would stop there
            raise PayloadError(
                f"payload tar has a single zero block at offset {offset}, then data "
                f"(tar header at offset {offset + BLOCK}); the end-of-archive is two"
            )
        yield "end", "", first
        yield "end", "", second
        offset += 2 * BLOCK
        while True:
            rest = self.source.read(CHUNK)
            if not rest:
                return
            tail = rest.lstrip(b"\x00")
            if tail:
                raise PayloadError(
                    f"payload has data after the end-of-archive "
                    f"(byte at offset {offset + len(rest) - len(tail)} is not zero)"
                )
            yield "end", "", rest
            offset += len(rest)


def _diff_ids(config: bytes, tag: str) -> List[str]:
    """A config's rootfs.diff_ids (the engine refuses a config without them)."""
    try:
        data = json.loads(config)
    except ValueError:
        data = None
    rootfs = data.get("rootfs") if isinstance(data, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise PayloadError(f"image {reference_of(tag)}: its config has no rootfs.diff_ids")
    return diff_ids

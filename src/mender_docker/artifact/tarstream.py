"""A minimal streaming tar reader: members in order, data read straight through.

Why not `tarfile`: in stream mode it copies every block through small buffers
(a third of our read time) and raises a zoo of exception types. This reads ustar,
pax (`x`) and GNU long-name (`L`) headers — what Go's archive/tar, Python's tarfile
and GNU tar write — verifies each header's checksum, and raises ArtifactError only.
Safety checks on names and types are in safetar.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any, Dict, Optional

from mender_docker.errors import ArtifactError

BLOCK = 512
MAX_META = 1 << 20  # pax / long-name records


@dataclass(frozen=True)
class TarMember:
    name: str
    size: int
    type: bytes  # tar typeflag, b"0" for a regular file


def _octal(field: bytes, what: str, where: str) -> int:
    if field and field[0] & 0x80:  # GNU base-256
        if field[0] & 0x40:
            raise ArtifactError(f"{where}: negative {what} in a tar header")
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise ArtifactError(f"{where}: corrupt tar header (bad {what} {text[:20]!r}; "
                            "not a tar?)") from None


def _text(field: bytes, where: str) -> str:
    try:
        return field.split(b"\0", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        raise ArtifactError(f"{where}: tar member name is not UTF-8") from None


def _pax(data: bytes, where: str) -> Dict[str, str]:
    records: Dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space <= pos:
            raise ArtifactError(f"{where}: malformed pax header")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise ArtifactError(f"{where}: malformed pax header") from None
        end = pos + length
        if length <= space - pos + 1 or end > len(data) or data[end - 1:end] != b"\n":
            raise ArtifactError(f"{where}: malformed pax header")
        key, sep, value = data[space + 1:end - 1].partition(b"=")
        if not sep:
            raise ArtifactError(f"{where}: malformed pax header")
        try:
            records[key.decode("utf-8")] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ArtifactError(f"{where}: pax header is not UTF-8") from None
        pos = end
    return records


class TarStream:
    """Members of a tar read from `raw` (any object with read(n)), strictly in order."""

    def __init__(self, raw: IO[bytes], where: str) -> None:
        self._raw = raw
        self._where = where
        self._left = 0  # data bytes of the current member not yet read
        self._pad = 0  # padding after them
        self.ended = False

    def _exact(self, n: int) -> bytes:
        parts = []
        while n:
            chunk = self._raw.read(n)
            if not chunk:
                raise ArtifactError(f"{self._where}: truncated tar (unexpected end of data)")
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def _skip(self, n: int) -> None:
        while n:
            step = min(n, 1 << 20)
            self._exact(step)
            n -= step

    def next(self) -> Optional[TarMember]:
        """The next member (skipping what is left of the current one), None at the end."""
        if self.ended:
            return None
        self._skip(self._left + self._pad)
        self._left = self._pad = 0
        pax: Dict[str, str] = {}
        long_name: Optional[str] = None
        while True:
            block = self._raw.read(BLOCK)
            if len(block) < BLOCK:
                block += self._exact(BLOCK - len(block)) if block else b""
            if not block:
                raise ArtifactError(f"{self._where}: truncated tar (no end-of-archive marker)")
            if block == bytes(BLOCK):
                self._second_end_block()
                self.ended = True
                return None
            self._check_sum(block)
            kind = block[156:157]
            size = _octal(block[124:136], "size", self._where)
            if kind in (b"x", b"g", b"L", b"K"):
                if size > MAX_META:
                    raise ArtifactError(f"{self._where}: oversized tar extended header")
                data = self._exact(size)
                self._skip(-size % BLOCK)
                if kind == b"x":
                    pax.update(_pax(data, self._where))
                elif kind == b"L":
                    long_name = _text(data, self._where)
                continue  # global pax and long link names change nothing we use
            name = _text(block[0:100], self._where)
            if block[257:263] == b"ustar\0" and block[345]:
                name = _text(block[345:500], self._where) + "/" + name
            if long_name is not None:
                name = long_name
            if "path" in pax:
                name = pax["path"]
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise ArtifactError(f"{self._where}: bad pax size") from None
                if size < 0:
                    raise ArtifactError(f"{self._where}: bad pax size")
            # Links, devices, FIFOs and directories carry no data whatever size they claim.
            size_of_data = 0 if kind in (b"1", b"2", b"3", b"4", b"5", b"6") else size
            self._left = size_of_data
            self._pad = -size_of_data % BLOCK
            return TarMember(name=name, size=size, type=kind)

    def _second_end_block(self) -> None:
        """The end-of-archive marker is two zero blocks (as Go's archive/tar checks)."""
        block = self._raw.read(BLOCK)
        if len(block) < BLOCK and block:
            block += self._exact(BLOCK - len(block))
        if not block:
            raise ArtifactError(f"{self._where}: truncated tar (end-of-archive marker has one "
                                "zero block, not two)")
        if block != bytes(BLOCK):
            raise ArtifactError(f"{self._where}: corrupt end-of-archive marker (its second "
                                "block is not zeros)")

    def _check_sum(self, block: bytes) -> None:
        stored = _octal(block[148:156], "checksum", self._where)
        unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
        signed = unsigned - 2 * sum(b for b in block[:148] + block[156:] if b >= 128)
        if stored not in (unsigned, signed):
            raise ArtifactError(f"{self._where}: tar header checksum mismatch (corrupt data)")

    def read(self, n: int) -> bytes:
        """Up to n bytes of the current member's data; b"" at its end."""
        if n <= 0 or not self._left:
            return b""
        chunk = self._raw.read(min(n, self._left))
        if not chunk:
            raise ArtifactError(f"{self._where}: truncated tar (unexpected end of data)")
        self._left -= len(chunk)
        return chunk

    def readinto(self, buffer: Any) -> int:
        """As read(), into `buffer` (a writable bytes-like object); 0 at the member's end."""
        view = memoryview(buffer).cast("B")
        if not len(view) or not self._left:
            return 0
        view = view[:min(len(view), self._left)]
        readinto = getattr(self._raw, "readinto", None)
        if readinto is not None:
            count = int(readinto(view) or 0)
        else:
            chunk = self._raw.read(len(view))
            count = len(chunk)
            view[:count] = chunk
        if not count:
            raise ArtifactError(f"{self._where}: truncated tar (unexpected end of data)")
        self._left -= count
        return count

    def read_all(self, limit: int) -> bytes:
        if self._left > limit:
            raise ArtifactError(f"{self._where}: member of {self._left} bytes; refusing more "
                                f"than {limit}")
        data = self._exact(self._left) if self._left else b""
        self._left = 0
        return data

"""Compressions behind one interface: name <-> tar suffix, streaming open for read/write.

zstandard is imported only when zstd is used. Writers never store a timestamp or a
file name, so the output is deterministic.

gzip is written pigz-style: the input is cut into fixed 256 KiB blocks, each deflated
in a worker thread (zlib releases the GIL) with the previous block's last 32 KiB as
its dictionary and ended by a sync flush, so the blocks concatenate into one valid
deflate stream; incompressible blocks are stored, not searched (see _incompressible).
The bytes depend only on the input, never on thread timing.
mender-artifact does the same with klauspost/pgzip.

gzip is read with ISA-L's inflate (python-isal, 2-3x faster) or, where it has no
wheel, zlib's, directly rather than through GzipFile (its small buffers cost a third
of the read time), from a reused input buffer and in results of at most 128 KiB
(see _OUTPUT_CHUNK).
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, Callable, Deque, Dict, Optional, Tuple, Type, cast

from mender_docker.errors import ArtifactError

# name -> suffix added to ".tar" (mender-artifact's names for --compression).
COMPRESSIONS: Dict[str, str] = {"none": "", "gzip": ".gz", "lzma": ".xz", "zstd": ".zst"}
# Go's compress/gzip DefaultCompression is zlib level 6: match it.
GZIP_LEVEL = 6
ZSTD_LEVEL = 3
XZ_PRESET = 6
GZIP_BLOCK = 256 << 10
_SAMPLE = 4 << 10
_WINDOW = 32 << 10
_INPUT_CHUNK = 128 << 10  # compressed bytes read at a time
# The most one read() returns. Each read allocates its result: up to this size glibc
# keeps recycling the same heap memory; 1 MiB results were each a fresh mmap, and
# their page faults cost a third of the read time (measured: 170k faults per GiB).
_OUTPUT_CHUNK = 128 << 10
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, mtime 0, OS unknown


def _load_isal() -> Any:
    """Optional: ISA-L's inflate (python-isal) is 2-3x zlib's, with zlib's API and checks."""
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - no wheel for this platform: zlib it is
        return None
    return isal_zlib


_isal_zlib = _load_isal()
_INFLATE_ERRORS: Tuple[Type[BaseException], ...] = (
    (zlib.error,) if _isal_zlib is None else (zlib.error, _isal_zlib.error))
INFLATER = "zlib" if _isal_zlib is None else "isal"
# The same CRC-32; ISA-L's (carry-less multiply) is ~7x faster than zlib 1.2's.
_crc32: Callable[[Any, int], int] = zlib.crc32 if _isal_zlib is None else _isal_zlib.crc32


def _decompressobj() -> Any:
    """A gzip (wbits 31) inflater: ISA-L's when installed, else zlib's."""
    if _isal_zlib is not None:
        return _isal_zlib.decompressobj(31)
    return zlib.decompressobj(31)


def suffix_of(compression: str) -> str:
    try:
        return COMPRESSIONS[compression]
    except KeyError:
        known = ", ".join(COMPRESSIONS)
        raise ArtifactError(f"unknown compression {compression!r} (known: {known})") from None


def compression_of(member: str, stem: str) -> str:
    """`header.tar.gz` with stem `header.tar` -> "gzip"; unknown suffix -> ArtifactError."""
    if not member.startswith(stem):
        raise ArtifactError(f"unexpected member {member!r}")
    suffix = member[len(stem):]
    for name, known in COMPRESSIONS.items():
        if suffix == known:
            return name
    raise ArtifactError(f"member {member!r} has an unknown compression suffix {suffix!r}")


class _NoClose(io.RawIOBase):
    """Lets a compressor close its stream without closing the caller's file."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._raw.write(data)
        return len(data)


def open_writer(compression: str, out: IO[bytes]) -> IO[bytes]:
    """A stream that compresses into `out`; closing it flushes but leaves `out` open."""
    suffix_of(compression)
    if compression == "none":
        return cast(IO[bytes], _NoClose(out))
    if compression == "gzip":
        return cast(IO[bytes], ParallelGzipWriter(out))
    if compression == "lzma":
        return cast(IO[bytes], lzma.LZMAFile(out, "wb", format=lzma.FORMAT_XZ,
                                             check=lzma.CHECK_CRC64, preset=XZ_PRESET))
    import zstandard

    writer: IO[bytes] = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(
        out, closefd=False)
    return writer


def open_reader(compression: str, raw: IO[bytes]) -> IO[bytes]:
    """A stream that decompresses `raw`; errors surface from read() (see DECOMPRESS_ERRORS)."""
    suffix_of(compression)
    if compression == "none":
        return raw
    if compression == "gzip":
        return cast(IO[bytes], GzipReader(raw))
    if compression == "lzma":
        return cast(IO[bytes], lzma.LZMAFile(raw, "rb"))
    import zstandard

    reader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(
        raw, read_across_frames=True, closefd=False)
    return reader


def decompress_errors() -> Tuple[Type[BaseException], ...]:
    """Every exception a decompressor raises on corrupt input."""
    errors: Tuple[Type[BaseException], ...] = (zlib.error, lzma.LZMAError, gzip.BadGzipFile,
                                               EOFError)
    try:
        import zstandard
    except ImportError:  # pragma: no cover - zstandard is a dependency
        return errors
    return errors + (zstandard.ZstdError,)


def _incompressible(block: bytes) -> bool:
    """True if four spread 4 KiB samples all fail to shrink by 3% at level 1: such blocks
    (already-compressed layers, media, random data) are stored instead of searched for
    matches that are not there. Decided by content alone, so output stays deterministic."""
    if len(block) < 4 * _SAMPLE:
        return False
    step = (len(block) - _SAMPLE) // 3
    for start in range(0, 4 * step, step):
        sample = block[start:start + _SAMPLE]
        if len(zlib.compress(sample, 1)) < 0.97 * len(sample):
            return False
    return True


def _deflate_block(block: bytes, zdict: bytes, level: int, final: bool) -> bytes:
    # zlib even where ISA-L is installed: ISA-L's best level compresses as small in a
    # quarter of the time, but its output took 5x longer to inflate (zlib or ISA-L) on
    # the bench payload, and artifacts are written once and inflated on every device.
    if _incompressible(block):
        level = 0
    if zdict:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, zdict)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    flush = zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH
    return compressor.compress(block) + compressor.flush(flush)


class ParallelGzipWriter:
    """One gzip member written from 1 MiB blocks deflated in parallel (see module doc)."""

    def __init__(self, out: IO[bytes], level: int = GZIP_LEVEL,
                 workers: Optional[int] = None) -> None:
        self._out = out
        self._level = level
        count = workers or min(4, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(max_workers=count)
        self._inflight = 2 * count  # bounds memory: a few MiB whatever the input size
        self._pending: Deque[Future[bytes]] = deque()
        self._buffer = bytearray()
        self._tail = b""
        self._crc = 0
        self._size = 0
        self._closed = False
        out.write(_GZIP_HEADER)

    def __enter__(self) -> ParallelGzipWriter:
        return self

    def __exit__(self, kind: Optional[type], *rest: Any) -> None:
        if kind is None:
            self.close()
        else:
            self._closed = True
            self._pool.shutdown(wait=True, cancel_futures=True)

    def write(self, data: Any) -> int:
        self._crc = _crc32(data, self._crc)
        self._size += len(data)
        self._buffer += data
        while len(self._buffer) >= GZIP_BLOCK:
            block = bytes(self._buffer[:GZIP_BLOCK])
            del self._buffer[:GZIP_BLOCK]
            self._submit(block, final=False)
        return len(data)

    def _submit(self, block: bytes, final: bool) -> None:
        self._pending.append(self._pool.submit(_deflate_block, block, self._tail,
                                               self._level, final))
        self._tail = block[-_WINDOW:]
        while len(self._pending) > (0 if final else self._inflight):
            self._out.write(self._pending.popleft().result())

    def flush(self) -> None:
        """Nothing to do: data is flushed block by block, and at close()."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._submit(bytes(self._buffer), final=True)
            self._out.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
        finally:
            self._pool.shutdown(wait=True)


class GzipReader:
    """Decompresses gzip (one or more members) from `raw` with read(n) -> <= n bytes.
    The inflater checks each member's CRC-32 and length at its end; trailing junk is an
    error. Errors of either inflater surface as zlib.error (see decompress_errors)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._readinto = getattr(raw, "readinto", None)
        self._buffer = memoryview(bytearray(_INPUT_CHUNK))  # reused: no allocation per read
        self._zlib = _decompressobj()
        self._input: Any = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = _OUTPUT_CHUNK if n is None or n < 0 else min(n, _OUTPUT_CHUNK)
        try:
            while not self._eof:
                if not self._input:
                    self._input = self._fill()
                    if not self._input:
                        raise EOFError("compressed data ends before the end of its stream")
                # max_length bounds memory against gzip bombs; the input chunk is small
                # enough that one call usually consumes it all (no unconsumed_tail copy).
                out: bytes = self._zlib.decompress(self._input, n)
                self._input = self._zlib.unconsumed_tail
                if self._zlib.eof:
                    self._next_member(self._zlib.unused_data)
                if out:
                    return out
        except _INFLATE_ERRORS as exc:
            raise zlib.error(str(exc)) from None
        return b""

    def _fill(self) -> Any:
        """The next compressed input; it may be a view of the reused buffer, which is only
        refilled once the inflater consumed it (a tail it keeps is its own copy)."""
        if self._readinto is None:
            return self._raw.read(_INPUT_CHUNK)
        return self._buffer[:self._readinto(self._buffer)]

    def _next_member(self, rest: bytes) -> None:
        while len(rest) < 2:
            more = self._raw.read(_INPUT_CHUNK)
            if not more:
                break
            rest += more
        if not rest:
            self._eof = True
            return
        if rest[:2] != b"\x1f\x8b":
            raise zlib.error("unexpected data after the end of the gzip stream")
        self._zlib = _decompressobj()
        self._input = rest

"""Compressions behind one interface: name <-> tar suffix, streaming open for read/write.

zstandard is imported only when zstd is used. Writers never store a timestamp or a
file name, so the output is deterministic.

gzip is written pigz-style: the input is cut into fixed 1 MiB blocks, each deflated
in a worker thread, one per core (the deflaters release the GIL), with the 32 KiB of
input before it
as its dictionary and ended by a sync flush, so the blocks concatenate into one valid
deflate stream, ended by an empty final block. Incompressible stretches (already
compressed layers, media) are written as stored blocks, never searched for matches
that are not there: cheap level-1 samples find them, per block and, where a block is
mixed, per 32 KiB segment (see _runs). The deflater is zlib-ng's (python-zlib-ng) or,
where it has no wheel, zlib's, at level 2 (see GZIP_LEVEL). The bytes depend only on the
input (and on which deflater is installed), never on thread timing or the number of
cores. mender-artifact does the same with klauspost/pgzip.

zstd runs on every core too (zstandard's threads=os.cpu_count()); xz on one (the lzma
module has no threads).

Memory, whatever the input size: gzip holds at most 2 x cores + 2 blocks of 1 MiB of
input and their deflated output (at most about as large): about 4 MiB x (cores + 1),
12 MiB on 2 cores, 132 MiB on 32. zstd: zstandard's worker buffers, sized by the level's
window and job size, not by the input: at level 3 a whole write peaked at 82-132 MiB RSS on
2 cores (bench/artifact_bench.py), about 50 MiB per core.

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
from typing import IO, Any, Callable, Deque, Dict, List, Optional, Tuple, Type, cast

from mender_docker.errors import ArtifactError

# name -> suffix added to ".tar" (mender-artifact's names for --compression).
COMPRESSIONS: Dict[str, str] = {"none": "", "gzip": ".gz", "lzma": ".xz", "zstd": ".zst"}
# mender-artifact 4.x's zstd names -> zstd levels (its Go encoder's speeds, roughly).
ZSTD_LEVELS: Dict[str, int] = {"zstd_fastest": 1, "zstd_fast": 3, "zstd_better": 7,
                               "zstd_best": 11}
# Level 2, not zlib's default 6: what it takes to write faster than mender-artifact 3.9 on
# real binaries on 2 cores. Measured on 512 MiB of this machine's /usr/bin and /usr/lib
# (1 MiB blocks, whole write): level 2 used 5.9 CPU s for 216.6 MB, level 4 7.3 s for
# 205.7 MB, 3.9 7.0-8.3 s for 209.1 MB: deflate is nearly all of our CPU, and a size as
# small as 3.9's costs as much CPU as 3.9 spends. 4.0 writes 201 MB in 70 CPU s. For a
# smaller artifact, zstd (--compression zstd*) is both smaller and faster than 4.0's.
GZIP_LEVEL = 2
ZSTD_LEVEL = 3
XZ_PRESET = 6
# 1 MiB, not 256 KiB: each block is primed with a 32 KiB dictionary, which costs the
# deflater as much as hashing 32 KiB of input; at 1 MiB blocks level 4 took 20% less CPU
# on the bench's binaries for the same size (and 3% of blocks instead of 12.5%).
GZIP_BLOCK = 1 << 20
_SEGMENT = 32 << 10  # the unit a mixed block is split into (see _runs)
_SAMPLE = 4 << 10
_WINDOW = 32 << 10
_STORED_MAX = 0xFFFF  # the most one stored deflate block holds
_FINAL_BLOCK = b"\x03\x00"  # an empty final block (fixed codes): ends the deflate stream
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


def _load_zlib_ng() -> Any:
    """Optional: zlib-ng's deflate (python-zlib-ng), zlib's API; as small as zlib's at the
    same level in about half the time."""
    try:
        from zlib_ng import zlib_ng
    except ImportError:  # pragma: no cover - no wheel for this platform: zlib it is
        return None
    return zlib_ng


_zlib_ng = _load_zlib_ng()
DEFLATER = "zlib" if _zlib_ng is None else "zlib-ng"


def _decompressobj() -> Any:
    """A gzip (wbits 31) inflater: ISA-L's when installed, else zlib's."""
    if _isal_zlib is not None:
        return _isal_zlib.decompressobj(31)
    return zlib.decompressobj(31)


def suffix_of(compression: str) -> str:
    """The tar suffix of a compression name (zstd_* aliases included)."""
    if compression in ZSTD_LEVELS:
        return COMPRESSIONS["zstd"]
    try:
        return COMPRESSIONS[compression]
    except KeyError:
        known = ", ".join([*COMPRESSIONS, *ZSTD_LEVELS])
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

    # threads >= 1 always: zstd's multi-threaded frames are the same for any number of
    # workers (but differ from its single-threaded mode), so the output stays deterministic.
    level = ZSTD_LEVELS.get(compression, ZSTD_LEVEL)
    writer: IO[bytes] = zstandard.ZstdCompressor(level=level, threads=cpu_count()).stream_writer(
        out, closefd=False)
    return writer


def cpu_count() -> int:
    """Cores to compress on: all of them (os.cpu_count())."""
    return os.cpu_count() or 1


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


def _shrinks(sample: Any) -> bool:
    """True if a level-1 deflate (ISA-L's, the fastest, else zlib's) saves 3% of `sample`."""
    deflated = (zlib.compress(sample, 1) if _isal_zlib is None
                else _isal_zlib.compress(sample, 1))
    return len(deflated) < 0.97 * len(sample)


def _runs(view: memoryview) -> List[Tuple[int, int, bool]]:
    """The block as (start, end, compressible) runs, from 4 KiB samples (about 15 us
    each, the main cost on random data): one at the start of each 32 KiB segment, and
    the block's last 4 KiB. Four of them (the first, the last, and two between) decide
    the whole block when they agree. Where they do not, a segment is stored if its own
    sample and the next one (its end) both fail to shrink, so a boundary between a
    compressed layer and text costs neither a search through the random part nor a
    stored copy of the text. Decided by content alone: the output stays deterministic."""
    size = len(view)
    if size < 4 * _SAMPLE:
        return [(0, size, True)]
    starts = range(0, size, _SEGMENT)
    count = len(starts)
    verdicts: Dict[int, bool] = {}

    def shrinks(index: int) -> bool:
        """Sample `index`: at the start of that segment; index `count`: the block's end."""
        if index not in verdicts:
            at = size - _SAMPLE if index == count else min(starts[index], size - _SAMPLE)
            verdicts[index] = _shrinks(view[at:at + _SAMPLE])
        return verdicts[index]

    first = shrinks(0)
    if all(shrinks(i) == first for i in ((count + 1) // 3, (2 * count + 1) // 3, count)):
        return [(0, size, first)]
    runs: List[Tuple[int, int, bool]] = []
    for index, start in enumerate(starts):
        end = min(size, start + _SEGMENT)
        compressible = shrinks(index) or shrinks(index + 1)
        if runs and runs[-1][2] == compressible:
            runs[-1] = (runs[-1][0], end, compressible)
        else:
            runs.append((start, end, compressible))
    return runs


def _stored(view: memoryview) -> List[Any]:
    """`view` as stored deflate blocks (the stream is byte-aligned after a sync flush)."""
    parts: List[Any] = []
    for start in range(0, len(view), _STORED_MAX):
        chunk = view[start:start + _STORED_MAX]
        parts.append(struct.pack("<BHH", 0, len(chunk), len(chunk) ^ 0xFFFF))
        parts.append(chunk)
    return parts


def _deflate_block(block: Any, tail: bytes, level: int) -> bytes:
    """One block as deflate blocks ending in a sync flush (not final: see close()).
    `tail` is the (up to) 32 KiB of input before the block, the dictionary."""
    # Not ISA-L's deflate, though the fastest: its best level (3) wrote 15% more than
    # zlib(-ng) level 6 on the bench payload, and its output was ~3x slower to inflate;
    # artifacts are written once and inflated on every device.
    lib = zlib if _zlib_ng is None else _zlib_ng
    view = memoryview(block)
    parts: List[Any] = []
    for start, end, compressible in _runs(view):
        if not compressible:
            parts.extend(_stored(view[start:end]))
            continue
        zdict = (tail[max(0, len(tail) - (_WINDOW - start)):] + bytes(view[:start])
                 if start < _WINDOW else bytes(view[start - _WINDOW:start]))
        if zdict:
            compressor = lib.compressobj(level, lib.DEFLATED, -15, 8, lib.Z_DEFAULT_STRATEGY,
                                         zdict)
        else:
            compressor = lib.compressobj(level, lib.DEFLATED, -15)
        parts.append(compressor.compress(view[start:end]))
        parts.append(compressor.flush(lib.Z_SYNC_FLUSH))
    return b"".join(parts)


class ParallelGzipWriter:
    """One gzip member written from 1 MiB blocks deflated in parallel (see module doc).
    Input is copied once, into recycled block buffers; the caller's buffer is free again
    as soon as write() returns."""

    def __init__(self, out: IO[bytes], level: int = GZIP_LEVEL,
                 workers: Optional[int] = None) -> None:
        self._out = out
        self._level = level
        count = workers or cpu_count()
        self._pool = ThreadPoolExecutor(max_workers=count)
        # Bounds memory whatever the input size: at most this many blocks of input (and
        # their deflated output) are held, plus the one being filled (see MEMORY).
        self._inflight = 2 * count
        self._pending: Deque[Tuple[Future[bytes], bytearray]] = deque()
        self._free: List[bytearray] = []  # block buffers whose deflate is done
        self._block: Optional[bytearray] = None
        self._fill = 0
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
        view = memoryview(data).cast("B")
        size = len(view)
        self._crc = _crc32(view, self._crc)
        self._size += size
        while view:
            if self._block is None:
                self._block = self._free.pop() if self._free else bytearray(GZIP_BLOCK)
            n = min(len(view), GZIP_BLOCK - self._fill)
            self._block[self._fill:self._fill + n] = view[:n]
            self._fill += n
            view = view[n:]
            if self._fill == GZIP_BLOCK:
                self._submit()
        return size

    def _submit(self) -> None:
        block, fill = self._block, self._fill
        if block is None or not fill:
            return
        self._block, self._fill = None, 0
        data = memoryview(block)[:fill]
        self._pending.append((self._pool.submit(_deflate_block, data, self._tail,
                                                self._level), block))
        self._tail = (bytes(data[-_WINDOW:]) if fill >= _WINDOW
                      else (self._tail + bytes(data))[-_WINDOW:])
        self._drain(self._inflight)

    def _drain(self, keep: int) -> None:
        """Write finished blocks, in order, until at most `keep` are pending."""
        while len(self._pending) > keep:
            future, block = self._pending.popleft()
            self._out.write(future.result())
            self._free.append(block)

    def flush(self) -> None:
        """Nothing to do: data is flushed block by block, and at close()."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._submit()
            self._drain(0)
            self._out.write(_FINAL_BLOCK)
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

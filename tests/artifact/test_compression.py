"""Compression streams and the tar stream reader, against stdlib gzip/tarfile."""

from __future__ import annotations

import gzip
import io
import os
import platform
import random
import tarfile
import zlib
from typing import Any, List, Tuple

import pytest

from mender_docker.artifact import ArtifactError, compression
from mender_docker.artifact.compression import (
    GZIP_BLOCK,
    GzipReader,
    ParallelGzipWriter,
    open_reader,
    open_writer,
)
from mender_docker.artifact.safetar import member_header
from mender_docker.artifact.tarstream import TarStream

MIXED = (os.urandom(GZIP_BLOCK * 2) + b"text that repeats " * 40000 + os.urandom(1000)
         + bytes(GZIP_BLOCK))


def _gzip(data: bytes, workers: int, write_size: int) -> bytes:
    out = io.BytesIO()
    with ParallelGzipWriter(out, workers=workers) as writer:
        for start in range(0, len(data), write_size):
            writer.write(data[start:start + write_size])
    return out.getvalue()


def test_parallel_gzip_is_standard_and_deterministic() -> None:
    reference = _gzip(MIXED, workers=1, write_size=len(MIXED))
    for workers, write_size in ((2, 1000), (4, 77777), (3, GZIP_BLOCK)):
        assert _gzip(MIXED, workers, write_size) == reference
    assert gzip.decompress(reference) == MIXED
    assert reference[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    # random blocks are stored (a few bytes over), the text compresses
    assert len(reference) < len(MIXED) - 600_000
    assert len(reference) > GZIP_BLOCK * 2


@pytest.mark.parametrize("data", [b"", b"x", bytes(GZIP_BLOCK), os.urandom(GZIP_BLOCK + 1)])
def test_parallel_gzip_edge_sizes(data: bytes) -> None:
    assert gzip.decompress(_gzip(data, workers=2, write_size=4096)) == data


def _text(size: int, seed: int) -> bytes:
    """Compressible, not trivially: words from a 500-word vocabulary."""
    rng = random.Random(seed)
    words = [rng.randbytes(4).hex().encode() for _ in range(500)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


def _patchwork(pieces: List[Tuple[str, int]], seed: int = 1) -> bytes:
    """Random ("r") and text ("t") stretches of the given sizes, one after the other."""
    rng = random.Random(seed)
    return b"".join(rng.randbytes(n) if kind == "r" else _text(n, rng.randrange(1 << 30))
                    for kind, n in pieces)


S = 32 << 10  # the gzip writer's segment, for boundaries on and off it
PATCHWORK = _patchwork([("r", GZIP_BLOCK + S + 1), ("t", 3 * S - 7), ("r", S), ("t", 1),
                        ("r", 5 * S + 4095), ("t", GZIP_BLOCK - 5), ("r", 4096),
                        ("t", 2 * GZIP_BLOCK + 3), ("r", 100), ("t", 20000)])


@pytest.fixture(params=["zlib-ng", "zlib"])
def deflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with zlib-ng's deflate (and ISA-L's samples), and with the zlib
    fallback used where those have no wheel."""
    if request.param == "zlib":
        monkeypatch.setattr(compression, "_zlib_ng", None)
        monkeypatch.setattr(compression, "_isal_zlib", None)
    else:
        assert compression._zlib_ng is not None, "python-zlib-ng is not installed"
    return str(request.param)


def test_zlib_ng_is_used_where_it_has_wheels() -> None:
    """pyproject requires zlib-ng on these machines; without it writes are ~2x slower."""
    if platform.machine() in ("x86_64", "aarch64", "AMD64", "arm64"):
        assert compression.DEFLATER == "zlib-ng"
    else:
        assert compression.DEFLATER in ("zlib-ng", "zlib")


def _inflate_all_ways(compressed: bytes) -> List[bytes]:
    """The gzip stream inflated by stdlib gzip, zlib, ISA-L and zlib-ng, and by our reader."""
    results = [gzip.decompress(compressed), zlib.decompress(compressed, 31),
               _read_all(GzipReader(io.BytesIO(compressed)))]
    for lib in (compression._load_isal(), compression._load_zlib_ng()):
        if lib is not None:
            results.append(lib.decompress(compressed, 31))
    return results


@pytest.mark.parametrize("pieces", [[("r", S - 1), ("t", 2 * GZIP_BLOCK)],
                                    [("t", GZIP_BLOCK + 1)], [("r", GZIP_BLOCK * 3)],
                                    [("t", 5000), ("r", 20000)], [("r", 70000)]])
def test_parallel_gzip_every_inflater_reads_it(deflater: str,
                                                pieces: List[Tuple[str, int]]) -> None:
    data = _patchwork(pieces) + PATCHWORK
    compressed = _gzip(data, workers=3, write_size=100_000)
    assert all(result == data for result in _inflate_all_ways(compressed))


def test_parallel_gzip_same_bytes_whatever_the_threads_and_writes(deflater: str) -> None:
    reference = _gzip(PATCHWORK, workers=1, write_size=len(PATCHWORK))
    for workers, write_size in ((2, 1), (4, 4095), (3, GZIP_BLOCK + 1), (2, S)):
        if write_size == 1:  # byte by byte: only the first blocks, or it takes too long
            data = PATCHWORK[:GZIP_BLOCK + 3000]
            assert _gzip(data, workers, 1) == _gzip(data, 1, len(data))
            continue
        assert _gzip(PATCHWORK, workers, write_size) == reference
    assert gzip.decompress(reference) == PATCHWORK


def test_parallel_gzip_stores_random_stretches_and_compresses_text(deflater: str) -> None:
    """Random stretches are stored (5 bytes a 64 KiB block over their size) and text is
    not: the total stays within a few KiB of the ideal (6 KiB measured; one stored 32 KiB
    segment of this text would add 23 KiB)."""
    rng = random.Random(7)
    text = [_text(n, i) for i, n in enumerate((90_000, 3 * S + 11, GZIP_BLOCK + 5))]
    randoms = [rng.randbytes(n) for n in (GZIP_BLOCK + S + 1, 100_000, 2 * S)]
    data = b"".join(part for pair in zip(randoms, text) for part in pair)
    compressed = _gzip(data, workers=2, write_size=65536)
    assert gzip.decompress(compressed) == data
    lib = compression._zlib_ng or zlib  # the deflater in use, at the writer's level
    ideal = sum(map(len, randoms)) + sum(len(lib.compress(t, compression.GZIP_LEVEL))
                                         for t in text)
    assert ideal - 1000 < len(compressed) < ideal + 12_000


def test_runs_split_a_mixed_block_at_segments(deflater: str) -> None:
    rng = random.Random(3)
    block = rng.randbytes(4 * S + 5000) + _text(GZIP_BLOCK - 4 * S - 5000, 1)
    # the segment holding the boundary is deflated, not stored: no text is stored
    assert compression._runs(memoryview(block)) == [(0, 4 * S, False), (4 * S, GZIP_BLOCK, True)]
    assert compression._runs(memoryview(rng.randbytes(GZIP_BLOCK))) == [(0, GZIP_BLOCK, False)]
    assert compression._runs(memoryview(_text(GZIP_BLOCK, 2))) == [(0, GZIP_BLOCK, True)]
    tiny = rng.randbytes(1000)  # too small to sample: deflated
    assert compression._runs(memoryview(tiny)) == [(0, 1000, True)]


def test_parallel_gzip_copies_what_it_is_given() -> None:
    """The caller may reuse its buffer as soon as write() returns (the writer does)."""
    out = io.BytesIO()
    buffer = bytearray(100_000)
    with ParallelGzipWriter(out, workers=2) as writer:
        for start in range(0, len(PATCHWORK), len(buffer)):
            chunk = PATCHWORK[start:start + len(buffer)]
            buffer[:len(chunk)] = chunk
            writer.write(memoryview(buffer)[:len(chunk)])
            buffer[:] = bytes(len(buffer))
    assert gzip.decompress(out.getvalue()) == PATCHWORK


def _read_all(stream: Any, n: int = 5000) -> bytes:
    parts: List[bytes] = []
    while True:
        chunk = stream.read(n)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)


def test_gzip_reader_reads_stdlib_and_multi_member_gzip() -> None:
    single = gzip.compress(MIXED, mtime=0)
    assert _read_all(GzipReader(io.BytesIO(single))) == MIXED
    multi = gzip.compress(b"one", mtime=0) + gzip.compress(b"two", mtime=0)
    assert _read_all(GzipReader(io.BytesIO(multi))) == b"onetwo"


@pytest.mark.parametrize("damage", ["truncate", "trailing", "crc"])
def test_gzip_reader_refuses_damage(damage: str) -> None:
    good = gzip.compress(b"payload" * 1000, mtime=0)
    bad = {"truncate": good[:-3], "trailing": good + b"junk",
           "crc": good[:-8] + bytes([good[-8] ^ 1]) + good[-7:]}[damage]
    with pytest.raises((zlib.error, EOFError)):
        _read_all(GzipReader(io.BytesIO(bad)))


@pytest.mark.parametrize("compression", ["none", "gzip", "lzma", "zstd"])
def test_writer_and_reader_pair(compression: str) -> None:
    out = io.BytesIO()
    with open_writer(compression, out) as writer:
        writer.write(MIXED)
    assert not out.closed  # closing the compressor leaves the artifact open
    assert _read_all(open_reader(compression, io.BytesIO(out.getvalue()))) == MIXED


def test_tar_stream_reads_what_tarfile_writes() -> None:
    long_name = "d/" + "n" * 150
    raw = b""
    for name, data, fmt in (("short", b"1", tarfile.USTAR_FORMAT),
                            (long_name, b"22", tarfile.GNU_FORMAT),
                            ("é-utf8", b"333", tarfile.PAX_FORMAT),
                            ("p/" + "x" * 200, b"4444", tarfile.PAX_FORMAT)):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        raw += info.tobuf(format=fmt, encoding="utf-8", errors="strict")  # type: ignore[arg-type]
        raw += data + bytes(-len(data) % 512)
    stream = TarStream(io.BytesIO(raw + bytes(1024)), "test")
    found = []
    while True:
        member = stream.next()
        if member is None:
            break
        found.append((member.name, stream.read(100)))
    assert found == [("short", b"1"), (long_name, b"22"), ("é-utf8", b"333"),
                     ("p/" + "x" * 200, b"4444")]


def test_header_beyond_8_gib_uses_base_256() -> None:
    header = member_header("data/0000.tar.gz", 9 << 30)
    assert len(header) == 512
    member = TarStream(io.BytesIO(header + bytes(1024)), "test").next()
    assert member is not None and member.size == 9 << 30
    info = tarfile.TarInfo.frombuf(header, "utf-8", "strict")
    assert info.size == 9 << 30


def test_tar_stream_checks_header_checksums() -> None:
    header = bytearray(member_header("f", 1))
    header[0] = ord("g")
    with pytest.raises(ArtifactError, match="checksum"):
        TarStream(io.BytesIO(bytes(header) + bytes(1536)), "test").next()

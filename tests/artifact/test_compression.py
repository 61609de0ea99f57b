"""Compression streams and the tar stream reader, against stdlib gzip/tarfile."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zlib
from typing import Any, List

import pytest

from mender_docker.artifact import ArtifactError
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

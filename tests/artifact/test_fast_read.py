"""The read path's speed-ups keep its guarantees: the threaded sha256 equals hashlib's
whatever the chunking, both inflaters (ISA-L and zlib) read and refuse the same data,
and whole-file read() returns the whole file across many decompressed chunks."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import platform
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from mender_docker.artifact import ArtifactError, ArtifactReader, compression, read_artifact
from mender_docker.artifact.threadedhash import BUFFER, BUFFERS, ThreadedSha256
from tests.artifact.crafting import Crafted
from tests.artifact.helpers import mender_artifact, write_sample

DATA = os.urandom(BUFFER * (BUFFERS + 1) + 12345)


@pytest.mark.parametrize("sizes", [[1, 1, 1, BUFFER - 2], [4096, 1], [BUFFER - 1, 2, 77],
                                   [BUFFER * 2 + 3], [len(DATA)]])
def test_threaded_sha256_equals_hashlib(sizes: List[int]) -> None:
    with ThreadPoolExecutor(max_workers=1) as executor:
        digest = ThreadedSha256(executor)
        pos, turn = 0, 0
        while pos < len(DATA):
            size = sizes[turn % len(sizes)]
            chunk = DATA[pos:pos + size]
            # bytes, a bytearray reused by the caller, and a memoryview all work
            digest.update([bytes, bytearray, memoryview][turn % 3](chunk))
            pos += size
            turn += 1
        assert digest.hexdigest() == hashlib.sha256(DATA).hexdigest()
        empty = ThreadedSha256(executor)
        empty.update(b"")
        assert empty.hexdigest() == hashlib.sha256(b"").hexdigest()
        small = ThreadedSha256(executor, size_hint=3)  # hinted: 3-byte buffers, many of them
        for piece in (b"ab", b"cdefg", b"h"):
            small.update(piece)
        assert small.hexdigest() == hashlib.sha256(b"abcdefgh").hexdigest()


def test_isal_is_used_where_it_has_wheels() -> None:
    """pyproject requires isal on these machines; without it reads are 2-3x slower."""
    if platform.machine() in ("x86_64", "aarch64", "AMD64", "arm64"):
        assert compression.INFLATER == "isal"
    else:
        assert compression.INFLATER in ("isal", "zlib")


@pytest.fixture(params=["isal", "zlib"])
def inflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each test runs with ISA-L's inflater and with the zlib fallback."""
    if request.param == "zlib":
        monkeypatch.setattr(compression, "_isal_zlib", None)
    else:
        assert compression._isal_zlib is not None, "python-isal is not installed"
    yield str(request.param)


def _read_all(stream: Any, n: int) -> bytes:
    parts: List[bytes] = []
    while True:
        chunk = stream.read(n)
        if not chunk:
            return b"".join(parts)
        assert len(chunk) <= n
        parts.append(chunk)


def test_both_inflaters_read_single_and_multi_member_gzip(inflater: str) -> None:
    bomb = bytes(8 << 20)  # compresses 1000:1; reads stay bounded all the same
    data = os.urandom(300_000) + b"text " * 100_000 + bomb
    single = gzip.compress(data, mtime=0)
    reader = compression.GzipReader(io.BytesIO(single))
    lib = zlib if inflater == "zlib" else compression._isal_zlib
    assert type(reader._zlib) is type(lib.decompressobj(31))
    assert _read_all(reader, 1 << 30) == data  # capped at 128 KiB a read, see _read_all
    multi = gzip.compress(b"one" * 50_000, mtime=0) + gzip.compress(b"two", mtime=0)
    assert _read_all(compression.GzipReader(io.BytesIO(multi)), 999) == b"one" * 50_000 + b"two"


@pytest.mark.parametrize("damage", ["truncate", "trailing", "crc", "length", "body"])
def test_both_inflaters_refuse_damage_as_zlib_errors(inflater: str, damage: str) -> None:
    good = gzip.compress(os.urandom(1000) + b"payload" * 50_000, mtime=0)
    middle = len(good) // 2
    bad = {"truncate": good[:-3], "trailing": good + b"junk",
           "crc": good[:-8] + bytes([good[-8] ^ 1]) + good[-7:],
           "length": good[:-4] + bytes([good[-4] ^ 1]) + good[-3:],
           "body": good[:middle] + bytes([good[middle] ^ 0x55]) + good[middle + 1:]}[damage]
    with pytest.raises((zlib.error, EOFError)):
        _read_all(compression.GzipReader(io.BytesIO(bad)), 4096)


def test_corrupt_payload_is_an_artifact_error_with_either_inflater(inflater: str) -> None:
    c = Crafted(data_files=[("big", os.urandom(200_000) + b"x" * 500_000)])
    raw = bytearray(c.build())
    start = raw.find(b"data/0000.tar.gz") + 512 + 40_000  # inside the compressed data
    raw[start:start + 64] = bytes(64)
    with pytest.raises(ArtifactError):
        read_artifact(io.BytesIO(bytes(raw)))


def test_whole_file_read_spans_many_chunks(tmp_path: Path, inflater: str) -> None:
    big = os.urandom(3 << 20) + b"abc" * 1_000_000
    path = write_sample(tmp_path / "a.mender", files=[("big", big), ("empty", b""),
                                                      ("small", b"s")])
    with ArtifactReader(path) as reader:
        got = [(name, stream.read()) for name, _size, stream in reader.payloads()]
        info = reader.info()
    assert got == [("big", big), ("empty", b""), ("small", b"s")]
    assert [f.sha256 for f in info.files] == [hashlib.sha256(d).hexdigest() for _n, d in got]


def test_a_wrong_digest_is_still_caught_after_many_chunks() -> None:
    big = os.urandom(BUFFER * BUFFERS * 2)
    c = Crafted(data_files=[("big", big)], manifest_extra=[("data/0000/big", "0" * 64)])
    with pytest.raises(ArtifactError, match="'big': sha256"):
        read_artifact(io.BytesIO(c.build()))


@pytest.mark.real
def test_reference_tool_validates_our_multi_block_gzip(tmp_path: Path) -> None:
    """Many gzip blocks, stored (random) and deflated (ISA-L or zlib) in turn: one
    deflate stream that mender-artifact 3.9 decompresses and checksums."""
    text = b" ".join(b"%06x" % (i * 7919 % 4096) for i in range(300_000))
    payload = b"".join(os.urandom(300_000) + text[i:i + 500_000] for i in range(0, 1_500_000,
                                                                              500_000))
    path = write_sample(tmp_path / "big.mender", files=[("images.tar", payload)])
    assert path.stat().st_size < len(payload) * 0.8  # the text parts were compressed
    validated = mender_artifact("validate", str(path))
    assert "validated successfully" in validated.stdout
    assert read_artifact(path).files[0].sha256 == hashlib.sha256(payload).hexdigest()

"""The streaming reader API, and bounded memory for large payloads (in a child process)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mender_docker.artifact import ArtifactError, ArtifactReader, iter_payloads
from tests.artifact.crafting import Crafted
from tests.artifact.helpers import write_sample

FILES = [("one", b"1" * 5000), ("two", b"2" * 7000), ("empty", b"")]


def test_reader_yields_each_file_after_verified_headers(tmp_path: Path) -> None:
    path = write_sample(tmp_path / "a.mender", files=FILES)
    with ArtifactReader(path) as reader:
        assert reader.headers.header_info["artifact_provides"]["artifact_name"] == "sample-1"
        got = [(name, size, stream.read()) for name, size, stream in reader.payloads()]
        info = reader.info()
    assert got == [(n, len(d), d) for n, d in FILES]
    assert [f.name for f in info.files] == ["one", "two", "empty"]


def test_partly_read_files_are_still_verified(tmp_path: Path) -> None:
    path = write_sample(tmp_path / "a.mender", files=FILES)
    names = [name for name, _size, stream in iter_payloads(path) if stream.read(10) is not None]
    assert names == ["one", "two", "empty"]


def test_mismatch_raises_at_the_end_of_that_file() -> None:
    c = Crafted(data_files=[("good", b"g" * 100), ("bad", b"b" * 100)],
                manifest_extra=[("data/0000/bad", "0" * 64)])
    seen = []
    with pytest.raises(ArtifactError, match="'bad': sha256"):
        for name, _size, stream in iter_payloads(io.BytesIO(c.build())):
            data = stream.read(60)
            seen.append(name)
            data += stream.read()  # the check fires on the read that reaches the end
            assert hashlib.sha256(data).hexdigest()
    assert seen == ["good", "bad"]


def test_reading_past_the_end_returns_nothing(tmp_path: Path) -> None:
    path = write_sample(tmp_path / "a.mender", files=[("f", b"abc")])
    for _name, _size, stream in iter_payloads(path):
        assert stream.read() == b"abc"
        assert stream.read() == b""


CHILD = textwrap.dedent("""
    import json, os, sys
    from mender_docker.artifact import ArtifactSpec, PayloadFile, read_artifact, write_artifact
    src, out, compression = sys.argv[1:4]
    spec = ArtifactSpec("big", ["d"], "docker")
    write_artifact(out, spec, files=[PayloadFile.from_path(src)], compression=compression)
    info = read_artifact(out)
    # VmHWM, not ru_maxrss: Linux carries the parent's peak across fork+exec into
    # ru_maxrss, and the parent here is a big pytest process.
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"rss_kb": peak, "size": info.files[0].size}))
""")


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_large_payload_in_bounded_memory(tmp_path: Path, compression: str) -> None:
    size = 300 << 20
    src = tmp_path / "big.bin"
    block = bytes(range(256)) * 4096  # 1 MiB, compresses fast; what counts is the RSS
    with open(src, "wb") as handle:
        for _ in range(size >> 20):
            handle.write(block)
    result = subprocess.run([sys.executable, "-c", CHILD, str(src), str(tmp_path / "o.mender"),
                             compression], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["size"] == size
    assert report["rss_kb"] < 64 * 1024, report

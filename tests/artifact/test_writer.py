"""The writer: deterministic, atomic, streaming, and strict about what it is given."""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import tarfile
from pathlib import Path
from typing import IO, Dict, Optional, cast

import pytest

from mender_docker.artifact import (
    ArtifactError,
    ArtifactSpec,
    PayloadFile,
    load_private_key,
    load_public_key,
    read_artifact,
    write_artifact,
)
from mender_docker.artifact import compression as comp
from tests.artifact.helpers import members, sample_spec, write_sample
from tests.realstack import require, run


@pytest.mark.parametrize("compression", ["none", "gzip", "lzma", "zstd"])
def test_same_input_same_bytes(tmp_path: Path, compression: str) -> None:
    a = write_sample(tmp_path / "a.mender", compression=compression)
    b = write_sample(tmp_path / "b.mender", compression=compression)
    assert a.read_bytes() == b.read_bytes()


def test_signed_ecdsa_differs_only_in_signature(tmp_path: Path, keys: Dict[str, Path]) -> None:
    key = load_private_key(keys["ec"])  # ECDSA signatures are randomised
    a = members(write_sample(tmp_path / "a.mender", signer=key))
    b = members(write_sample(tmp_path / "b.mender", signer=key))
    assert [m for m in a if m[0] != "manifest.sig"] == [m for m in b if m[0] != "manifest.sig"]


def test_tar_headers_are_like_mender_artifacts(tmp_path: Path) -> None:
    path = write_sample(tmp_path / "a.mender", files=[("x", b"1"), ("y", b"")],
                        scripts=[("ArtifactCommit_Leave_10", b"#!/bin/sh\n")])
    with tarfile.open(path) as outer:
        infos = outer.getmembers()
        assert [i.name for i in infos] == ["version", "manifest", "header.tar.gz",
                                           "data/0000.tar.gz"]
        for info in infos:
            assert (info.uid, info.gid, info.uname, info.gname, info.mtime, info.mode) == (
                0, 0, "", "", 0, 0o600)
        header = outer.extractfile("header.tar.gz").read()  # type: ignore[union-attr]
        data = outer.extractfile("data/0000.tar.gz").read()  # type: ignore[union-attr]
    assert header[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert header[3] & 0x08 == 0  # no file name in the gzip header
    with tarfile.open(fileobj=io.BytesIO(header)) as tar:
        assert tar.getnames() == ["header-info", "scripts/ArtifactCommit_Leave_10",
                                  "headers/0000/type-info", "headers/0000/meta-data"]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert [(i.name, i.size, i.mode, i.mtime) for i in tar.getmembers()] == [
            ("x", 1, 0o600, 0), ("y", 0, 0o600, 0)]


def test_manifest_lists_every_checksum(tmp_path: Path) -> None:
    data = os.urandom(5000)
    path = write_sample(tmp_path / "a.mender", files=[("f", data)])
    m = dict(members(path))
    lines = m["manifest"].decode().splitlines()
    assert lines == sorted(lines, key=lambda line: line.split("  ")[1])
    assert f"{hashlib.sha256(data).hexdigest()}  data/0000/f" in lines
    assert f"{hashlib.sha256(m['version']).hexdigest()}  version" in lines
    assert f"{hashlib.sha256(m['header.tar.gz']).hexdigest()}  header.tar.gz" in lines


@pytest.mark.parametrize("meta", [
    {"nested": {"a": 1}}, {"list_of_dicts": [{"a": 1}]}, {"flag": True}, {"none": None},
    {"nested_list": [[1]]}])
def test_meta_data_must_be_flat(tmp_path: Path, meta: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ArtifactError, match="meta-data"):
        write_sample(tmp_path / "a.mender", meta=meta)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change,words", [
    (dict(artifact_name=""), "name"), (dict(device_types=[]), "device type"),
    (dict(payload_type="a b"), "payload type"), (dict(provides={"k": ["a"]}), "string"),
    (dict(scripts=[("NotAState_Enter", b"")]), "script name"),
    (dict(scripts=[("ArtifactInstall_Enter_01", b""), ("ArtifactInstall_Enter_01", b"")]), "twice"),
    (dict(artifact_depends={"artifact_name": "notalist"}), "list")])
def test_bad_spec_refused(tmp_path: Path, change: dict, words: str) -> None:  # type: ignore[type-arg]
    spec = sample_spec()
    for key, value in change.items():
        setattr(spec, key, value)
    with pytest.raises(ArtifactError, match=words):
        write_artifact(tmp_path / "a.mender", spec)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["../x", "/abs", "a/b", "with space", "", "dup"])
def test_bad_payload_names(tmp_path: Path, name: str) -> None:
    files = [PayloadFile.from_bytes(name, b"1")]
    if name == "dup":
        files.append(PayloadFile.from_bytes(name, b"2"))
    with pytest.raises(ArtifactError):
        write_artifact(tmp_path / "a.mender", sample_spec(), files=files)
    assert list(tmp_path.iterdir()) == []


def test_unknown_compression(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="unknown compression"):
        write_artifact(tmp_path / "a.mender", sample_spec(), compression="bz2")


def test_failure_leaves_nothing_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.mender"
    target.write_bytes(b"old")
    lying = PayloadFile("f", 10, lambda: io.BytesIO(b"12345"))  # shorter than it says
    with pytest.raises(ArtifactError, match="5 bytes or more, not 10"):
        write_artifact(target, sample_spec(), files=[lying])
    wrong_hash = PayloadFile("f", 3, lambda: io.BytesIO(b"abc"), sha256="0" * 64)
    with pytest.raises(ArtifactError, match="does not match its given sha256"):
        write_artifact(target, sample_spec(), files=[wrong_hash])
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mender"]


def test_file_longer_than_announced_is_caught(tmp_path: Path) -> None:
    grown = PayloadFile("f", 5, lambda: io.BytesIO(b"123456"))
    with pytest.raises(ArtifactError, match="changed while being written"):
        write_artifact(tmp_path / "a.mender", sample_spec(), files=[grown])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key", [None, "rsa", "ec", "ed"])
def test_one_pass_over_each_file(tmp_path: Path, keys: Dict[str, Path],
                                 key: Optional[str]) -> None:
    """Manifest and signature are filled in after the data: each file is opened once."""
    opened = []
    data = os.urandom(3 << 20)

    def opener() -> IO[bytes]:
        opened.append(1)
        return io.BytesIO(data)

    signer = load_private_key(keys[key]) if key else None
    write_artifact(tmp_path / "a.mender", sample_spec(),
                   files=[PayloadFile("f", len(data), opener), PayloadFile.from_bytes("g", b"")],
                   signer=signer)
    assert len(opened) == 1
    verify = load_public_key(keys[f"{key}_pub"]) if key else None
    info = read_artifact(tmp_path / "a.mender", verify_key=verify)
    assert [(f.name, f.sha256) for f in info.files] == [
        ("f", hashlib.sha256(data).hexdigest()), ("g", hashlib.sha256(b"").hexdigest())]


def test_given_sha256_is_accepted_in_any_case(tmp_path: Path) -> None:
    opened = []
    data = b"x" * 100

    def opener() -> IO[bytes]:
        opened.append(1)
        return io.BytesIO(data)

    f = PayloadFile("f", len(data), opener, sha256=hashlib.sha256(data).hexdigest().upper())
    write_artifact(tmp_path / "a.mender", sample_spec(), files=[f])
    assert len(opened) == 1
    assert read_artifact(tmp_path / "a.mender").files[0].sha256 == hashlib.sha256(data).hexdigest()


class _Pipe(io.RawIOBase):
    """A non-seekable output, like a pipe."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


def test_streams_are_written_the_same_as_files(tmp_path: Path) -> None:
    path = write_sample(tmp_path / "a.mender")
    seekable = io.BytesIO()
    pipe = _Pipe()
    for out in (seekable, cast(IO[bytes], pipe)):
        write_artifact(out, sample_spec(), files=[PayloadFile.from_bytes("a.bin", b"A" * 3000)])
    assert seekable.getvalue() == bytes(pipe.data) == path.read_bytes()


def test_payload_from_path(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(70000))
    write_artifact(tmp_path / "a.mender", ArtifactSpec("n", ["d"], "docker"),
                   files=[PayloadFile.from_path(str(source))])
    got: Dict[str, bytes] = {}
    read_artifact(tmp_path / "a.mender", payload_sink=lambda n, s, f: got.__setitem__(n, f.read()))
    assert got == {"src.bin": source.read_bytes()}


def _layers_and_text(seed: int) -> bytes:
    """Like a `docker save` of compressed layers and their JSON: random stretches and
    text, with boundaries on and off the gzip writer's blocks and 32 KiB segments."""
    rng = random.Random(seed)
    words = [rng.randbytes(5).hex().encode() for _ in range(300)]
    parts = []
    for size in (300_000, 70_000, 262_144, 32_768, 5, 500_000, 40_000, 1_000_000, 33):
        if len(parts) % 2:
            text = b" ".join(rng.choice(words) for _ in range(size // 8 + 1))
            parts.append(text[:size])
        else:
            parts.append(rng.randbytes(size))
    return b"".join(parts)


@pytest.mark.real
@pytest.mark.parametrize("deflater", ["zlib-ng", "zlib"])
def test_both_reference_tools_read_stored_and_deflated_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deflater: str
) -> None:
    """mender-artifact 3.9 and 4.0 validate (checksums included) and read a multi-block
    gzip payload of stored and deflated blocks, with zlib-ng and with the zlib fallback."""
    if deflater == "zlib":
        monkeypatch.setattr(comp, "_zlib_ng", None)
        monkeypatch.setattr(comp, "_isal_zlib", None)
    data = _layers_and_text(11)
    path = write_sample(tmp_path / "a.mender", files=[("images.tar", data), ("b", b"end")])
    assert path.stat().st_size < 0.8 * len(data)  # the text did compress
    got: Dict[str, bytes] = {}
    read_artifact(path, payload_sink=lambda n, s, f: got.__setitem__(n, f.read()))
    assert got == {"images.tar": data, "b": b"end"}
    require("mender-artifact", "mender-artifact-4")
    for tool in ("mender-artifact", "mender-artifact-4"):
        assert "validated successfully" in run([tool, "validate", str(path)]).stdout
        out = run([tool, "read", str(path)]).stdout
        # 3.9 aligns the values ("size:     N"), 4.0 does not
        assert re.search(rf"checksum: +{hashlib.sha256(data).hexdigest()}\n", out), (tool, out)
        assert re.search(rf"size: +{len(data)}\n", out), (tool, out)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_same_bytes_whatever_the_thread_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              compression: str) -> None:
    # zstd: more than two of its 8 MiB jobs, so that its workers share the input.
    data = _layers_and_text(12) * (1 if compression == "gzip" else 10)
    outputs = []
    for workers in (1, 2, 3):
        monkeypatch.setattr(comp.os, "cpu_count", lambda w=workers: w)
        outputs.append(write_sample(tmp_path / f"{workers}.mender", compression=compression,
                                    files=[("images.tar", data)]).read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    assert read_artifact(tmp_path / "1.mender").files[0].size == len(data)

"""Interop with the real mender-artifact 3.9, in both directions."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import IO, Dict, List, Optional

import pytest

from mender_docker.artifact import (
    load_private_key,
    load_public_key,
    read_artifact,
)
from tests.artifact.helpers import members, mender_artifact, write_sample

pytestmark = pytest.mark.real  # every test here runs the real mender-artifact

SCRIPT = ("ArtifactInstall_Enter_00", b"#!/bin/sh\necho installing\n")
FILES = [("images.tar", bytes(range(256)) * 40 + b"tail"), ("second.txt", b"hello\n")]


@pytest.mark.parametrize("compression", ["none", "gzip", "lzma"])
@pytest.mark.parametrize("key", [None, "rsa", "ec"])
@pytest.mark.parametrize("with_content", [True, False])
def test_reference_tool_reads_and_validates_ours(
    tmp_path: Path, keys: Dict[str, Path], compression: str, key: Optional[str],
    with_content: bool
) -> None:
    signer = load_private_key(keys[key]) if key else None
    path = write_sample(tmp_path / "ours.mender", files=FILES if with_content else [],
                        compression=compression, signer=signer,
                        scripts=[SCRIPT] if with_content else [])
    verify = ["-k", str(keys[f"{key}_pub"])] if key else []
    validated = mender_artifact("validate", *verify, str(path))
    assert "validated successfully" in validated.stdout
    out = mender_artifact("read", *verify, str(path)).stdout
    assert "Name: sample-1" in out
    assert "Version: 3" in out
    assert "Compatible devices: '[dev1 dev2]'" in out
    assert "Provides group: group-a" in out
    assert "Depends on one of artifact(s): [previous]" in out
    assert "Type:   docker" in out
    assert "rootfs-image.docker.version: sample-1" in out
    assert "needs.thing: yes" in out
    assert "needs.list: [a b]" in out
    assert "extra.key: b" in out
    assert 'Clears Provides: ["rootfs-image.docker.*"]' in out
    assert '"run_args": "-p 80:80"' in out
    assert ("signed and verified correctly" in out) == bool(key)
    if not key:
        assert "Signature: no signature" in out
    if with_content:
        assert SCRIPT[0] in out
        for name, data in FILES:
            assert f"name:     {name}" in out
            assert f"size:     {len(data)}" in out
            assert f"checksum: {hashlib.sha256(data).hexdigest()}" in out
    else:
        assert "name:" not in out
        suffix = {"none": "", "gzip": ".gz", "lzma": ".xz"}[compression]
        assert members(path)[-1][0] == f"data/0000.tar{suffix}"


@pytest.mark.parametrize("key", ["rsa", "ec"])
def test_reference_tool_rejects_our_signature_with_another_key(
    tmp_path: Path, keys: Dict[str, Path], key: str
) -> None:
    path = write_sample(tmp_path / "ours.mender", signer=load_private_key(keys[key]))
    result = mender_artifact("validate", "-k", str(keys[f"{key}2_pub"]), str(path), check=False)
    assert result.returncode != 0


def _reference_artifact(tmp_path: Path, compression: str, key: Optional[Path]) -> Path:
    for name, data in FILES:
        (tmp_path / name).write_bytes(data)
    (tmp_path / SCRIPT[0]).write_bytes(SCRIPT[1])
    meta = {"containers": ["reg/app@sha256:" + "1" * 64], "run_args": "--rm"}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    out = tmp_path / "theirs.mender"
    args = ["write", "module-image", "-T", "docker", "-n", "theirs-1", "-t", "dev1", "-t", "dev2",
            "-o", str(out), "-g", "grp", "--artifact-name-depends", "older",
            "--depends-groups", "g0", "--depends", "needs.thing:yes", "-p", "extra:value",
            "--software-name", "app", "-m", str(tmp_path / "meta.json"),
            "-s", str(tmp_path / SCRIPT[0]), "--compression", compression]
    for name, _ in FILES:
        args += ["-f", str(tmp_path / name)]
    if key is not None:
        args += ["-k", str(key)]
    mender_artifact(*args)
    return out


def _their_headers(path: Path) -> Dict[str, bytes]:
    """The header tar's members, extracted independently of our reader."""
    outer = dict(members(path))
    name = next(n for n in outer if n.startswith("header.tar"))
    with tarfile.open(fileobj=io.BytesIO(outer[name]), mode="r:*") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


@pytest.mark.parametrize("compression", ["none", "gzip", "lzma"])
@pytest.mark.parametrize("key", [None, "rsa", "ec"])
def test_we_read_and_validate_reference_artifacts(
    tmp_path: Path, keys: Dict[str, Path], compression: str, key: Optional[str]
) -> None:
    path = _reference_artifact(tmp_path, compression, keys[key] if key else None)
    received: Dict[str, bytes] = {}

    def sink(name: str, size: int, stream: IO[bytes]) -> None:
        chunks: List[bytes] = []
        while True:
            chunk = stream.read(1000)
            if not chunk:
                break
            chunks.append(chunk)
        received[name] = b"".join(chunks)
        assert size == len(received[name])

    verify = load_public_key(keys[f"{key}_pub"]) if key else None
    info = read_artifact(path, verify_key=verify, payload_sink=sink)
    assert received == dict(FILES)
    headers = _their_headers(path)
    assert info.header_info == json.loads(headers["header-info"])
    assert info.type_info == json.loads(headers["headers/0000/type-info"])
    assert info.meta_data == json.loads(headers["headers/0000/meta-data"])
    assert info.script_contents == {SCRIPT[0]: SCRIPT[1]}
    assert info.artifact_name == "theirs-1"
    assert info.artifact_group == "grp"
    assert info.device_types == ["dev1", "dev2"]
    assert info.artifact_depends["artifact_name"] == ["older"]
    assert info.provides["rootfs-image.app.version"] == "theirs-1"
    assert info.provides["extra"] == "value"
    assert info.clears_provides == ["rootfs-image.app.*"]
    assert info.compression == compression
    assert [(f.name, f.size, f.sha256) for f in info.files] == [
        (n, len(d), hashlib.sha256(d).hexdigest()) for n, d in FILES]
    assert info.signed == bool(key)
    assert info.signature_verified == bool(key)


@pytest.mark.parametrize("key", ["rsa", "ec"])
def test_we_reject_reference_signature_with_another_key(
    tmp_path: Path, keys: Dict[str, Path], key: str
) -> None:
    from mender_docker.errors import SignatureError

    path = _reference_artifact(tmp_path, "gzip", keys[key])
    with pytest.raises(SignatureError):
        read_artifact(path, verify_key=load_public_key(keys[f"{key}2_pub"]))


def test_empty_data_tar_is_like_the_reference(tmp_path: Path) -> None:
    """The reference writes an empty data tar as 1024 zero bytes; so do we."""
    ours = write_sample(tmp_path / "ours.mender", files=[], compression="none")
    mender_artifact("write", "module-image", "-T", "docker", "-n", "x", "-t", "dev1",
                    "-o", str(tmp_path / "theirs.mender"), "--compression", "none")
    our_data = members(ours)[-1]
    their_data = members(tmp_path / "theirs.mender")[-1]
    assert our_data[0] == their_data[0] == "data/0000.tar"
    assert our_data[1] == their_data[1] == b"\0" * 1024


def test_zstd_round_trip_matches_the_format(tmp_path: Path) -> None:
    """mender-artifact 3.9 has no zstd: check ours against the format description."""
    import zstandard

    path = write_sample(tmp_path / "z.mender", files=FILES, compression="zstd")
    names = [name for name, _ in members(path)]
    assert names == ["version", "manifest", "header.tar.zst", "data/0000.tar.zst"]
    outer = dict(members(path))
    for name in ("header.tar.zst", "data/0000.tar.zst"):
        assert outer[name][:4] == b"\x28\xb5\x2f\xfd"  # zstd frame magic
    data_tar = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(outer["data/0000.tar.zst"]))
    with tarfile.open(fileobj=data_tar, mode="r|") as tar:
        found = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    assert found == dict(FILES)
    manifest = outer["manifest"].decode()
    for name, data in FILES:
        assert f"{hashlib.sha256(data).hexdigest()}  data/0000/{name}\n" in manifest
    received: Dict[str, bytes] = {}
    info = read_artifact(path, payload_sink=lambda n, s, f: received.__setitem__(n, f.read()))
    assert received == dict(FILES)
    assert info.compression == "zstd"


def test_long_payload_names_both_ways(tmp_path: Path) -> None:
    """Names over 100 bytes need pax (ours) / GNU or pax (Go) headers."""
    name = "layer-" + "x" * 120 + ".tar"
    ours = write_sample(tmp_path / "ours.mender", files=[(name, b"long")])
    out = mender_artifact("read", str(ours)).stdout
    assert f"name:     {name}" in out
    (tmp_path / name).write_bytes(b"long")
    theirs = tmp_path / "theirs.mender"
    mender_artifact("write", "module-image", "-T", "docker", "-n", "t", "-t", "d", "-o",
                    str(theirs), "-f", str(tmp_path / name))
    got: Dict[str, bytes] = {}
    read_artifact(theirs, payload_sink=lambda n, s, f: got.__setitem__(n, f.read()))
    assert got == {name: b"long"}

"""What other writers produce and the reader must judge as mender-artifact does: bootstrap
and rootfs-image artifacts, directory entries, script-name suffixes, the exact manifest
grammar, padding after a tar's end (bounded work), and messages that name the fault.
The same cases written by the real mender-artifact 3.9 and 4.0 are judged side by side
with them in test_interop_corpus.py."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import IO, Any, Dict, List

import pytest

import mender_docker.artifact.reader as reader_module
from mender_docker.artifact import load_public_key, read_artifact, sign_manifest
from mender_docker.artifact.reader import PADDING_LIMIT
from mender_docker.errors import ArtifactError, SignatureError
from tests.artifact.crafting import DIRECTORY, HEADER_INFO, TYPE_INFO, Crafted
from tests.artifact.helpers import Member, tar_bytes

ZEROS = 1 << 20


def _header(payload_type: Any, type_info_type: Any, scripts: List[str] = ()) -> List[Member]:
    info = dict(HEADER_INFO, payloads=[{"type": payload_type}])
    type_info = dict(TYPE_INFO, type=type_info_type)
    return ([("header-info", json.dumps(info).encode())]
            + [(f"scripts/{name}", b"#!/bin/sh\n") for name in scripts]
            + [("headers/0000/type-info", json.dumps(type_info).encode())])


def _write(tmp_path: Path, crafted: Crafted, name: str = "a.mender") -> Path:
    path = tmp_path / name
    path.write_bytes(crafted.build())
    return path


class _Padded(Crafted):
    """The data tar followed, inside its compression, by `padding` bytes."""

    def __init__(self, padding: int, fill: bytes = b"\0", second_end_block: bytes = bytes(512)
                 ) -> None:
        super().__init__()
        self.padding = padding
        self.fill = fill
        self.second_end_block = second_end_block

    def data_tar(self) -> bytes:
        plain = tar_bytes(self.data_files)
        end = plain.rstrip(b"\0")
        end += bytes(-len(end) % 512)  # the last member's data padding
        body = end + bytes(512) + self.second_end_block
        deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
        out = [deflate.compress(body)]
        chunk = self.fill * (ZEROS // len(self.fill))
        for _ in range(self.padding // ZEROS):
            out.append(deflate.compress(chunk))
        out.append(deflate.compress(self.fill * (self.padding % ZEROS)))
        return b"".join(out) + deflate.flush()


def test_bootstrap_artifact_has_no_payload_type(tmp_path: Path) -> None:
    c = Crafted(header_files=_header(None, None), data_files=[])
    info = read_artifact(_write(tmp_path, c))
    assert info.payload_type is None and info.files == []


def test_rootfs_image_with_empty_type_info_type(tmp_path: Path) -> None:
    """mender-artifact before 4.3.1 writes `"type": ""` for rootfs-image."""
    c = Crafted(header_files=_header("rootfs-image", ""))
    assert read_artifact(_write(tmp_path, c)).payload_type == "rootfs-image"


def test_rootfs_image_with_two_files_is_refused(tmp_path: Path) -> None:
    c = Crafted(header_files=_header("rootfs-image", "rootfs-image"),
                data_files=[("a.ext4", b"a"), ("b.ext4", b"b")])
    with pytest.raises(ArtifactError, match="rootfs-image payload holds one file"):
        read_artifact(_write(tmp_path, c))


def test_empty_payload_type_is_refused(tmp_path: Path) -> None:
    c = Crafted(header_files=_header("", ""))
    with pytest.raises(ArtifactError, match="payload type is empty"):
        read_artifact(_write(tmp_path, c))


def test_directory_entries_in_the_header_are_skipped(tmp_path: Path) -> None:
    files = _header("docker", "docker", ["ArtifactInstall_Enter_00"])
    files = files[:1] + [("scripts", b"")] + files[1:2] + [("headers", b""),
                                                           ("headers/0000", b"")] + files[2:]
    kinds = {"scripts": DIRECTORY, "headers": DIRECTORY, "headers/0000": DIRECTORY}
    c = Crafted(header_files=files, header_kinds=kinds)
    info = read_artifact(_write(tmp_path, c))
    assert [s.name for s in info.scripts] == ["ArtifactInstall_Enter_00"]


def test_a_directory_before_header_info_is_refused(tmp_path: Path) -> None:
    files = [("headers", b"")] + _header("docker", "docker")
    c = Crafted(header_files=files, header_kinds={"headers": DIRECTORY})
    with pytest.raises(ArtifactError, match="is a directory"):
        read_artifact(_write(tmp_path, c))


@pytest.mark.parametrize("name", ["ArtifactInstall_Enter_00", "ArtifactCommit_Leave_99_a.b",
                                  "ArtifactRollback_Error_05+x", "ArtifactFailure_Enter_10_ünï",
                                  "ArtifactReboot_Enter_01_wifi-driver",
                                  "ArtifactInstall_Leave_02_"])
def test_script_names_the_reference_accepts(tmp_path: Path, name: str) -> None:
    c = Crafted(header_files=_header("docker", "docker", [name]))
    assert [s.name for s in read_artifact(_write(tmp_path, c)).scripts] == [name]


@pytest.mark.parametrize("name, words", [
    ("ArtifactInstall_Enter", "bad state script name"),
    ("ArtifactInstall_Enter_0", "bad state script name"),
    ("ArtifactInstall_Enter_00_a b", "bad state script name"),
    ("Download_Enter_00", "'Download' scripts cannot be in an artifact"),
    ("Idle_Leave_01_x", "'Idle' scripts cannot be in an artifact"),
])
def test_script_names_the_reference_refuses(tmp_path: Path, name: str, words: str) -> None:
    c = Crafted(header_files=_header("docker", "docker", [name]))
    with pytest.raises(ArtifactError, match=words):
        read_artifact(_write(tmp_path, c))


@pytest.mark.parametrize("change, words", [
    (lambda m: m.replace(b"\n", b"\r\n"), "CR LF"),
    (lambda m: m.replace(b"\n", b"\v"), "does not end with a line feed"),
    (lambda m: m.replace(b"\n", b"\v", 1), "name with white space"),
    (lambda m: m + b"\n", "is blank"),
    (lambda m: m.replace(b"  ", b" ", 1), "two spaces"),
    (lambda m: m.upper().replace(b"VERSION", b"version").replace(b"HEADER.TAR.GZ",
                                                                  b"header.tar.gz"),
     "upper-case checksum"),
    (lambda m: m[:-1], "does not end with a line feed"),
    (lambda m: b"\t" + m, "64-digit sha256"),
])
def test_manifest_grammar_is_exact(tmp_path: Path, change: Any, words: str) -> None:
    c = Crafted(data_files=[])
    c.manifest_override = change(c.manifest())
    with pytest.raises(ArtifactError, match=words):
        read_artifact(_write(tmp_path, c))


def test_a_damaged_version_is_a_checksum_mismatch(tmp_path: Path) -> None:
    c = Crafted()
    good = c.manifest()
    c.manifest_override = good
    c.version = c.version.replace(b"mender", b"mendex")
    with pytest.raises(ArtifactError, match="'version' does not match its sha256"):
        read_artifact(_write(tmp_path, c))


def test_version_as_a_string_is_named(tmp_path: Path) -> None:
    c = Crafted(version=b'{"format":"mender","version":"3"}')
    with pytest.raises(ArtifactError, match="version must be a number, not '3'"):
        read_artifact(_write(tmp_path, c))


def _count_decompressed(monkeypatch: pytest.MonkeyPatch) -> Dict[str, int]:
    """Counts what the decompressors hand the reader: the work a padding costs."""
    counted = {"bytes": 0}
    real_open = reader_module.comp.open_reader

    class Counting:
        def __init__(self, stream: IO[bytes]) -> None:
            self._stream = stream

        def read(self, n: int = -1) -> bytes:
            data = self._stream.read(n)
            counted["bytes"] += len(data)
            return data

    def open_reader(compression: str, raw: IO[bytes]) -> Any:
        return Counting(real_open(compression, raw))

    monkeypatch.setattr(reader_module.comp, "open_reader", open_reader)
    return counted


def test_a_zero_padding_bomb_costs_bounded_work(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """256 MiB of compressed zeros after the data tar (a 250 KB artifact): the reader stops
    after PADDING_LIMIT of them and says why."""
    path = _write(tmp_path, _Padded(256 << 20))
    assert path.stat().st_size < 1 << 20
    counted = _count_decompressed(monkeypatch)
    with pytest.raises(ArtifactError, match="zeros after the end of the tar"):
        read_artifact(path)
    assert counted["bytes"] < PADDING_LIMIT + (1 << 20)


def test_tar_record_padding_is_accepted(tmp_path: Path) -> None:
    info = read_artifact(_write(tmp_path, _Padded(9 * 1024)))
    assert [f.name for f in info.files] == ["a.bin"]


def test_data_after_the_end_of_the_tar_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="unexpected data after the end of the tar"):
        read_artifact(_write(tmp_path, _Padded(4096, fill=b"x")))


def test_a_damaged_second_end_block_is_refused(tmp_path: Path) -> None:
    damaged = bytes(100) + b"\x01" + bytes(411)
    with pytest.raises(ArtifactError, match="corrupt end-of-archive marker"):
        read_artifact(_write(tmp_path, _Padded(0, second_end_block=damaged)))


def test_a_header_padding_bomb_is_refused(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    class HeaderBomb(Crafted):
        def header_tar(self) -> bytes:
            deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
            parts = [deflate.compress(tar_bytes(self.header_files))]
            parts += [deflate.compress(bytes(ZEROS)) for _ in range(64)]
            return b"".join(parts) + deflate.flush()

    path = _write(tmp_path, HeaderBomb())
    counted = _count_decompressed(monkeypatch)
    with pytest.raises(ArtifactError, match="header.tar: more than"):
        read_artifact(path)
    assert counted["bytes"] < PADDING_LIMIT + (1 << 20)


def test_payload_names_the_reference_refuses(tmp_path: Path) -> None:
    c = Crafted(data_files=[("a:b.bin", b"1")])
    with pytest.raises(ArtifactError, match="other than ASCII letters, digits"):
        read_artifact(_write(tmp_path, c))


def test_signed_members_out_of_order_are_named(tmp_path: Path, keys: Dict[str, Path]) -> None:
    from mender_docker.artifact import load_private_key

    c = Crafted()
    c.signature = sign_manifest(c.manifest(), load_private_key(keys["rsa"]))
    members = c.members()
    names = [n for n, _ in members]
    sig = members.pop(names.index("manifest.sig"))
    members.insert(len(members) - 1, sig)  # after header.tar.gz
    path = tmp_path / "o.mender"
    path.write_bytes(c.build(members))
    with pytest.raises(SignatureError, match="out of order: 'manifest.sig' must follow"):
        read_artifact(path, verify_key=load_public_key(keys["rsa_pub"]))
    with pytest.raises(ArtifactError, match="members out of order: found 'manifest.sig'"):
        read_artifact(path)


def test_signature_messages_name_the_fault(tmp_path: Path, keys: Dict[str, Path]) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    c = Crafted()
    c.signature = b""
    with pytest.raises(SignatureError, match="manifest.sig is empty"):
        read_artifact(_write(tmp_path, c), verify_key=load_public_key(keys["rsa_pub"]))
    bigger = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    c.signature = sign_manifest(c.manifest(), bigger)
    with pytest.raises(SignatureError, match="an RSA-3072 signature, but the key is RSA-2048"):
        read_artifact(_write(tmp_path, c, "b.mender"),
                      verify_key=load_public_key(keys["rsa_pub"]))
    with pytest.raises(SignatureError, match="an RSA-3072 signature, but the key is ECDSA"):
        read_artifact(_write(tmp_path, c, "c.mender"),
                      verify_key=load_public_key(keys["ec_pub"]))



def test_the_writer_refuses_payload_names_the_reference_refuses(tmp_path: Path) -> None:
    from mender_docker.artifact import PayloadFile, write_artifact
    from tests.artifact.helpers import sample_spec

    for name in ("a:b.bin", "a b", "ü.bin", "dir/a"):
        with pytest.raises(ArtifactError, match="payload file name|unsafe"):
            write_artifact(tmp_path / "w.mender", sample_spec(),
                           files=[PayloadFile.from_bytes(name, b"1")])
    assert not (tmp_path / "w.mender").exists()

"""Every kind of bad artifact is one clear ArtifactError (and a one-line CLI error)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

from mender_docker.artifact import load_private_key, load_public_key, read_artifact, sign_manifest
from mender_docker.errors import ArtifactError, SignatureError
from tests.artifact.crafting import (
    CHARDEV,
    DIRECTORY,
    FIFO,
    HARDLINK,
    HEADER_INFO,
    SYMLINK,
    Crafted,
    gz,
)


def _reorder(order: list) -> Callable[[], bytes]:  # type: ignore[type-arg]
    def build() -> bytes:
        c = Crafted()
        by_name = dict(c.members())
        return c.build([(n, by_name[n]) for n in order])
    return build


def _with_members(change: Callable[[list], list]) -> Callable[[], bytes]:  # type: ignore[type-arg]
    def build() -> bytes:
        c = Crafted()
        return c.build(change(c.members()))
    return build


def _crafted(**kw: object) -> Callable[[], bytes]:
    return lambda: Crafted(**kw).build()  # type: ignore[arg-type]


def _outer_kind(name: str, kind: bytes) -> Callable[[], bytes]:
    def build() -> bytes:
        c = Crafted()
        return c.build(c.members() + [(name, b"")], {name: kind})
    return build


def _replace(name: str, data: bytes) -> Callable[[], bytes]:
    return _with_members(lambda ms: [(n, data if n == name else d) for n, d in ms])


def _header_info(edit: Callable[[Dict[str, Any]], None]) -> Callable[[], bytes]:
    info = json.loads(json.dumps(HEADER_INFO))
    edit(info)
    return _crafted(header_files=[("header-info", json.dumps(info).encode())]
                    + Crafted().header_files[1:])


def _meta(raw: bytes) -> Callable[[], bytes]:
    return _crafted(header_files=Crafted().header_files[:2] + [("headers/0000/meta-data", raw)])


BIG = 1 << 20
CASES: Dict[str, tuple] = {  # type: ignore[type-arg]
    # (builder, words the message must contain)
    "empty file": (lambda: b"", "artifact"),
    "not a tar": (lambda: b"hello world" * 100, "corrupt"),
    "version missing": (_reorder(["manifest", "header.tar.gz", "data/0000.tar.gz"]),
                        "not a Mender artifact"),
    "manifest before version": (_reorder(["manifest", "version", "header.tar.gz",
                                          "data/0000.tar.gz"]), "not a Mender artifact"),
    "data before header": (_reorder(["version", "manifest", "data/0000.tar.gz",
                                     "header.tar.gz"]), "header.tar"),
    "header missing": (_reorder(["version", "manifest", "data/0000.tar.gz"]), "header.tar"),
    "data missing": (_reorder(["version", "manifest", "header.tar.gz"]), "data/0000.tar"),
    "version twice": (_reorder(["version", "version", "manifest"]), "'version' appears twice"),
    "member after data": (_with_members(lambda ms: ms + [("extra", b"x")]),
                          "unexpected member 'extra'"),
    "data member twice": (_with_members(lambda ms: ms + [ms[-1]]), "unexpected member"),
    "unknown member before header": (_with_members(lambda ms: ms[:2] + [("foo", b"x")] + ms[2:]),
                                     "'foo'"),
    "augmented": (_with_members(lambda ms: ms[:2] + [("manifest-augment", b"x")] + ms[2:]),
                  "augmented"),
    "unknown compression": (_with_members(
        lambda ms: [(n.replace("header.tar.gz", "header.tar.bz2"), d) for n, d in ms]),
        "unknown compression suffix"),
    "format not mender": (_crafted(version=b'{"format":"other","version":3}'), "not a Mender"),
    "version 2": (_crafted(version=b'{"format":"mender","version":2}'), "version 2"),
    "version not json": (_crafted(version=b"{nope"), "not JSON"),
    "version checksum": (_crafted(manifest_override=None, manifest_extra=[
        ("version", "0" * 64)]), "'version' does not match"),
    "header checksum": (_crafted(manifest_extra=[("header.tar.gz", "1" * 64)]),
                        "'header.tar.gz' does not match"),
    "payload checksum": (_crafted(manifest_extra=[("data/0000/a.bin", "2" * 64)]),
                         "'a.bin': sha256"),
    "payload not in manifest": (_crafted(manifest_drop=["data/0000/a.bin"]),
                                "not in the manifest"),
    "manifest lists missing payload": (_crafted(manifest_extra=[("data/0000/b.bin", "3" * 64)]),
                                       "lacks it"),
    "manifest lists unknown member": (_crafted(manifest_extra=[("other", "3" * 64)]),
                                      "lacks it"),
    "header not in manifest": (_crafted(manifest_drop=["header.tar.gz"]), "not in the manifest"),
    "manifest malformed": (_crafted(manifest_override=b"not a manifest\n"), "manifest line 1"),
    "manifest duplicate": (_crafted(manifest_override=("0" * 64 + "  version\n").encode() * 2),
                           "twice"),
    "manifest empty": (_crafted(manifest_override=b""), "manifest is empty"),
    "manifest oversized": (_crafted(manifest_override=b"#" * (BIG + 1)), "refusing more"),
    "payload twice": (_crafted(data_files=[("a.bin", b"1"), ("a.bin", b"1")]), "twice"),
    "payload in dir": (_crafted(data_files=[("d/a.bin", b"1")]), "in a directory"),
    "payload dotdot": (_crafted(data_files=[("../a.bin", b"1")]), "unsafe member name"),
    "payload absolute": (_crafted(data_files=[("/etc/a.bin", b"1")]), "unsafe member name"),
    "payload symlink": (_crafted(data_kinds={"a.bin": SYMLINK}), "symlink"),
    "payload hardlink": (_crafted(data_kinds={"a.bin": HARDLINK}), "hard link"),
    "payload device": (_crafted(data_kinds={"a.bin": CHARDEV}), "character device"),
    "payload fifo": (_crafted(data_kinds={"a.bin": FIFO}), "FIFO"),
    "payload directory": (_crafted(data_kinds={"a.bin": DIRECTORY}), "directory"),
    "outer dotdot": (_with_members(lambda ms: [("../version", ms[0][1])] + ms[1:]),
                     "unsafe member name"),
    "outer absolute": (_with_members(lambda ms: [("/version", ms[0][1])] + ms[1:]),
                       "unsafe member name"),
    "outer symlink": (_outer_kind("data/0001", SYMLINK), "symlink"),
    "outer device": (_outer_kind("dev", CHARDEV), "character device"),
    "header symlink": (_crafted(header_kinds={"headers/0000/meta-data": SYMLINK}), "symlink"),
    "header dotdot": (_crafted(header_files=[("header-info", b"{}"), ("../x", b"1")]),
                      "unsafe member name"),
    "header-info not json": (_crafted(header_files=[("header-info", b"{not json"),
                                                    ("headers/0000/type-info", b"{}")]),
                             "header-info is not valid JSON"),
    "header-info oversized": (_crafted(header_files=[("header-info", b" " * (BIG + 1))]),
                              "refusing more"),
    "header files too big in all": (_crafted(header_files=Crafted().header_files + [
        (f"scripts/ArtifactInstall_Enter_{i:02}", bytes(BIG)) for i in range(17)]), "in all"),
    "header-info not first": (_crafted(header_files=[
        ("headers/0000/type-info", b"{}"), ("header-info", b"{}")]), "first member"),
    "type-info missing": (_crafted(header_files=Crafted().header_files[:1]),
                          "type-info is missing"),
    "type-info wrong type": (_crafted(header_files=[
        Crafted().header_files[0], ("headers/0000/type-info", b'{"type":"other"}')]),
        "differs"),
    "meta-data not json": (_crafted(header_files=Crafted().header_files[:2] + [
        ("headers/0000/meta-data", b"[1,")]), "meta-data is not valid JSON"),
    "unknown header member": (_crafted(header_files=Crafted().header_files + [
        ("headers/0000/other", b"1")]), "unknown member"),
    "bad script name": (_crafted(header_files=Crafted().header_files[:1] + [
        ("scripts/evil", b"1")] + Crafted().header_files[1:]), "state script name"),
    # each names the field at fault (as mender-artifact 3.9 and 4.0 refuse each)
    "artifact_name a number": (_header_info(lambda i: i["artifact_provides"].update(
        artifact_name=5)), "artifact_provides.artifact_name must be a string, not a number"),
    "device_type empty": (_header_info(lambda i: i["artifact_depends"].update(
        device_type=[])), "artifact_depends.device_type is missing or empty"),
    "depends artifact_name a string": (_header_info(lambda i: i["artifact_depends"].update(
        artifact_name="prev")), "artifact_depends.artifact_name must be a list of strings"),
    "header-info unknown key": (_header_info(lambda i: i.update(extra=1)),
                                "header-info: unknown key 'extra'"),
    "null payload type with a payload": (_crafted(header_files=[
        ("header-info", json.dumps({**HEADER_INFO, "payloads": [{"type": None}]}).encode()),
        ("headers/0000/type-info", b'{"type":null}')]), "payload type is null"),
    "type-info provides a list": (_crafted(header_files=[
        Crafted().header_files[0], ("headers/0000/type-info", b'{"artifact_provides":'
                                    b'{"k":["a"]}}')]), "'k' must be a string, not a list"),
    "version unknown key": (_crafted(version=b'{"format":"mender","version":3,"x":1}'),
                            "member 'version': unknown key 'x'"),
    "meta-data 1e400": (_meta(b'{"n":1e400}'), "meta-data: the number 1e400 is out of range"),
    "meta-data NaN": (_meta(b'{"n":NaN}'), "meta-data: NaN is not JSON"),
    "meta-data lone surrogate": (_meta(b'{"n":"\\udc00"}'), "surrogate"),
    "meta-data without type-info": (_crafted(header_files=[
        Crafted().header_files[0], Crafted().header_files[2]]),
        "headers/0000/type-info is missing"),
    "meta-data before type-info": (_crafted(header_files=[
        Crafted().header_files[0], Crafted().header_files[2], Crafted().header_files[1]]),
        "'headers/0000/meta-data' comes before 'headers/0000/type-info'"),
    "data tar garbage": (_replace("data/0000.tar.gz", b"\x1f\x8b" + b"\xff" * 300), "corrupt"),
    "header tar garbage": (_replace("header.tar.gz", gz(b"x" * 700)), "does not match"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_artifact_is_one_clear_error(tmp_path: Path, case: str) -> None:
    build, words = CASES[case]
    path = tmp_path / "bad.mender"
    path.write_bytes(build())
    with pytest.raises(ArtifactError) as caught:
        read_artifact(path)
    message = str(caught.value)
    assert "\n" not in message
    assert words in message, message


def test_crafted_baseline_is_valid(tmp_path: Path) -> None:
    """The crafting helper makes valid artifacts, so each case above tests one defect."""
    path = tmp_path / "good.mender"
    path.write_bytes(Crafted().build())
    info = read_artifact(path)
    assert [f.name for f in info.files] == ["a.bin"]


def _content_end(raw: bytes) -> int:
    """Where the last member's data ends (tar padding and end blocks follow)."""
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        last = tar.getmembers()[-1]
        return last.offset_data + last.size


@pytest.mark.parametrize("cut", [10, 600, 1100, 1600, 2100, -300, -100, -20, -1])
def test_truncated_artifact(tmp_path: Path, cut: int) -> None:
    raw = Crafted().build()
    end = _content_end(raw)
    path = tmp_path / "cut.mender"
    path.write_bytes(raw[:cut] if cut > 0 else raw[:end + cut])
    with pytest.raises(ArtifactError) as caught:
        read_artifact(path)
    assert "\n" not in str(caught.value)


def test_truncated_stream_of_a_big_payload(tmp_path: Path) -> None:
    raw = Crafted(data_files=[("a.bin", bytes(range(256)) * 8000)]).build()
    with pytest.raises(ArtifactError):
        read_artifact(io.BytesIO(raw[: len(raw) // 2]))


def _signed(keys: Dict[str, Path], key: str, tamper: bool = False) -> bytes:
    c = Crafted()
    c.signature = sign_manifest(c.manifest(), load_private_key(keys[key]))
    if tamper:
        c.manifest_override = c.manifest().replace(b"version\n", b"version \n")
    return c.build()


@pytest.mark.parametrize("key,verify,words", [
    ("ec", "ec2_pub", "does not verify"),
    ("rsa", "rsa2_pub", "does not verify"),
    ("ec", "rsa_pub", "wrong key"),
    ("rsa", "ec_pub", "wrong key"),
    ("rsa", "ed_pub", "Ed25519"),
])
def test_wrong_key(tmp_path: Path, keys: Dict[str, Path], key: str, verify: str,
                   words: str) -> None:
    path = tmp_path / "s.mender"
    path.write_bytes(_signed(keys, key))
    read_artifact(path, verify_key=load_public_key(keys[f"{key}_pub"]))  # the right key works
    with pytest.raises(SignatureError, match=words):
        read_artifact(path, verify_key=load_public_key(keys[verify]))


@pytest.mark.parametrize("key", ["rsa", "ec", "ed"])
def test_tampered_manifest_fails_signature(tmp_path: Path, keys: Dict[str, Path],
                                           key: str) -> None:
    c = Crafted()
    c.signature = sign_manifest(c.manifest(), load_private_key(keys[key]))
    c.manifest_override = c.manifest() + b"0" * 64 + b"  data/0000/extra\n"
    path = tmp_path / "t.mender"
    path.write_bytes(c.build())
    with pytest.raises(SignatureError, match="does not verify"):
        read_artifact(path, verify_key=load_public_key(keys[f"{key}_pub"]))


def test_key_given_but_unsigned(tmp_path: Path, keys: Dict[str, Path]) -> None:
    path = tmp_path / "u.mender"
    path.write_bytes(Crafted().build())
    with pytest.raises(SignatureError, match="not signed"):
        read_artifact(path, verify_key=load_public_key(keys["ec_pub"]))


def test_manifest_twice_is_named_also_with_a_key(tmp_path: Path, keys: Dict[str, Path]) -> None:
    c = Crafted()
    c.signature = sign_manifest(c.manifest(), load_private_key(keys["ec"]))
    ms = c.members()
    path = tmp_path / "twice.mender"
    path.write_bytes(c.build(ms[:2] + [ms[1]] + ms[2:]))
    for key in (None, load_public_key(keys["ec_pub"])):
        with pytest.raises(ArtifactError, match="member 'manifest' appears twice"):
            read_artifact(path, verify_key=key)


@pytest.mark.parametrize("edit,words", [
    (lambda s: b" " + s, "' ' at byte 0"), (lambda s: s + b"\t", "'\\t' at byte"),
    (lambda s: s.rstrip(b"="), "bad length or padding")])
def test_signature_text_beyond_line_breaks_is_refused(
        tmp_path: Path, keys: Dict[str, Path], edit: Callable[[bytes], bytes],
        words: str) -> None:
    """Line breaks anywhere are skipped (as Go's decoder does); spaces and tabs are not."""
    c = Crafted()
    signature = sign_manifest(c.manifest(), load_private_key(keys["rsa"]))
    path = tmp_path / "s.mender"
    c.signature = b"\r\n".join(signature[i:i + 64] for i in range(0, len(signature), 64))
    path.write_bytes(c.build())
    read_artifact(path, verify_key=load_public_key(keys["rsa_pub"]))
    c.signature = edit(signature)
    path.write_bytes(c.build())
    with pytest.raises(SignatureError, match="manifest.sig is not base64") as caught:
        read_artifact(path, verify_key=load_public_key(keys["rsa_pub"]))
    assert words in str(caught.value)


@pytest.mark.parametrize("signature", [b"!!!not base64", b"", b"QUJD"])
def test_garbage_signature(tmp_path: Path, keys: Dict[str, Path], signature: bytes) -> None:
    c = Crafted()
    c.signature = signature
    path = tmp_path / "g.mender"
    path.write_bytes(c.build())
    with pytest.raises(SignatureError):
        read_artifact(path, verify_key=load_public_key(keys["ec_pub"]))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mender_docker.cli.main", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case", ["not a tar", "payload checksum", "outer dotdot",
                                  "version 2", "header-info not json", "payload symlink"])
@pytest.mark.parametrize("command", ["read", "validate"])
def test_cli_reports_bad_artifact_in_one_line(tmp_path: Path, case: str, command: str) -> None:
    path = tmp_path / "bad.mender"
    path.write_bytes(CASES[case][0]())
    result = _cli(command, str(path))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mender-docker {command}: error:"), lines
    assert CASES[case][1] in lines[0]


def test_cli_wrong_key_and_missing_file(tmp_path: Path, keys: Dict[str, Path]) -> None:
    path = tmp_path / "s.mender"
    path.write_bytes(_signed(keys, "ec"))
    good = _cli("validate", str(path), "-k", str(keys["ec_pub"]))
    assert good.returncode == 0, good.stderr
    for args in ([str(path), "-k", str(keys["ec2_pub"])], [str(path), "-k", str(keys["rsa_pub"])],
                 [str(tmp_path / "missing.mender")], [str(path), "-k", str(path)]):
        result = _cli("validate", *args)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_unsigned_member_order_with_signature(tmp_path: Path, keys: Dict[str, Path]) -> None:
    """manifest.sig must sit right after the manifest."""
    c = Crafted()
    c.signature = sign_manifest(c.manifest(), load_private_key(keys["ec"]))
    ms = c.members()
    path = tmp_path / "o.mender"
    path.write_bytes(c.build([ms[0], ms[1], ms[3], ms[2], ms[4]]))
    with pytest.raises(ArtifactError):
        read_artifact(path, verify_key=load_public_key(keys["ec_pub"]))


"""Pure parts: manifest, headers and meta-data rules (no I/O)."""

from __future__ import annotations

import json

import pytest

from mender_docker.artifact import ArtifactError, check_flat_meta_data, parse_manifest
from mender_docker.artifact.headers import build_header_files, parse_header_info
from mender_docker.artifact.manifest import serialise_manifest
from tests.artifact.helpers import sample_spec

A, B = "a" * 64, "b" * 64


def test_manifest_round_trip_sorted() -> None:
    raw = serialise_manifest({"version": A, "data/0000/x": B})
    assert raw == f"{B}  data/0000/x\n{A}  version\n".encode()
    assert parse_manifest(raw) == {"version": A, "data/0000/x": B}


@pytest.mark.parametrize("raw,words", [
    (b"", "empty"), (f"{A} version\n".encode(), "line 1"), (f"{A[:-1]}  v\n".encode(), "line 1"),
    (f"{A.upper()}  v\n".encode(), "line 1"), (f"{A}  v\n{B}  v\n".encode(), "twice"),
    (b"\xff\xfe", "UTF-8"), (f"{A}  two words\n".encode(), "line 1")])
def test_bad_manifests(raw: bytes, words: str) -> None:
    with pytest.raises(ArtifactError, match=words):
        parse_manifest(raw)


def test_serialise_refuses_bad_entries() -> None:
    with pytest.raises(ArtifactError):
        serialise_manifest({"v": "nothex"})
    with pytest.raises(ArtifactError):
        serialise_manifest({"a b": A})


def test_flat_meta_data() -> None:
    ok = {"s": "x", "i": 1, "f": 1.5, "l": ["a", 2, 3.5], "e": []}
    assert check_flat_meta_data(ok) == ok
    bad: object
    for bad in ({"d": {}}, {"b": False}, {"n": None}, {"l": [None]}, [1], "x"):
        with pytest.raises(ArtifactError):
            check_flat_meta_data(bad)


def test_header_files_content() -> None:
    files = dict(build_header_files(sample_spec(scripts=[("ArtifactInstall_Enter_00", b"s")])))
    info = json.loads(files["header-info"])
    assert info == {"payloads": [{"type": "docker"}],
                    "artifact_provides": {"artifact_name": "sample-1",
                                          "artifact_group": "group-a"},
                    "artifact_depends": {"device_type": ["dev1", "dev2"],
                                         "artifact_name": ["previous"]}}
    assert parse_header_info(files["header-info"]) == info
    type_info = json.loads(files["headers/0000/type-info"])
    assert type_info["clears_artifact_provides"] == ["rootfs-image.docker.*"]
    assert type_info["artifact_depends"] == {"needs.thing": "yes", "needs.list": ["a", "b"]}
    assert files["scripts/ArtifactInstall_Enter_00"] == b"s"


@pytest.mark.parametrize("raw", [
    b"[]", b'{"payloads":[]}', b'{"payloads":[{"type":"x"}],"artifact_provides":{}}',
    b'{"payloads":[{"type":"x"}],"artifact_provides":{"artifact_name":"n"},'
    b'"artifact_depends":{"device_type":"notalist"}}'])
def test_bad_header_info(raw: bytes) -> None:
    with pytest.raises(ArtifactError, match="header-info"):
        parse_header_info(raw)

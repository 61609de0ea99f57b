"""`--embed-images` on a real docker-registry: platforms, shared layers, sizes, options."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Dict, List

import pytest

from mender_docker.artifact import iter_payloads, read_artifact
from mender_docker.cli.gen import main as gen_main
from mender_docker.cli.gen import parse_options
from mender_docker.gen import generate
from mender_docker.registry.platform import host_platform
from mender_docker.spec import loaded_tag
from tests.realstack import Registry, run
from tests.registry.fixtures import PushedSet
from tests.registry.ocipush import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    layer,
    push_blob,
    push_image,
    push_manifest,
)


def payload_members(artifact: Path) -> Dict[str, bytes]:
    for name, _, stream in iter_payloads(str(artifact)):
        assert name == "images.tar"
        with tarfile.open(fileobj=io.BytesIO(stream.read())) as archive:
            return {m.name: archive.extractfile(m).read() for m in archive}  # type: ignore[union-attr]
    raise AssertionError("no payload")


def gen(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "out.mender"
    generate(parse_options(["--embed-images", "-n", "a1", "-t", "dev", "-o", str(out), *args]))
    return out


def test_index_embeds_the_host_platform_by_default(pushed: PushedSet, tmp_path: Path) -> None:
    assert str(host_platform()) == "linux/amd64", "the fixture's index has amd64 for this host"
    artifact = gen(tmp_path, pushed.ref("multi"))
    meta = read_artifact(str(artifact)).meta_data
    assert meta is not None
    child = pushed.children["linux/amd64"]
    pinned = f"{pushed.host}/{pushed.prefix}/multi@{child.digest}"
    # pinned to the platform manifest actually embedded, not to the index
    assert meta["containers"] == [pinned]
    assert meta["image_ids"] == [child.config_digest]
    manifest = json.loads(payload_members(artifact)["manifest.json"])
    assert manifest[0]["RepoTags"] == [loaded_tag(pinned)]
    # the exact manifest bytes the digest names travel with it (issue 19): no index
    # is needed for a reference pinned to the platform manifest
    carried = manifest[0]["RegistryManifest"].encode()
    assert "sha256:" + hashlib.sha256(carried).hexdigest() == child.digest
    assert json.loads(carried)["config"]["digest"] == child.config_digest
    assert "RegistryIndex" not in manifest[0]


def test_platform_option_picks_the_index_entry(pushed: PushedSet, tmp_path: Path) -> None:
    artifact = gen(tmp_path, "--platform", "linux/arm/v7", pushed.ref("multi"))
    meta = read_artifact(str(artifact)).meta_data
    assert meta is not None
    assert meta["image_ids"] == [pushed.children["linux/arm/v7"].config_digest]


def test_unknown_platform_is_one_clear_error(
    pushed: PushedSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.mender"
    code = gen_main(["--offline", "-n", "a", "-t", "d", "-o", str(out),
                     "--platform", "linux/s390x", pushed.ref("multi")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "no image for platform linux/s390x" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_shared_layers_are_stored_once_and_sizes_are_unpacked(
    registry: Registry, tmp_path: Path
) -> None:
    common = {"bin/tool": b"\x7fELF" + bytes(range(256)) * 400}
    first = push_image(registry.host, "offgen/a", "v1", [common, {"a": b"a" * 5000}])
    second = push_image(registry.host, "offgen/b", "v1", [common, {"b": b"b"}])
    artifact = gen(tmp_path, f"{registry.host}/offgen/a:v1", f"{registry.host}/offgen/b:v1")
    members = payload_members(artifact)
    manifest = json.loads(members["manifest.json"])
    layers: List[str] = [name for entry in manifest for name in entry["Layers"]]
    assert layers[0] == layers[2]  # the common layer, listed by both images
    assert sorted(members) == sorted({"manifest.json", *layers,
                                      *(entry["Config"] for entry in manifest)})  # fmt: skip
    meta = read_artifact(str(artifact)).meta_data
    assert meta is not None
    assert meta["image_ids"] == [first.config_digest, second.config_digest]
    # unpacked sizes exceed the compressed ones (these layers compress well)
    assert meta["image_sizes"][0] > first.image_size
    assert meta["image_sizes"][0] > 100_000


def test_default_compression_is_none_and_can_be_chosen(pushed: PushedSet, tmp_path: Path) -> None:
    options = parse_options(["--embed-images", "-n", "a", "-t", "d", pushed.ref("single")])
    assert options.compression == "none"
    assert parse_options(["-n", "a", "-t", "d", "x"]).compression == "gzip"
    artifact = gen(tmp_path, "--compression", "lzma", pushed.ref("single"))
    info = read_artifact(str(artifact))
    assert [f.name for f in info.files] == ["images.tar"]
    assert "manifest.json" in payload_members(artifact)  # readable after lzma


def test_progress_is_quiet_when_stderr_is_not_a_terminal(
    pushed: PushedSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "q.mender"
    assert gen_main(["--embed-images", "-n", "a", "-t", "d", "-o", str(out),
                     pushed.ref("single")]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "Embedded images (images.tar)" in captured.out


def test_registry_down_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = gen_main(["--embed-images", "-n", "a", "-t", "d", "-o", str(tmp_path / "x.mender"),
                     "127.0.0.1:9/none/img:v1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "unreachable" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no temp blobs left behind


def test_layer_not_matching_the_configs_diff_id_is_refused(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A registry image whose layer unpacks to something else than its config
    says: the generator finds out while streaming and writes nothing."""
    repo = "offgen/liar"
    data, _ = layer({"file": b"real content"})
    _, wrong = layer({"file": b"claimed content"})
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [wrong]}}).encode()  # fmt: skip
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": push_blob(registry.host, repo, config),
                   "size": len(config)},  # fmt: skip
        "layers": [{"mediaType": OCI_LAYER, "digest": push_blob(registry.host, repo, data),
                    "size": len(data)}],  # fmt: skip
    }
    push_manifest(registry.host, repo, "v1", manifest)
    out = tmp_path / "liar.mender"
    code = gen_main(["--embed-images", "-n", "a", "-t", "d", "-o", str(out),
                     f"{registry.host}/{repo}:v1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "unpacks to sha256:" in err and f"the config says {wrong}" in err
    assert list(tmp_path.iterdir()) == []


def test_signed_offline_artifact_verifies_with_mender_artifact(
    pushed: PushedSet, tmp_path: Path
) -> None:
    key, pub = tmp_path / "key.pem", tmp_path / "key.pub"
    run(["openssl", "genrsa", "-traditional", "-out", str(key), "3072"])
    run(["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)])
    artifact = gen(tmp_path, "-k", str(key), pushed.ref("single"))
    out = run(["mender-artifact", "read", "-k", str(pub), str(artifact)]).stdout
    assert "Signature: signed and verified correctly" in out
    assert "images.tar" in out

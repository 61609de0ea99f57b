"""The real Mender client (3.4, standalone) installs artifacts our writer made.

A tiny recording Update Module under a unique payload type stands in for the docker
module (the original one stops every running container on the machine, which other
tests running in parallel would not survive); it copies what the client hands it.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Dict, Optional, Tuple

import pytest

from mender_docker.artifact import ArtifactSpec, PayloadFile, load_private_key, write_artifact
from tests.realstack import DEVICE_TYPE, MenderDevice

RECORDER = """#!/bin/sh
set -e
STATE="$1"
FILES="$2"
OUT="{out}"
echo "$STATE" >> "$OUT/states"
case "$STATE" in
    SupportsRollback) echo Yes ;;
    NeedsArtifactReboot) echo No ;;
    Download)
        cp "$FILES/header/meta-data" "$OUT/meta-data"
        cp "$FILES/header/type-info" "$OUT/type-info"
        while true; do
            next=$(cat "$FILES/stream-next")
            [ -z "$next" ] && break
            cat "$FILES/$next" > "$OUT/payload-$(basename "$next")"
        done
        ;;
esac
"""
PAYLOADS = {"images.tar": bytes(range(256)) * 64, "extra.txt": b"second file\n"}


def _setup(device: MenderDevice, tmp_path: Path, verify_key: Optional[Path]) -> Tuple[str, Path]:
    payload_type = f"mdtest-{uuid.uuid4().hex[:10]}"
    out = tmp_path / "recorded"
    out.mkdir()
    module = tmp_path / "module"
    module.write_text(RECORDER.format(out=out))
    device.use_module(module, payload_type)
    if verify_key is not None:
        config = json.loads(device.config.read_text())
        config["ArtifactVerifyKey"] = str(verify_key)
        device.config.write_text(json.dumps(config))
    return payload_type, out


def _artifact(tmp_path: Path, payload_type: str, signer: object, name: str = "ours-1") -> Path:
    spec = ArtifactSpec(
        artifact_name=name, device_types=[DEVICE_TYPE],
        payload_type=payload_type, provides={f"rootfs-image.{payload_type}.version": "v1"},
        clears_provides=[f"rootfs-image.{payload_type}.*"],
        meta_data={"containers": [], "run_args": ""})
    path = tmp_path / "ours.mender"
    write_artifact(path, spec, files=[PayloadFile.from_bytes(n, d) for n, d in PAYLOADS.items()],
                   compression="gzip", signer=signer)
    return path


@pytest.mark.parametrize("key", [None, "rsa", "ec"])
def test_mender_client_installs_our_artifact(
    mender_device: MenderDevice, tmp_path: Path, keys: Dict[str, Path], key: Optional[str]
) -> None:
    payload_type, out = _setup(mender_device, tmp_path, keys[f"{key}_pub"] if key else None)
    signer = load_private_key(keys[key]) if key else None
    name = f"ours-{uuid.uuid4().hex[:6]}"
    path = _artifact(tmp_path, payload_type, signer, name)
    installed = mender_device.install(path)
    assert installed.returncode == 0, installed.stderr
    committed = mender_device.commit()
    assert committed.returncode == 0, committed.stderr
    assert mender_device.show_artifact() == name
    states = (out / "states").read_text().split()
    assert "Download" in states and "ArtifactInstall" in states and "ArtifactCommit" in states
    for file_name, data in PAYLOADS.items():
        assert (out / f"payload-{file_name}").read_bytes() == data
    assert json.loads((out / "meta-data").read_text()) == {"containers": [], "run_args": ""}
    type_info = json.loads((out / "type-info").read_text())
    assert type_info["type"] == payload_type
    provides = mender_device.show_provides()
    assert f"rootfs-image.{payload_type}.version=v1" in provides


def test_mender_client_refuses_our_artifact_signed_with_another_key(
    mender_device: MenderDevice, tmp_path: Path, keys: Dict[str, Path]
) -> None:
    payload_type, out = _setup(mender_device, tmp_path, keys["ec2_pub"])
    path = _artifact(tmp_path, payload_type, load_private_key(keys["ec"]))
    installed = mender_device.install(path)
    assert installed.returncode != 0
    assert "signature" in installed.stderr
    assert not (out / "states").exists() or "ArtifactInstall" not in (out / "states").read_text()


def _written_by_cli(tmp_path: Path, payload_type: str, name: str, compression: str,
                    key: Optional[Path]) -> Tuple[Path, Dict[str, bytes]]:
    """A module-image by `mender-docker write`: 3 MiB mixing random and text, so the
    parallel gzip writer joins many blocks (stored and deflated) into its one stream."""
    from mender_docker.cli.main import main

    folder = tmp_path / "in"
    folder.mkdir()
    data = {"big.bin": b"".join(os.urandom(100_000) + b"line of text %d\n" % i * 4000
                                for i in range(5)),
            "small.txt": b"second file\n"}
    for file_name, content in data.items():
        (folder / file_name).write_bytes(content)
    (folder / "meta.json").write_text('{"containers": [], "run_args": ""}')
    path = tmp_path / "written.mender"
    argv = ["write", "module-image", "-T", payload_type, "-n", name, "-t", DEVICE_TYPE,
            "-f", str(folder / "big.bin"), "-f", str(folder / "small.txt"),
            "-m", str(folder / "meta.json"), "--compression", compression, "-o", str(path)]
    assert main(argv + (["-k", str(key)] if key else [])) == 0
    return path, data


# Client 3.4 reads none, gzip and lzma artifacts; 5.1 zstd too.
COMPRESSIONS_BY_CLIENT = {"3.4": ["gzip", "lzma"], "5.1": ["gzip", "lzma", "zstd"]}


def test_mender_clients_install_a_module_image_written_by_write(
    mender_device: MenderDevice, tmp_path: Path, keys: Dict[str, Path]
) -> None:
    for compression in COMPRESSIONS_BY_CLIENT[mender_device.client]:
        root = tmp_path / compression
        root.mkdir()
        payload_type, out = _setup(mender_device, root, keys["rsa_pub"])
        name = f"written-{compression}-{uuid.uuid4().hex[:6]}"
        path, data = _written_by_cli(root, payload_type, name, compression, keys["rsa"])
        installed = mender_device.install(path)
        assert installed.returncode == 0, f"{compression}: {installed.stderr}"
        committed = mender_device.commit()
        assert committed.returncode == 0, committed.stderr
        assert mender_device.show_artifact() == name
        for file_name, content in data.items():
            assert (out / f"payload-{file_name}").read_bytes() == content, compression
        provides = mender_device.show_provides()
        assert f"rootfs-image.{payload_type}.version={name}" in provides

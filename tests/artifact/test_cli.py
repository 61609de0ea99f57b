"""`mender-docker read` and `validate` on good artifacts (bad ones: test_reader_bad_input)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from mender_docker.artifact import load_private_key, read_artifact
from tests.artifact.helpers import mender_artifact, write_sample

FILES = (("images.tar", b"I" * 1234), ("b.txt", b"b\n"))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mender_docker.cli.main", *args],
                          capture_output=True, text=True, timeout=60)


def test_read_shows_a_summary(tmp_path: Path, keys: Dict[str, Path]) -> None:
    path = write_sample(tmp_path / "a.mender", files=FILES, signer=load_private_key(keys["rsa"]),
                        scripts=[("ArtifactInstall_Enter_00", b"#!/bin/sh\n")])
    result = _cli("read", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in ("Name: sample-1", "Version: 3",
                     "Signature: signed, but NOT verified (no key given",
                     "Compatible devices: dev1, dev2", "Provides group: group-a",
                     'Depends on artifact_name: ["previous"]',
                     "State scripts: ArtifactInstall_Enter_00", "Type: docker",
                     "Compression: gzip", "rootfs-image.docker.version: sample-1",
                     "needs.list: [\"a\", \"b\"]", "Clears provides: rootfs-image.docker.*",
                     "run_args: -p 80:80", "Files: 2", "name: images.tar", "size: 1234",
                     f"sha256: {hashlib.sha256(b'I' * 1234).hexdigest()}"):
        assert expected in out, expected
    verified = _cli("read", str(path), "-k", str(keys["rsa_pub"]))
    assert "Signature: signed and verified" in verified.stdout


def test_read_json_is_the_library_view(tmp_path: Path) -> None:
    path = write_sample(tmp_path / "a.mender", files=FILES, compression="lzma")
    result = _cli("read", "--json", str(path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(json.dumps(read_artifact(path).to_json()))


@pytest.mark.real
def test_validate_ours_and_the_reference_tools(tmp_path: Path, keys: Dict[str, Path]) -> None:
    ours = write_sample(tmp_path / "a.mender", signer=load_private_key(keys["ec"]))
    (tmp_path / "f").write_bytes(b"payload")
    theirs = tmp_path / "theirs.mender"
    mender_artifact("write", "module-image", "-T", "docker", "-n", "t", "-t", "d", "-o",
                    str(theirs), "-f", str(tmp_path / "f"), "-k", str(keys["ec"]))
    for path in (ours, theirs):
        plain = _cli("validate", str(path))
        assert plain.returncode == 0
        assert "signed, but the signature was NOT verified" in plain.stdout
        required = _cli("validate", str(path), "--require-signature")
        assert required.returncode != 0 and "give -k KEY" in required.stderr
        signed = _cli("validate", str(path), "-k", str(keys["ec_pub"]), "--require-signature")
        assert signed.returncode == 0
        assert "valid (checksums and signature verified)" in signed.stdout
        wrong = _cli("validate", str(path), "-k", str(keys["ec2_pub"]))
        assert wrong.returncode == 1 and "does not verify" in wrong.stderr
    unsigned = write_sample(tmp_path / "u.mender")
    plain = _cli("validate", str(unsigned))
    assert plain.returncode == 0 and "valid (checksums verified; not signed)" in plain.stdout
    required = _cli("validate", str(unsigned), "-k", str(keys["ec_pub"]), "--require-signature")
    assert required.returncode == 1 and "not signed" in required.stderr


def test_usage_errors_exit_non_zero(tmp_path: Path) -> None:
    result = _cli("validate")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr

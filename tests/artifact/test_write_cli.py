"""`mender-docker write` and `sign` without the reference tool: rules, errors, read-back.

The reference's behaviour the rules follow was seen with mender-artifact 3.9/4.0 (see
artifact/provides.py); test_write_interop.py checks the same against the real tools.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from mender_docker.artifact import load_private_key, load_public_key, read_artifact
from mender_docker.artifact.provides import SoftwareOptions, default_clears, software_provides
from mender_docker.artifact.resign import sign_artifact
from mender_docker.cli.main import main
from mender_docker.cli.write import provides_win
from mender_docker.errors import ArtifactError, SignatureError
from tests.artifact.helpers import write_sample


def _rules(kind: str, **kw: object) -> SoftwareOptions:
    return SoftwareOptions(kind=kind, artifact_name="n1", payload_type="foo"
                           if kind == "module-image" else None, **kw)  # type: ignore[arg-type]


def test_default_provides_and_clears_per_kind() -> None:
    module = _rules("module-image")
    assert software_provides(module) == {"rootfs-image.foo.version": "n1"}
    assert default_clears(module) == ["rootfs-image.foo.*"]
    rootfs = _rules("rootfs-image")
    assert software_provides(rootfs) == {"rootfs-image.version": "n1"}
    assert default_clears(rootfs) == ["artifact_group", "rootfs_image_checksum",
                                      "rootfs-image.*"]
    named = _rules("rootfs-image", software_name="sw", software_filesystem="fs")
    assert software_provides(named) == {"fs.sw.version": "n1"}
    assert default_clears(named) == ["fs.sw.*"]
    boot = _rules("bootstrap-artifact", provides=[("a", "b")], clears_provides=["q"])
    assert software_provides(boot) == {"a": "b"} and default_clears(boot) == ["q"]


def test_no_default_software_version_and_clears() -> None:
    none = _rules("module-image", no_default_software_version=True, clears_provides=["x.*"])
    assert software_provides(none) == {} and default_clears(none) == ["x.*"]
    # A version given explicitly is still written (mender-artifact's getSoftwareVersion).
    given = _rules("module-image", no_default_software_version=True, software_version="7")
    assert software_provides(given) == {"rootfs-image.version": "7"}
    kept = _rules("module-image", no_default_clears_provides=True)
    assert default_clears(kept) == []
    twice = _rules("module-image", clears_provides=["rootfs-image.foo.*"])
    assert default_clears(twice) == ["rootfs-image.foo.*"]


def test_a_provide_wins_unless_a_software_option_comes_after_it() -> None:
    key = "rootfs-image.foo.version"
    assert provides_win(["-p", f"{key}:p"], {key}) == {key}
    assert provides_win(["--software-version", "s", "-p", f"{key}:p"], {key}) == {key}
    assert provides_win([f"--provides={key}:p", "--software-version=s"], {key}) == set()
    won = _rules("module-image", software_version="s", provides=[(key, "p")],
                 provides_win=set())
    assert software_provides(won) == {key: "s"}


def _cli(argv: List[str], capsys: pytest.CaptureFixture[str]) -> Tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_write_module_image_reads_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    (tmp_path / "a.bin").write_bytes(b"A" * 5000)
    (tmp_path / "meta.json").write_text('{"k": [1, "two"]}')
    script = tmp_path / "ArtifactInstall_Enter_00"
    script.write_text("#!/bin/sh\nexit 0\n")
    out = tmp_path / "m.mender"
    code, _, err = _cli(["write", "module-image", "-T", "foo", "-n", "m1", "-t", "d1", "-t",
                         "d2", "-f", str(tmp_path / "a.bin"), "-m", str(tmp_path / "meta.json"),
                         "-s", str(script), "-o", str(out), "-g", "grp", "-G", "g0", "-N",
                         "prev", "-p", "x:y", "-d", "z:w", "--clears-provides", "c.*",
                         "--compression", "zstd_fastest"], capsys)
    assert code == 0, err
    info = read_artifact(out)
    assert (info.payload_type, info.device_types, info.artifact_group) == ("foo", ["d1", "d2"],
                                                                           "grp")
    assert info.artifact_depends == {"device_type": ["d1", "d2"], "artifact_name": ["prev"],
                                     "artifact_group": ["g0"]}
    assert info.provides == {"x": "y", "rootfs-image.foo.version": "m1"}
    assert info.depends == {"z": "w"} and info.clears_provides == ["c.*", "rootfs-image.foo.*"]
    assert info.meta_data == {"k": [1, "two"]} and info.compression == "zstd"
    assert [s.name for s in info.scripts] == ["ArtifactInstall_Enter_00"]
    assert [(f.name, f.size) for f in info.files] == [("a.bin", 5000)]


def test_write_rootfs_and_bootstrap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "rootfs.ext4"
    image.write_bytes(os.urandom(3000))
    code, _, err = _cli(["write", "rootfs-image", "-n", "r1", "-t", "d", "-f", str(image),
                         "-o", str(tmp_path / "r.mender")], capsys)
    assert code == 0, err
    info = read_artifact(tmp_path / "r.mender")
    assert info.payload_type == "rootfs-image"
    assert info.provides["rootfs-image.checksum"] == info.files[0].sha256
    code, _, err = _cli(["write", "bootstrap-artifact", "-n", "b1", "-t", "d", "-p", "a:b",
                         "-o", str(tmp_path / "b.mender"), "--compression", "none"], capsys)
    assert code == 0, err
    boot = read_artifact(tmp_path / "b.mender")
    assert boot.payload_type is None and boot.files == [] and boot.provides == {"a": "b"}


@pytest.mark.parametrize("argv, message", [
    (["write", "module-image", "-T", "foo", "-t", "d"], "artifact name not given"),
    (["write", "module-image", "-T", "foo", "-n", "a b", "-t", "d"], "white space"),
    (["write", "module-image", "-n", "a", "-t", "d"], "payload type not given"),
    (["write", "module-image", "-T", "foo", "-n", "a"], "device type not given"),
    (["write", "rootfs-image", "-n", "a", "-t", "d"], "takes one file"),
    (["write", "rootfs-image", "-n", "a", "-t", "d", "-f", "ssh://root@dev"], "ssh://"),
    (["write", "module-image", "-T", "foo", "-n", "a", "-t", "d", "-f", "/no/such"],
     "not found"),
    (["write", "module-image", "-T", "foo", "-n", "a", "-t", "d", "--compression", "brotli"],
     "invalid choice"),
    (["write", "module-image", "-T", "foo", "-n", "a", "-t", "d", "--augment-type", "x"],
     "unrecognized arguments"),
    (["write", "bootstrap-artifact", "-n", "a", "-t", "d", "-s", "x"],
     "unrecognized arguments"),
    (["write", "delta-image"], "unknown artifact kind"),
    (["write", "module-image", "-T", "foo", "-n", "a", "-t", "d", "-k", "/no/key"],
     "signing key"),
    (["sign", "/no/such.mender"], "no signing key"),
])
def test_bad_options_are_one_line(argv: List[str], message: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(argv, capsys)
    assert code != 0
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "artifact.mender").exists()


def test_nested_meta_data_and_bad_script_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "meta.json").write_text(json.dumps({"a": {"nested": 1}}))
    (tmp_path / "Sync_Enter_00").write_text("#!/bin/sh\n")
    base = ["write", "module-image", "-T", "foo", "-n", "a", "-t", "d", "-o",
            str(tmp_path / "x.mender")]
    code, _, err = _cli(base + ["-m", str(tmp_path / "meta.json")], capsys)
    assert code == 1 and "not flat" in err
    code, _, err = _cli(base + ["-s", str(tmp_path / "Sync_Enter_00")], capsys)
    assert code == 1 and "cannot be in an artifact" in err


def test_sign_refuses_a_signed_artifact_without_force(
        tmp_path: Path, keys: Dict[str, Path]) -> None:
    path = write_sample(tmp_path / "a.mender")
    sign_artifact(str(path), load_private_key(keys["ec"]))
    assert read_artifact(path, verify_key=load_public_key(keys["ec_pub"])).signature_verified
    before = path.read_bytes()
    with pytest.raises(SignatureError, match="already signed"):
        sign_artifact(str(path), load_private_key(keys["rsa"]))
    assert path.read_bytes() == before
    out = tmp_path / "b.mender"
    sign_artifact(str(path), load_private_key(keys["rsa"]), str(out), force=True)
    assert read_artifact(out, verify_key=load_public_key(keys["rsa_pub"])).signature_verified
    assert path.read_bytes() == before


def test_sign_refuses_what_does_not_verify(tmp_path: Path, keys: Dict[str, Path]) -> None:
    path = write_sample(tmp_path / "a.mender", compression="none")
    data = bytearray(path.read_bytes())
    at = data.index(b"A" * 3000)
    data[at] = ord("B")  # a payload byte: its checksum no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256|checksum"):
        sign_artifact(str(path), load_private_key(keys["rsa"]))
    assert path.read_bytes() == bytes(data)
    assert [p.name for p in tmp_path.iterdir()] == ["a.mender"]

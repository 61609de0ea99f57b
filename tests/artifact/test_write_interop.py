"""`mender-docker write` and `sign` against the real mender-artifact 3.9 and 4.0: the same
command line through both writers, then each reference validates ours and `read`s both
artifacts to the same text (file modification times aside: ours are 0)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from mender_docker.cli.main import main
from tests.realstack import require, run

pytestmark = pytest.mark.real  # every test here runs the real mender-artifact

TOOLS = {"3.9": "mender-artifact", "4.0": "mender-artifact-4"}
META = '{"containers": ["a@sha256:00"], "n": 5, "list": ["x", 2]}'

CASES: Dict[str, List[str]] = {
    "module-full": ["module-image", "-T", "mdtest", "-n", "m-1", "-t", "d1", "-t", "d2",
                    "-f", "{payload}", "-f", "{other}", "-m", "{meta}", "-s", "{script}",
                    "-g", "grp", "-G", "g0", "-G", "g1", "-N", "prev", "-p", "x.y:1",
                    "-d", "z.w:2", "--clears-provides", "c.*", "--compression", "gzip"],
    "module-bare": ["module-image", "-T", "mdtest", "-n", "m-2", "-t", "d",
                    "--no-default-software-version", "--compression", "none"],
    "module-software": ["module-image", "-T", "mdtest", "-n", "m-3", "-t", "d", "-f",
                        "{payload}", "--software-name", "sw", "--software-filesystem", "fs",
                        "-p", "fs.sw.version:from-p", "--software-version", "from-flag",
                        "--compression", "lzma", "--no-default-clears-provides"],
    "module-provide-last": ["module-image", "-T", "mdtest", "-n", "m-4", "-t", "d",
                            "--software-version", "from-flag", "-p",
                            "rootfs-image.mdtest.version:from-p"],
    "rootfs": ["rootfs-image", "-n", "r-1", "-t", "d", "-f", "{payload}"],
    "rootfs-named": ["rootfs-image", "-n", "r-2", "-t", "d", "-f", "{payload}", "-g", "grp",
                     "-G", "g0", "--software-name", "sw", "-s", "{script}",
                     "--no-progress"],
    "rootfs-legacy": ["rootfs-image", "-n", "r-3", "-t", "d", "-f", "{payload}",
                      "--legacy-rootfs-image-checksum", "--clears-provides", "q"],
    "rootfs-nochecksum": ["rootfs-image", "-n", "r-4", "-t", "d", "-f", "{payload}",
                          "--no-checksum-provide", "--compression", "none"],
    "bootstrap": ["bootstrap-artifact", "-n", "b-1", "-t", "d"],
    "bootstrap-full": ["bootstrap-artifact", "-n", "b-2", "-t", "d", "-t", "e", "-p", "a:b",
                       "-d", "c:d", "--clears-provides", "x.*", "-g", "grp", "-N", "prev",
                       "--compression", "lzma"],
}


@pytest.fixture()
def inputs(tmp_path: Path) -> Dict[str, str]:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "payload.img").write_bytes(os.urandom(40000) + b"text " * 20000)
    (folder / "other.txt").write_bytes(b"second file\n")
    (folder / "meta.json").write_text(META)
    script = folder / "ArtifactInstall_Enter_00"
    script.write_text("#!/bin/sh\nexit 0\n")
    return {"payload": str(folder / "payload.img"), "other": str(folder / "other.txt"),
            "meta": str(folder / "meta.json"), "script": str(script)}


def _argv(template: Sequence[str], inputs: Dict[str, str]) -> List[str]:
    return [arg.format(**inputs) for arg in template]


def write_ours(argv: List[str], out: Path) -> None:
    assert main(["write", *argv, "-o", str(out)]) == 0


def read_text(tool: str, path: Path, *extra: str) -> List[str]:
    """`read` output's lines, sorted (the Go tools print payload files in map order),
    without the files' modification times (ours are 0, theirs now)."""
    out = run([tool, "read", *extra, str(path)]).stdout
    return sorted(line for line in out.splitlines() if "modified:" not in line)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("version", sorted(TOOLS))
def test_reference_reads_what_write_writes_as_its_own(
        tmp_path: Path, inputs: Dict[str, str], case: str, version: str) -> None:
    tool = TOOLS[version]
    require(tool)
    argv = _argv(CASES[case], inputs)
    ours, theirs = tmp_path / "ours.mender", tmp_path / "theirs.mender"
    write_ours(argv, ours)
    run([tool, "write", *argv, "-o", str(theirs)])
    assert "validated successfully" in run([tool, "validate", str(ours)]).stdout
    assert read_text(tool, ours) == read_text(tool, theirs)


@pytest.mark.parametrize("compression", ["zstd_fastest", "zstd_fast", "zstd_better",
                                         "zstd_best"])
def test_zstd_levels_as_mender_artifact_4(tmp_path: Path, inputs: Dict[str, str],
                                          compression: str) -> None:
    require("mender-artifact-4")
    argv = _argv(CASES["module-full"][:-2], inputs) + ["--compression", compression]
    ours, theirs = tmp_path / "ours.mender", tmp_path / "theirs.mender"
    write_ours(argv, ours)
    run(["mender-artifact-4", "write", *argv, "-o", str(theirs)])
    assert "validated successfully" in run(["mender-artifact-4", "validate", str(ours)]).stdout
    assert read_text("mender-artifact-4", ours) == read_text("mender-artifact-4", theirs)


@pytest.mark.parametrize("kind", ["module-full", "rootfs", "bootstrap"])
@pytest.mark.parametrize("key", ["rsa", "ec"])
def test_signed_write_verifies_with_both_references(
        tmp_path: Path, inputs: Dict[str, str], keys: Dict[str, Path], kind: str,
        key: str) -> None:
    require(*TOOLS.values())
    ours = tmp_path / "ours.mender"
    write_ours(_argv(CASES[kind], inputs) + ["-k", str(keys[key])], ours)
    for tool in TOOLS.values():
        out = run([tool, "validate", "-k", str(keys[f"{key}_pub"]), str(ours)]).stdout
        assert "validated successfully" in out
        wrong = run([tool, "validate", "-k", str(keys[f"{key}2_pub"]), str(ours)], check=False)
        assert wrong.returncode != 0


@pytest.mark.parametrize("version", sorted(TOOLS))
@pytest.mark.parametrize("key", ["rsa", "ec"])
def test_sign_of_a_reference_artifact_verifies_with_the_reference(
        tmp_path: Path, inputs: Dict[str, str], keys: Dict[str, Path], version: str,
        key: str) -> None:
    tool = TOOLS[version]
    require(tool)
    theirs, signed = tmp_path / "theirs.mender", tmp_path / "signed.mender"
    run([tool, "write", *_argv(CASES["module-full"], inputs), "-o", str(theirs)])
    assert main(["sign", str(theirs), "-k", str(keys[key]), "-o", str(signed)]) == 0
    out = run([tool, "validate", "-k", str(keys[f"{key}_pub"]), str(signed)]).stdout
    assert "validated successfully" in out
    unsigned = [line.replace("no signature", "signed and verified correctly")
                for line in read_text(tool, theirs)]
    assert read_text(tool, signed, "-k", str(keys[f"{key}_pub"])) == sorted(unsigned)
    # Signed again, by the reference: -f replaces our signature, without it it refuses.
    assert run([tool, "sign", "-k", str(keys[key]), str(signed)], check=False).returncode != 0
    run([tool, "sign", "-f", "-k", str(keys[key]), str(signed)])
    assert main(["sign", str(signed), "-k", str(keys[key])]) == 1
    assert main(["sign", str(signed), "-f", "-k", str(keys[key])]) == 0
    run([tool, "validate", "-k", str(keys[f"{key}_pub"]), str(signed)])

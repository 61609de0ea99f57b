"""docker-artifact-gen end to end: real registry, artifacts read back by mender-artifact."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mender_docker.spec import parse_metadata
from tests.gen.readback import read_back
from tests.realstack import ImageFactory, Registry, free_port, require, run, unique
from tests.registry.authproxy import basic_auth_config
from tests.registry.fixtures import PASSWORD, USER, PushedSet, docker_config
from tests.registry.ocipush import push_image

ORIGINAL = Path("/usr/share/doc/mender-client/examples/docker-artifact-gen")


def gen(
    args: List[str], env: Optional[Dict[str, str]] = None, cwd: Optional[Path] = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mender_docker.cli.gen", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_two_images_read_back_by_mender_artifact(pushed: PushedSet, tmp_path: Path) -> None:
    out = tmp_path / "two.mender"
    stdout = ok(
        gen(
            [
                "-n",
                "rel-1",
                "-t",
                "dev-a",
                "-t",
                "dev-b",
                "--run-args",
                "-p 8080:80 --init",
                "-o",
                str(out),
                pushed.ref("single"),
                pushed.ref("multi"),
            ]
        )
    )
    assert f"Artifact {out} generated successfully" in stdout
    got = read_back(out)
    assert got.name == "rel-1"
    assert got.devices == "'[dev-a dev-b]'"
    assert got.type == "docker"
    assert got.provides == {"rootfs-image.docker.version": "rel-1"}
    assert got.clears == ["rootfs-image.docker.*"]
    assert got.depends == {}
    name = f"{pushed.host}/{pushed.prefix}"
    assert got.meta == {
        "containers": [
            f"{name}/single@{pushed.single.digest}",
            f"{name}/multi@{pushed.index_digest}",
        ],
        "run_args": "-p 8080:80 --init",
        "image_sizes": [pushed.single.image_size, pushed.children["linux/amd64"].image_size],
    }
    run(["mender-artifact", "validate", str(out)])


def test_platform_pins_the_platform_manifest(pushed: PushedSet, tmp_path: Path) -> None:
    out = tmp_path / "arm.mender"
    ok(
        gen(
            [
                "-n",
                "arm",
                "-t",
                "pi",
                "--platform",
                "linux/arm/v7",
                "-o",
                str(out),
                pushed.ref("multi"),
                pushed.ref("armonly"),
            ]
        )
    )
    meta = read_back(out).meta
    assert meta is not None
    assert meta["containers"] == [
        f"{pushed.host}/{pushed.prefix}/multi@{pushed.children['linux/arm/v7'].digest}",
        f"{pushed.host}/{pushed.prefix}/armonly@{pushed.arm_only.digest}",
    ]


def test_console_scripts_give_identical_artifacts(pushed: PushedSet, tmp_path: Path) -> None:
    require("docker-artifact-gen", "mender-docker")
    args = ["-n", "same", "-t", "d", pushed.ref("single")]
    run(["docker-artifact-gen", *args, "-o", str(tmp_path / "a.mender")])
    run(["mender-docker", "gen", *args, "-o", str(tmp_path / "b.mender")])
    assert (tmp_path / "a.mender").read_bytes() == (tmp_path / "b.mender").read_bytes()


def test_mender_artifact_options_after_double_dash(pushed: PushedSet, tmp_path: Path) -> None:
    script = tmp_path / "ArtifactInstall_Enter_00_note"
    script.write_text("#!/bin/sh\necho installing\n")
    out = tmp_path / "opts.mender"
    ok(
        gen(
            [
                "-n",
                "rel-2",
                "-t",
                "d",
                "-o",
                str(out),
                pushed.ref("single"),
                "--",
                "--software-name",
                "web",
                "--software-version",
                "2.1",
                "-p",
                "extra.key:val",
                "-d",
                "rootfs-image.checksum:abc",
                "-g",
                "prod",
                "-G",
                "beta",
                "-G",
                "stable",
                "-N",
                "rel-1",
                "--clears-provides",
                "old.*",
                "--compression",
                "lzma",
                "-s",
                str(script),
            ]
        )
    )
    got = read_back(out)
    assert got.provides == {"rootfs-image.web.version": "2.1", "extra.key": "val"}
    assert got.depends == {"rootfs-image.checksum": "abc"}
    assert got.clears == ["old.*", "rootfs-image.web.*"]
    assert got.provides_group == "prod"
    assert got.depends_groups == "[beta, stable]"
    assert got.depends_artifacts == "[rel-1]"
    assert got.scripts == ["ArtifactInstall_Enter_00_note"]
    assert run(["tar", "tf", str(out)]).stdout.split() == [
        "version",
        "manifest",
        "header.tar.xz",
        "data/0000.tar.xz",
    ]


def test_extension_keys_reach_the_metadata(pushed: PushedSet, tmp_path: Path) -> None:
    out = tmp_path / "ext.mender"
    ok(
        gen(
            [
                "-n",
                "x",
                "-t",
                "d",
                "-o",
                str(out),
                "--name",
                "web",
                "--container-args",
                "-e MODE=prod",
                "--health-timeout",
                "40",
                "--health-window",
                "3",
                "--stop-timeout",
                "12.5",
                "--run-args",
                "--restart=unless-stopped",
                pushed.ref("single"),
                pushed.ref("dockertyped"),
            ]
        )
    )
    meta = read_back(out).meta
    assert meta is not None
    parsed = parse_metadata(meta)
    assert parsed.names == ("web", "")
    assert parsed.container_args == ("-e MODE=prod", "")
    assert (parsed.health_timeout, parsed.health_window, parsed.stop_timeout) == (40, 3, 12.5)
    assert [p.name for p in parsed.plan()] == ["web", "dockertyped"]


def test_signed_artifact_verifies_with_mender_artifact(pushed: PushedSet, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = tmp_path / "private.pem"
    public = tmp_path / "public.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    out = tmp_path / "signed.mender"
    ok(gen(["-n", "s", "-t", "d", "-o", str(out), pushed.ref("single"), "--", "-k", str(private)]))
    run(["mender-artifact", "validate", "-k", str(public), str(out)])
    assert read_back(out, key=public).signature == "signed and verified correctly"


def test_works_without_a_docker_daemon(pushed: PushedSet, tmp_path: Path) -> None:
    """No daemon socket and no docker binary on PATH: only the registry is asked."""
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock", "PATH": str(empty_bin)}
    assert shutil.which("docker", path=env["PATH"]) is None
    assert shutil.which("mender-artifact", path=env["PATH"]) is None
    out = tmp_path / "nodaemon.mender"
    ok(gen(["-n", "nd", "-t", "d", "-o", str(out), pushed.ref("multi")], env=env))
    meta = read_back(out).meta
    assert meta is not None
    assert meta["containers"] == [f"{pushed.host}/{pushed.prefix}/multi@{pushed.index_digest}"]
    # The docker resolver, in the same environment, fails clearly instead.
    proc = gen(
        [
            "-n",
            "nd",
            "-t",
            "d",
            "-o",
            str(tmp_path / "x.mender"),
            "--resolver",
            "docker",
            pushed.ref("multi"),
        ],
        env=env,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "docker-artifact-gen: error: docker not found: --resolver docker needs the docker CLI"
    )
    assert not (tmp_path / "x.mender").exists()


def test_same_artifact_as_the_original_generator(
    image_factory: ImageFactory, tmp_path: Path
) -> None:
    require("jq", "mender-artifact", "docker")
    assert ORIGINAL.exists(), f"original generator missing: {ORIGINAL}"
    web = image_factory.build(unique("origweb"), "v1")
    db = image_factory.build(unique("origdb"), "v2")
    host = image_factory.registry.host
    web_tag = f"{web.split('@')[0]}:v1"
    images = [web_tag, db]  # one by tag, one already pinned by digest
    cases = [
        ["-n", "rel-9", "-t", "dev-a", "-t", "dev-b", "--run-args", "-p 8080:80 --restart=always"],
        ["-n", "rel-10", "-t", "dev", "--software-name", "web", "--software-version", "3.0"],
        ["-n", "rel-11", "-t", "dev", "--run-args", "--init"],
    ]
    passthrough = [[], [], ["--", "-p", "extra:1", "-d", "needs:2", "-g", "grp", "-N", "rel-10"]]
    for index, (case, after) in enumerate(zip(cases, passthrough)):
        theirs = tmp_path / f"orig{index}.mender"
        ours = tmp_path / f"ours{index}.mender"
        plain = tmp_path / f"plain{index}.mender"
        run(["bash", str(ORIGINAL), *case, "-o", str(theirs), *images, *after], timeout=300)
        ok(gen([*case, "-o", str(ours), *images, *after], cwd=tmp_path))
        ok(gen([*case, "--no-image-sizes", "-o", str(plain), *images, *after], cwd=tmp_path))
        original = read_back(theirs)
        assert original.meta is not None and host in original.meta["containers"][0]
        assert read_back(plain).comparable() == original.comparable(), case
        extended = read_back(ours)
        assert extended.meta is not None
        sizes = extended.meta.pop("image_sizes")
        assert len(sizes) == 2 and all(size > 0 for size in sizes)
        assert extended.comparable() == original.comparable(), case
    assert not (tmp_path / "meta-data.json").exists()


def test_docker_resolver_matches_the_registry_resolver(
    image_factory: ImageFactory, tmp_path: Path
) -> None:
    pinned = image_factory.build(unique("resolvers"), "v1")
    ref = f"{pinned.split('@')[0]}:v1"
    ok(gen(["-n", "r", "-t", "d", "-o", str(tmp_path / "reg.mender"), ref]))
    ok(
        gen(
            ["-n", "r", "-t", "d", "--resolver", "docker", "-o", str(tmp_path / "dock.mender"), ref]
        )
    )
    registry_meta = read_back(tmp_path / "reg.mender").meta
    docker_meta = read_back(tmp_path / "dock.mender").meta
    assert registry_meta is not None and docker_meta is not None
    assert registry_meta["containers"] == docker_meta["containers"] == [pinned]


# -- bad input: exit 1, one line on stderr naming the problem, no output file ----------------


def _fails(
    args: List[str],
    tmp_path: Path,
    expect: str,
    env: Optional[Dict[str, str]] = None,
    out: Optional[Path] = None,
) -> None:
    target = out or tmp_path / "bad.mender"
    proc = gen(["-o", str(target), *args], env=env)
    assert proc.returncode == 1, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("docker-artifact-gen: error: ")
    assert expect in lines[0]
    assert "Traceback" not in proc.stderr
    assert not target.exists()
    assert [p.name for p in target.parent.glob("*bad*")] == []


def test_bad_unknown_image_and_tag(pushed: PushedSet, tmp_path: Path) -> None:
    _fails(
        ["-n", "x", "-t", "d", pushed.ref("single", "nope")],
        tmp_path,
        f"image {pushed.ref('single', 'nope')} not found on registry {pushed.host}",
    )
    _fails(
        ["-n", "x", "-t", "d", pushed.ref("single"), pushed.ref("ghost")],
        tmp_path,
        f"image {pushed.ref('ghost')} not found",
    )
    # Resolved concurrently, reported in command-line order.
    _fails(
        ["-n", "x", "-t", "d", pushed.ref("ghost1"), pushed.ref("single"), pushed.ref("ghost2")],
        tmp_path,
        f"image {pushed.ref('ghost1')} not found",
    )


def test_bad_unknown_platform(pushed: PushedSet, tmp_path: Path) -> None:
    _fails(
        ["-n", "x", "-t", "d", "--platform", "linux/mips64", pushed.ref("multi")],
        tmp_path,
        "no image for platform linux/mips64",
    )
    _fails(
        ["-n", "x", "-t", "d", "--platform", "windows/amd64", pushed.ref("single")],
        tmp_path,
        "image is for platform linux/amd64, not windows/amd64",
    )
    _fails(
        ["-n", "x", "-t", "d", "--platform", "amd64", pushed.ref("single")],
        tmp_path,
        "malformed platform 'amd64'",
    )


def test_bad_registry_unreachable(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"
    _fails(["-n", "x", "-t", "d", f"{host}/a/b:1"], tmp_path, f"registry {host} is unreachable")


def test_bad_auth_refused(basic_registry: Registry, tmp_path: Path) -> None:
    repo = f"{unique('genauth')}/app"
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    push_image(basic_registry.host, repo, "v1", [{"f": b"x"}], auth=auth)
    ref = f"{basic_registry.host}/{repo}:v1"
    wrong = docker_config(tmp_path, basic_auth_config(USER, "bad", basic_registry.host))
    _fails(
        ["-n", "x", "-t", "d", ref], tmp_path, f"registry {basic_registry.host} refused", env=wrong
    )
    good = docker_config(tmp_path, basic_auth_config(USER, PASSWORD, basic_registry.host))
    ok(gen(["-n", "x", "-t", "d", "-o", str(tmp_path / "good.mender"), ref], env=good))


@pytest.mark.parametrize(
    "args, expect",
    [
        (["-n", "x", "-t", "d", "127.0.0.1:5000/Bad/Name:1"], "malformed image reference"),
        (["-n", "x", "-t", "d", "127.0.0.1:5000/a@sha256:12"], "malformed image reference"),
        (["-n", "x", "127.0.0.1:5000/a:1"], "device type not specified"),
        (["-t", "d", "127.0.0.1:5000/a:1"], "artifact name not specified"),
        (["-n", "x", "-t", "d"], "no image given"),
        (["-n", "x", "-t", "d", "--frobnicate", "127.0.0.1:5000/a:1"], "--frobnicate"),
        (["-n", "x", "-t", "d", "--run-args", "-e 'open", "127.0.0.1:5000/a:1"], ""),
        # what no device runs is refused already here (issue 10)
        (["-n", "x", "-t", "d", "--run-args", "--rm", "127.0.0.1:5000/a:1"], "never allowed"),
        (["-n", "x", "-t", "d", "--run-args", "--bogus", "127.0.0.1:5000/a:1"], "unknown option"),
    ],
)
def test_bad_arguments(args: List[str], expect: str, tmp_path: Path, pushed: PushedSet) -> None:
    if expect == "" or args[-2].startswith("--"):  # refused after resolving: needs a real image
        args = [*args[:-1], pushed.ref("single")]
        expect = expect or "run_args: cannot split run arguments"
    _fails(args, tmp_path, expect)


def test_bad_output_path(pushed: PushedSet, tmp_path: Path) -> None:
    args = ["-n", "x", "-t", "d", pushed.ref("single")]
    _fails(args, tmp_path, "does not exist", out=tmp_path / "no-such-dir" / "bad.mender")
    folder = tmp_path / "bad.mender"
    folder.mkdir()
    proc = gen([*args, "-o", str(folder)])
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("is a directory")
    assert folder.is_dir() and not list(folder.iterdir())


def test_bad_signing_key_fails_before_any_registry_call(tmp_path: Path) -> None:
    key = tmp_path / "garbage.pem"
    key.write_text("not a key\n")
    unreachable = f"127.0.0.1:{free_port()}/a/b:1"  # never asked: the key is checked first
    _fails(
        ["-n", "x", "-t", "d", unreachable, "--", "-k", str(key)], tmp_path, f"signing key '{key}'"
    )


def test_existing_output_is_left_alone_on_failure(pushed: PushedSet, tmp_path: Path) -> None:
    out = tmp_path / "keep.mender"
    out.write_bytes(b"previous artifact")
    proc = gen(["-n", "x", "-t", "d", "-o", str(out), pushed.ref("single", "nope")])
    assert proc.returncode == 1
    assert out.read_bytes() == b"previous artifact"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mender"]

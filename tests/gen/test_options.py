"""Command-line parsing and the header rules, without any registry."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import pytest

from mender_docker.cli.gen import main, parse_options
from mender_docker.errors import GeneratorError
from mender_docker.gen import GenOptions, build_metadata, build_spec, check_options
from mender_docker.registry import ResolvedImage
from mender_docker.spec import MetadataError

DIGEST = "sha256:" + "cd" * 32


def _image(name: str = "reg:5000/a/web", size: int = 10) -> ResolvedImage:
    return ResolvedImage(f"{name}:1", f"{name}@{DIGEST}", DIGEST, size, "m")


def test_original_options_keep_their_meaning() -> None:
    options = parse_options(
        [
            "-n",
            "rel-1",
            "-t",
            "dev-a",
            "--device-type",
            "dev-b",
            "--run-args",
            "-p 80:80 --rm",
            "-o",
            "out.mender",
            "img1",
            "img2:tag",
            "--software-name",
            "web",
            "--software-version",
            "2.0",
            "--software-filesystem",
            "app",
        ]
    )
    assert options.artifact_name == "rel-1"
    assert options.device_types == ["dev-a", "dev-b"]
    assert options.images == ["img1", "img2:tag"]
    assert options.run_args == "-p 80:80 --rm"
    assert options.output_path == "out.mender"
    assert (options.software_name, options.software_version, options.software_filesystem) == (
        "web",
        "2.0",
        "app",
    )
    assert parse_options(["-n", "x", "-t", "d", "i"]).output_path == "docker-artifact.mender"
    assert parse_options(["--artifact-name", "x", "--output_path", "o", "i"]).output_path == "o"


def test_passthrough_after_double_dash_is_understood_natively() -> None:
    options = parse_options(
        [
            "-n",
            "x",
            "-t",
            "d",
            "img",
            "--",
            "-p",
            "k1:v1",
            "--provides",
            "k2:v:2",
            "-d",
            "dk:dv",
            "-g",
            "grp",
            "-G",
            "g1",
            "--depends-groups",
            "g2",
            "-N",
            "a1",
            "--clears-provides",
            "c.*",
            "--no-default-clears-provides",
            "--compression",
            "lzma",
            "-k",
            "key.pem",
            "-s",
            "ArtifactInstall_Enter_00",
            "--software-name",
            "web",
        ]
    )
    assert options.images == ["img"]
    assert options.provides == [("k1", "v1"), ("k2", "v:2")]
    assert options.depends == [("dk", "dv")]
    assert options.artifact_group == "grp"
    assert options.depends_groups == ["g1", "g2"]
    assert options.artifact_name_depends == ["a1"]
    assert options.clears_provides == ["c.*"]
    assert options.no_default_clears_provides
    assert options.compression == "lzma"
    assert options.key == "key.pem"
    assert options.scripts == ["ArtifactInstall_Enter_00"]
    assert options.software_name == "web"


def test_extensions_and_intermixed_images() -> None:
    options = parse_options(
        [
            "img1",
            "-n",
            "x",
            "img2",
            "-t",
            "d",
            "--platform",
            "linux/arm/v7",
            "--resolver",
            "docker",
            "--insecure-registry",
            "r:1",
            "--name",
            "web",
            "--name",
            "db",
            "--container-args",
            "-e A=1",
            "--health-timeout",
            "30",
            "--health-window",
            "2.5",
            "--stop-timeout",
            "7",
            "--no-image-sizes",
        ]
    )
    assert options.images == ["img1", "img2"]
    assert options.platform == "linux/arm/v7"
    assert options.resolver == "docker"
    assert options.insecure_registries == ["r:1"]
    assert options.names == ["web", "db"]
    assert options.container_args == ["-e A=1"]
    assert (options.health_timeout, options.health_window, options.stop_timeout) == (30, 2.5, 7)
    assert not options.image_sizes


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-n", "x", "-t", "d", "i", "--bogus"], "unrecognized arguments: --bogus"),
        (["-n", "x", "-t", "d", "i", "--", "-f", "file"], "unrecognized arguments: -f file"),
        (["-n", "x", "-t", "d", "i", "--", "stray"], "unrecognized arguments: stray"),
        (["-n", "x", "-t", "d", "i", "-p", "novalue"], "expected KEY:VALUE"),
        (["-n", "x", "-t", "d", "i", "--compression", "bz2"], "invalid choice: 'bz2'"),
        (["-n", "x", "-t", "d", "i", "--health-timeout", "-1"], "non-negative"),
        (["-n", "x", "-t", "d", "i", "--resolver", "podman"], "invalid choice: 'podman'"),
        (["-n"], "expected one argument"),
        (["-n", "x", "-t", "d", "i", "--soft", "x"], "unrecognized arguments"),
    ],
)
def test_bad_options_are_one_error(argv: List[str], message: str) -> None:
    with pytest.raises(GeneratorError, match=message):
        parse_options(argv)


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in (
        "--artifact-name",
        "--device-type",
        "--software-name",
        "--run-args",
        "--output-path",
        "--platform",
        "--resolver",
        "--provides",
        "--key",
    ):
        assert option in out


def _options(tmp_path: Path, **extra: object) -> GenOptions:
    options = GenOptions(
        artifact_name="rel-1",
        device_types=["d"],
        images=["img"],
        output_path=str(tmp_path / "out.mender"),
    )
    for key, value in extra.items():
        setattr(options, key, value)
    return options


@pytest.mark.parametrize(
    "extra, provides, clears",
    [
        ({}, {"rootfs-image.docker.version": "rel-1"}, ["rootfs-image.docker.*"]),
        ({"software_name": "web"}, {"rootfs-image.web.version": "rel-1"}, ["rootfs-image.web.*"]),
        (
            {"software_filesystem": "fs", "software_version": "7"},
            {"fs.docker.version": "7"},
            ["fs.docker.*"],
        ),
        (
            {"clears_provides": ["a.b"]},
            {"rootfs-image.docker.version": "rel-1"},
            ["a.b", "rootfs-image.docker.*"],
        ),
        (
            {"no_default_clears_provides": True, "clears_provides": ["a.b"]},
            {"rootfs-image.docker.version": "rel-1"},
            ["a.b"],
        ),
        ({"no_default_software_version": True, "clears_provides": ["q"]}, {}, ["q"]),
        (
            {"provides": [("rootfs-image.docker.version", "zz"), ("x", "y")]},
            {"rootfs-image.docker.version": "zz", "x": "y"},
            ["rootfs-image.docker.*"],
        ),
    ],
)
def test_provides_and_clears_follow_mender_artifact(
    tmp_path: Path, extra: dict[str, object], provides: dict[str, str], clears: List[str]
) -> None:
    options = _options(tmp_path, **extra)
    spec = build_spec(options, build_metadata(options, [_image()]))
    assert spec.provides == provides
    assert spec.clears_provides == clears
    assert spec.payload_type == "docker"


def test_metadata_keys(tmp_path: Path) -> None:
    options = _options(
        tmp_path,
        images=["a", "b"],
        run_args="-p 80:80",
        names=["web"],
        container_args=["-e X=1"],
        health_timeout=30.0,
        stop_timeout=5.0,
    )
    meta = build_metadata(options, [_image(size=11), _image("reg:5000/b", size=22)])
    assert meta.to_dict() == {
        "containers": [f"reg:5000/a/web@{DIGEST}", f"reg:5000/b@{DIGEST}"],
        "run_args": "-p 80:80",
        "names": ["web", ""],
        "container_args": ["-e X=1", ""],
        "image_sizes": [11, 22],
        "health_timeout": 30,
        "stop_timeout": 5,
    }
    plain = build_metadata(_options(tmp_path, image_sizes=False), [_image()])
    assert list(plain.to_dict()) == ["containers", "run_args"]


def test_metadata_is_validated_with_the_device_rules(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="cannot split"):
        build_metadata(_options(tmp_path, run_args="-e 'unclosed"), [_image()])
    with pytest.raises(MetadataError, match="used by both"):
        build_metadata(
            _options(tmp_path, images=["a", "b"], names=["same", "same"]),
            [_image(), _image("reg:5000/b")],
        )


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"artifact_name": ""}, "artifact name not specified"),
        ({"device_types": []}, "device type not specified"),
        ({"images": []}, "no image given"),
        ({"names": ["a", "b"]}, "2 --name options for 1 image"),
        ({"scripts": ["Bogus_Enter_00"]}, "state script 'Bogus_Enter_00'"),
        ({"scripts": ["/nonexistent/ArtifactInstall_Enter_00"]}, "not found"),
        ({"key": "/nonexistent/key.pem"}, "signing key '/nonexistent/key.pem' not found"),
    ],
)
def test_checks_before_any_network(tmp_path: Path, extra: dict[str, object], message: str) -> None:
    with pytest.raises(GeneratorError, match=message):
        check_options(_options(tmp_path, **extra))


@pytest.mark.parametrize("where", ["missing-dir/out.mender", "."])
def test_output_path_checked(tmp_path: Path, where: Optional[str]) -> None:
    with pytest.raises(GeneratorError, match="output path"):
        check_options(_options(tmp_path, output_path=str(tmp_path / str(where))))

"""`docker-artifact-gen` / `mender-docker gen`: command-line compatible with the original.

    docker-artifact-gen [options] IMAGE [IMAGE...] [-- mender-artifact options]

The mender-artifact options users pass after `--` are understood natively (no
mender-artifact binary is run) and are accepted before `--` too.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, List, Optional, Sequence

from mender_docker.cli.artifact_options import (
    OptionsParser,
    add_mender_artifact_options,
    glue_dash_values,
)
from mender_docker.cli.common import run_command
from mender_docker.cli.progress import ProgressBar
from mender_docker.gen import RESOLVERS, GenOptions, generate, summary, with_application

PROG = "docker-artifact-gen"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = OptionsParser(
        prog=prog,
        description="Generate a Mender Artifact for the docker Update Module, pinning each"
        " image by digest from its registry (no Docker daemon needed).",
        usage=f"{prog} [options] IMAGE [IMAGE...] [-- [mender-artifact options]]",
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("-n", "--artifact-name", help="artifact name (required)")
    add("-t", "--device-type", action="append", help="compatible device type (repeatable)")
    add("--run-args", help="arguments added to `docker run` for every container")
    add(
        "-o",
        "--output-path",
        "--output_path",
        default=None,
        help="output file (default: docker-artifact.mender)",
    )
    add("images", nargs="*", metavar="IMAGE", help="images: name[:tag][@sha256:...]")
    add_mender_artifact_options(parser)
    ours = parser.add_argument_group("extensions")
    ours.add_argument("--platform", help="pin the manifest for os/arch[/variant] of an index")
    ours.add_argument(
        "--resolver",
        choices=RESOLVERS,
        default=None,
        help="registry (default, no daemon) or docker (pull + inspect)",
    )
    ours.add_argument(
        "--insecure-registry",
        action="append",
        metavar="HOST[:PORT]",
        help="speak plain HTTP to this registry (repeatable; also"
        " MENDER_DOCKER_INSECURE_REGISTRIES)",
    )
    ours.add_argument(
        "--name",
        action="append",
        metavar="NAME",
        help="container name, one per image in order (repeatable)",
    )
    ours.add_argument(
        "--container-args",
        action="append",
        metavar="ARGS",
        help="extra docker run arguments, one per image in order (repeatable)",
    )
    ours.add_argument("--health-timeout", type=_seconds, metavar="SECONDS")
    ours.add_argument("--health-window", type=_seconds, metavar="SECONDS")
    ours.add_argument("--stop-timeout", type=_seconds, metavar="SECONDS")
    ours.add_argument(
        "--embed-images",
        "--offline",
        action="store_true",
        help="put the images into the artifact (docker load layout), fetched from the"
        " registry (or the daemon with --resolver docker); the device needs no registry."
        " Default compression then: none (registry layers are already gzip)",
    )
    ours.add_argument(
        "--delta-from",
        action="append",
        metavar="BASE",
        help="with --embed-images: a delta against BASE, the release the devices run (its"
        " artifact file, or an image reference); the layers it has stay out of the payload"
        " and a base artifact's name becomes an artifact_name depend (repeatable)",
    )
    ours.add_argument(
        "--compose",
        metavar="FILE",
        action="append",
        help="a Compose file: one container per service, with its networks and volumes"
        " (no IMAGE arguments then); repeated, the files are merged as `docker compose -f A"
        " -f B` merges them",
    )
    ours.add_argument(
        "--project-directory",
        metavar="DIR",
        help="the Compose project's directory (default: the first --compose file's)",
    )
    ours.add_argument("--project-name", metavar="NAME", help="the Compose project's name")
    ours.add_argument(
        "--profile",
        action="append",
        metavar="PROFILE",
        help="enable the Compose services of this profile (repeatable)",
    )
    ours.add_argument(
        "--snapshot-volumes",
        action="store_true",
        help="snapshot the volumes of every container the release replaces before it"
        " starts, and restore them if the release is rolled back (per Compose service:"
        " x-mender-snapshot: true)",
    )
    ours.add_argument(
        "--no-image-sizes",
        action="store_true",
        help="do not write image_sizes (meta-data keys exactly as the original)",
    )
    return parser


def build_passthrough_parser() -> argparse.ArgumentParser:
    parser = OptionsParser(prog=f"{PROG} ... --", allow_abbrev=False, add_help=False)
    add_mender_artifact_options(parser)
    return parser


def parse_options(argv: Sequence[str], prog: str = PROG) -> GenOptions:
    args = list(argv)
    before, after = args, []
    if "--" in args:
        at = args.index("--")
        before, after = args[:at], args[at + 1 :]
    parser, passthrough_parser = build_parser(prog), build_passthrough_parser()
    ns = parser.parse_intermixed_args(glue_dash_values(parser, before))
    passthrough = passthrough_parser.parse_args(glue_dash_values(passthrough_parser, after))
    # After `--` overrides (single values) or adds to (lists) what came before.
    for key, value in vars(passthrough).items():
        if value is None:
            continue
        current = getattr(ns, key, None)
        if isinstance(value, list) and isinstance(current, list):
            setattr(ns, key, current + value)
        else:
            setattr(ns, key, value)
    return GenOptions(
        artifact_name=ns.artifact_name or "",
        device_types=list(ns.device_type or []),
        images=list(ns.images),
        output_path=ns.output_path or "docker-artifact.mender",
        run_args=ns.run_args or "",
        software_name=ns.software_name,
        software_version=ns.software_version,
        software_filesystem=ns.software_filesystem,
        no_default_software_version=bool(ns.no_default_software_version),
        provides=list(ns.provides or []),
        depends=list(ns.depends or []),
        clears_provides=list(ns.clears_provides or []),
        no_default_clears_provides=bool(ns.no_default_clears_provides),
        artifact_group=ns.provides_group,
        depends_groups=list(ns.depends_groups or []),
        artifact_name_depends=list(ns.artifact_name_depends or []),
        compression=ns.compression or _default_compression(ns),
        key=ns.key,
        scripts=list(ns.script or []),
        platform=ns.platform,
        resolver=ns.resolver or "registry",
        insecure_registries=list(ns.insecure_registry or []),
        names=list(ns.name or []),
        container_args=list(ns.container_args or []),
        health_timeout=ns.health_timeout,
        health_window=ns.health_window,
        stop_timeout=ns.stop_timeout,
        image_sizes=not ns.no_image_sizes,
        embed_images=bool(ns.embed_images),
        delta_from=list(ns.delta_from or []),
        compose_file=ns.compose[0] if ns.compose else None,
        compose_overrides=list(ns.compose[1:]) if ns.compose else [],
        project_directory=ns.project_directory,
        project_name=ns.project_name,
        profiles=list(ns.profile or []),
        snapshot_volumes=bool(ns.snapshot_volumes),
    )


def _default_compression(ns: argparse.Namespace) -> str:
    """gzip, as the original; for embedded registry layers (already gzip) none:
    compressing them again costs time on both ends and saves nothing."""
    if ns.embed_images and (ns.resolver or "registry") == "registry":
        return "none"
    return "gzip"


def make_command(prog: str) -> Callable[[List[str]], int]:
    def command(argv: List[str]) -> int:
        try:
            options = parse_options(argv, prog)
        except SystemExit as exc:  # --help
            return exc.code if isinstance(exc.code, int) else 0
        if options.compose_file is not None:
            options = with_application(options)
            for note in options.application.notes if options.application else ():
                print(f"{prog}: note: {note}", file=sys.stderr)
        if options.embed_images:
            with ProgressBar("fetching images") as bar:  # on a terminal only
                result = generate(options, progress=bar)
        else:
            result = generate(options)
        print(summary(result))
        return 0

    return command


def run(name: str, argv: List[str]) -> int:
    """Entry point for `mender-docker gen`."""
    prog = f"mender-docker {name}"
    return run_command(make_command(prog), argv, prog)


def main(argv: Optional[List[str]] = None) -> int:
    return run_command(make_command(PROG), argv, PROG)


if __name__ == "__main__":
    sys.exit(main())

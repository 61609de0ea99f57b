"""`mender-docker sign ARTIFACT -k KEY [-o OUT] [-f]`: as `mender-artifact sign`."""

from __future__ import annotations

import argparse
from typing import List, Optional

from mender_docker.artifact.resign import sign_artifact
from mender_docker.cli.artifact_options import OptionsParser, load_signer
from mender_docker.cli.common import run_command
from mender_docker.errors import GeneratorError


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = OptionsParser(prog=prog, allow_abbrev=False,
                           description="Sign an existing Mender artifact (every checksum "
                           "is verified first, the signed copy is verified again).")
    add = parser.add_argument
    add("artifact", help="the .mender file")
    add("-k", "--key", help="private key (PEM) to sign with (required)")
    add("-o", "--output-path", help="write the signed artifact here (default: replace it)")
    add("-f", "--force", action="store_true", help="replace an existing signature")
    return parser


def _main(argv: List[str], prog: str) -> int:
    try:
        args = _parser(prog).parse_args(argv)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    if not args.key:
        raise GeneratorError("no signing key given (-k/--key)")
    signer = load_signer(args.key)
    sign_artifact(args.artifact, signer, args.output_path, args.force)
    print(f"{args.output_path or args.artifact}: signed")
    return 0


def run(name: str, argv: Optional[List[str]]) -> int:
    """Entry point for `mender-docker sign`."""
    prog = f"mender-docker {name}"
    return run_command(lambda args: _main(args, prog), argv, prog)

"""`mender-docker validate ARTIFACT [-k PUBLIC_KEY]`: exit 0 only if everything verifies."""

from __future__ import annotations

import argparse
from typing import List, Optional

from mender_docker.artifact import load_public_key, read_artifact
from mender_docker.cli.common import run_command


def _main(argv: List[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Verify every checksum of a "
                                     "Mender artifact and, with -k, its signature.")
    parser.add_argument("artifact", help="the .mender file")
    parser.add_argument("-k", "--key", help="public key (PEM); the artifact must be signed "
                        "with its private key")
    args = parser.parse_args(argv)
    key = load_public_key(args.key) if args.key else None
    info = read_artifact(args.artifact, verify_key=key)
    what = "checksums and signature" if info.signature_verified else "checksums"
    print(f"{args.artifact}: valid ({what} verified)")
    return 0


def run(name: str, argv: Optional[List[str]]) -> int:
    prog = f"mender-docker {name}"
    return run_command(lambda args: _main(args, prog), argv, prog)

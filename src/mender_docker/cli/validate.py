"""`mender-docker validate ARTIFACT [-k PUBLIC_KEY] [--require-signature]`: exit 0 only if
everything verifies. A signature is checked only with -k; without it the output says so."""

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
    parser.add_argument("--require-signature", action="store_true",
                        help="fail unless the signature was verified (needs -k)")
    args = parser.parse_args(argv)
    if args.require_signature and not args.key:
        parser.error("--require-signature needs the public key: give -k KEY")
    key = load_public_key(args.key) if args.key else None
    info = read_artifact(args.artifact, verify_key=key)
    if info.signature_verified:
        print(f"{args.artifact}: valid (checksums and signature verified)")
    elif info.signed:
        print(f"{args.artifact}: valid checksums; signed, but the signature was NOT verified "
              "(no key given: use -k)")
    else:
        print(f"{args.artifact}: valid (checksums verified; not signed)")
    return 0


def run(name: str, argv: Optional[List[str]]) -> int:
    prog = f"mender-docker {name}"
    return run_command(lambda args: _main(args, prog), argv, prog)

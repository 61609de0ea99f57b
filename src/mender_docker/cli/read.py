"""`mender-docker read ARTIFACT [--json] [-k KEY]`: show what an artifact holds."""

from __future__ import annotations

import argparse
import json
from typing import Any, List, Optional

from mender_docker.artifact import ArtifactInfo, load_public_key, read_artifact
from mender_docker.cli.common import run_command


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Show what a Mender artifact "
                                     "contains (every checksum is verified while reading).")
    parser.add_argument("artifact", help="the .mender file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("-k", "--key", help="public key (PEM) to verify the signature with")
    return parser


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def signature_state(info: ArtifactInfo) -> str:
    if info.signature_verified:
        return "signed and verified"
    if info.signed:
        return "signed, but NOT verified (no key given: use -k)"
    return "not signed"


def describe(info: ArtifactInfo) -> str:
    """A human summary in the spirit of `mender-artifact read`."""
    signature = signature_state(info)
    lines = [
        "Mender artifact:",
        f"  Name: {info.artifact_name}",
        f"  Format: {info.format}",
        f"  Version: {info.version}",
        f"  Signature: {signature}",
        f"  Compatible devices: {', '.join(info.device_types)}",
        f"  Provides group: {info.artifact_group or ''}",
    ]
    for key, values in info.artifact_depends.items():
        if key != "device_type":
            lines.append(f"  Depends on {key}: {_value(values)}")
    lines.append(f"  State scripts: {', '.join(s.name for s in info.scripts) or 'none'}")
    lines += ["", "Payload 0:", f"  Type: {info.payload_type or 'none (bootstrap artifact)'}",
              f"  Compression: {info.compression}", "  Provides:"]
    lines += [f"    {k}: {_value(v)}" for k, v in info.provides.items()] or ["    nothing"]
    lines.append("  Depends:")
    lines += [f"    {k}: {_value(v)}" for k, v in info.depends.items()] or ["    nothing"]
    lines.append(f"  Clears provides: {', '.join(info.clears_provides) or 'nothing'}")
    if info.meta_data is None:
        lines.append("  Meta-data: none")
    else:
        lines.append("  Meta-data:")
        lines += [f"    {k}: {_value(v)}" for k, v in info.meta_data.items()]
    lines.append(f"  Files: {len(info.files) or 'none'}")
    for f in info.files:
        lines += [f"    name: {f.name}", f"    size: {f.size}", f"    sha256: {f.sha256}"]
    return "\n".join(lines)


def _main(argv: List[str], prog: str) -> int:
    args = _parser(prog).parse_args(argv)
    key = load_public_key(args.key) if args.key else None
    info = read_artifact(args.artifact, verify_key=key)
    if args.json:
        # allow_nan=False: the reader refuses NaN and 1e400, so this always prints JSON
        print(json.dumps(info.to_json(), indent=2, sort_keys=True, allow_nan=False))
    else:
        print(describe(info))
    return 0


def run(name: str, argv: Optional[List[str]]) -> int:
    prog = f"mender-docker {name}"
    return run_command(lambda args: _main(args, prog), argv, prog)

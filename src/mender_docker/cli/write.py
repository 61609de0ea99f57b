"""`mender-docker write module-image|rootfs-image|bootstrap-artifact`: mender-artifact's
`write` commands, same flags (3.9 and 4.x spellings), artifacts written natively.

    mender-docker write module-image -T TYPE -n NAME -t DEVICE [-f FILE]... [-o OUT]
    mender-docker write rootfs-image -n NAME -t DEVICE -f ROOTFS [-o OUT]
    mender-docker write bootstrap-artifact -n NAME -t DEVICE [-o OUT]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set

from mender_docker.artifact import ArtifactSpec, PayloadFile, write_artifact
from mender_docker.artifact.headers import check_flat_meta_data, check_script_name
from mender_docker.artifact.provides import (
    KINDS,
    SoftwareOptions,
    default_clears,
    software_provides,
)
from mender_docker.cli.artifact_options import (
    OptionsParser,
    add_mender_artifact_options,
    glue_dash_values,
    load_signer,
)
from mender_docker.cli.common import run_command
from mender_docker.errors import ArtifactError, GeneratorError

_SOFTWARE_OPTION = re.compile(r"--software-(name|version|filesystem)(=|$)")


def build_parser(kind: str, prog: str) -> argparse.ArgumentParser:
    parser = OptionsParser(prog=f"{prog} {kind}", allow_abbrev=False,
                           description=f"Write a Mender artifact ({kind}), as "
                           f"`mender-artifact write {kind}` does.")
    add = parser.add_argument
    add("-n", "--artifact-name", help="artifact name (required)")
    add("-t", "--device-type", action="append", help="compatible device type (repeatable)")
    add("-o", "--output-path", default="artifact.mender",
        help="output file, '-' for stdout (default: artifact.mender)")
    if kind == "module-image":
        add("-T", "--type", help="payload type: the name of the update module (required)")
        add("-f", "--file", action="append", metavar="FILE",
            help="payload file (repeatable)")
        add("-m", "--meta-data", metavar="FILE", help="meta-data JSON file of the payload")
    elif kind == "rootfs-image":
        add("-f", "--file", action="append", metavar="FILE", help="the root file system image")
        add("--no-checksum-provide", action="store_true",
            help="do not write rootfs-image.checksum into the provides")
        add("--legacy-rootfs-image-checksum", action="store_true",
            help="provide the checksum as rootfs_image_checksum")
    if kind != "module-image":
        add("--no-progress", action="store_true", help="accepted; there is no progress bar")
    add_mender_artifact_options(parser, "mender-artifact options",
                                software=kind != "bootstrap-artifact")
    return parser


def provides_win(argv: Sequence[str], keys: Set[str]) -> Set[str]:
    """The -p keys that win over the software version: mender-artifact lets a -p KEY:...
    win unless a --software-* option comes after the last -p of that key."""
    last_software = max((i for i, arg in enumerate(argv) if _SOFTWARE_OPTION.match(arg)),
                        default=-1)
    last_provide: Dict[str, int] = {}
    for index in range(len(argv)):
        key = _provide_key_at(argv, index)
        if key is not None:
            last_provide[key] = index
    return {key for key in keys if last_provide.get(key, -1) > last_software}


def _provide_key_at(argv: Sequence[str], index: int) -> Optional[str]:
    """The KEY of a `-p KEY:VALUE` (any spelling) starting at argv[index], else None."""
    arg = argv[index]
    if arg in ("-p", "--provides"):
        value = argv[index + 1] if index + 1 < len(argv) else ""
    elif arg.startswith("--provides="):
        value = arg[len("--provides="):]
    elif arg.startswith("-p") and not arg.startswith("--"):
        value = arg[2:].lstrip("=")
    else:
        return None
    return value.partition(":")[0]


def _meta_data(path: Optional[str]) -> Optional[Dict[str, Any]]:
    if path is None:
        return None
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise GeneratorError(f"meta-data file {path!r} is not valid JSON: {exc}") from None
    try:
        return check_flat_meta_data(meta, f"meta-data file {path!r}")
    except ArtifactError as exc:
        raise GeneratorError(str(exc)) from None


def _scripts(paths: Sequence[str]) -> List[Any]:
    scripts = []
    for path in paths:
        try:
            check_script_name(os.path.basename(path))
        except ArtifactError as exc:
            raise GeneratorError(f"state script {path!r}: {exc}") from None
        scripts.append((os.path.basename(path), Path(path).read_bytes()))
    return scripts


def _sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check(kind: str, ns: argparse.Namespace) -> List[str]:
    """The payload files, after the checks mender-artifact makes."""
    if not ns.artifact_name:
        raise GeneratorError("artifact name not given (-n/--artifact-name)")
    if len(ns.artifact_name.split()) != 1 or ns.artifact_name != ns.artifact_name.strip():
        raise GeneratorError(f"artifact name {ns.artifact_name!r}: white space is not allowed")
    if not ns.device_type or not all(ns.device_type):
        raise GeneratorError("device type not given (-t/--device-type)")
    files: List[str] = list(getattr(ns, "file", None) or [])
    if kind == "module-image" and not ns.type:
        raise GeneratorError("payload type not given (-T/--type): the update module's name")
    if kind == "rootfs-image":
        if len(files) != 1:
            raise GeneratorError(f"rootfs-image takes one file (-f), not {len(files)}")
        if files[0].startswith("ssh://"):
            raise GeneratorError("a system snapshot over ssh:// is not supported: "
                                 "give the image file")
    for path in files:
        if not os.path.isfile(path):
            raise GeneratorError(f"payload file {path!r} not found (or not a file)")
    return files


def build_spec(kind: str, ns: argparse.Namespace, argv: Sequence[str],
               files: Sequence[str]) -> ArtifactSpec:
    """The artifact header mender-artifact writes for these options."""
    given = list(ns.provides or [])
    software = kind != "bootstrap-artifact"
    rules = SoftwareOptions(
        kind=kind,
        artifact_name=ns.artifact_name,
        payload_type=getattr(ns, "type", None),
        software_name=ns.software_name if software else None,
        software_version=ns.software_version if software else None,
        software_filesystem=ns.software_filesystem if software else None,
        no_default_software_version=bool(software and ns.no_default_software_version),
        no_default_clears_provides=bool(software and ns.no_default_clears_provides),
        provides=given,
        clears_provides=list(ns.clears_provides or []),
        provides_win=provides_win(argv, {key for key, _ in given}),
    )
    provides = software_provides(rules)
    if kind == "rootfs-image" and not ns.no_checksum_provide:
        key = "rootfs_image_checksum" if ns.legacy_rootfs_image_checksum else \
            "rootfs-image.checksum"
        provides[key] = _sha256_of(files[0])
    artifact_depends: Dict[str, List[str]] = {}
    if ns.artifact_name_depends:
        artifact_depends["artifact_name"] = list(ns.artifact_name_depends)
    if ns.depends_groups:
        artifact_depends["artifact_group"] = list(ns.depends_groups)
    payload_type = {"module-image": getattr(ns, "type", None),
                    "rootfs-image": "rootfs-image"}.get(kind)
    return ArtifactSpec(
        artifact_name=ns.artifact_name,
        device_types=list(ns.device_type),
        payload_type=payload_type,
        artifact_group=ns.provides_group,
        artifact_depends=artifact_depends,
        provides=provides,
        depends=dict(ns.depends or []),
        clears_provides=default_clears(rules),
        meta_data=_meta_data(getattr(ns, "meta_data", None)),
        scripts=_scripts(ns.script or []) if software else [],
    )


def _payload(path: str) -> PayloadFile:
    try:
        return PayloadFile.from_path(path)
    except OSError as exc:
        raise GeneratorError(f"payload file {path!r}: {exc.strerror}") from None


def _write(kind: str, argv: List[str], prog: str) -> int:
    parser = build_parser(kind, prog)
    try:
        ns = parser.parse_args(glue_dash_values(parser, argv))
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    files = _check(kind, ns)
    spec = build_spec(kind, ns, argv, files)
    signer = load_signer(ns.key) if ns.key else None
    payloads = [_payload(path) for path in files]
    if ns.output_path == "-":
        write_artifact(sys.stdout.buffer, spec, payloads, ns.compression or "gzip", signer)
        sys.stdout.buffer.flush()
        return 0
    write_artifact(ns.output_path, spec, payloads, ns.compression or "gzip", signer)
    print(f"{ns.output_path}: {kind} {ns.artifact_name!r} written"
          f"{' and signed' if signer else ''}")
    return 0


def _main(argv: List[str], prog: str) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {prog} {{{','.join(KINDS)}}} [options] (see {prog} KIND --help)")
        return 0 if argv else 2
    kind, rest = argv[0], argv[1:]
    if kind not in KINDS:
        raise GeneratorError(f"unknown artifact kind {kind!r} (known: {', '.join(KINDS)})")
    return _write(kind, rest, prog)


def run(name: str, argv: Optional[List[str]]) -> int:
    """Entry point for `mender-docker write`."""
    prog = f"mender-docker {name}"
    return run_command(lambda args: _main(args, prog), argv, prog)

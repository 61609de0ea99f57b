"""The mender-artifact options our commands share (`gen` after `--`, `write`): one parser.

Spelled as mender-artifact 3.9 and 4.x spell them; a bad option is one error line.
"""

from __future__ import annotations

import argparse
from typing import Any, List, NoReturn, Sequence, Tuple

from mender_docker.artifact.compression import COMPRESSIONS as _BY_NAME
from mender_docker.artifact.compression import ZSTD_LEVELS
from mender_docker.errors import GeneratorError, MenderDockerError

COMPRESSIONS = (*_BY_NAME, *ZSTD_LEVELS)


class OptionsParser(argparse.ArgumentParser):
    """argparse that reports a bad option as one error line, not usage + exit 2."""

    def error(self, message: str) -> NoReturn:
        raise GeneratorError(f"{message} (see --help)")


def key_value(text: str) -> Tuple[str, str]:
    key, sep, value = text.partition(":")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY:VALUE, got {text!r}")
    return key, value


def load_signer(path: str) -> Any:
    """The private key of `-k PATH`; a missing or unusable one is one error line."""
    from mender_docker.artifact import load_private_key

    try:
        return load_private_key(path)
    except OSError as exc:
        raise GeneratorError(f"signing key {path!r}: {exc.strerror or exc}") from None
    except MenderDockerError as exc:
        raise GeneratorError(f"signing key {path!r}: {exc}") from None


def add_mender_artifact_options(parser: argparse.ArgumentParser,
                                title: str = "mender-artifact options (also accepted after --)",
                                software: bool = True) -> None:
    """The options `mender-artifact write` takes for every artifact kind (3.9 and 4.x
    spellings); `software=False` (a bootstrap artifact) leaves out the software version,
    default clears and state script ones, which it has not."""
    group = parser.add_argument_group(title)
    add = group.add_argument
    if software:
        add("--software-name",
            help="software key rootfs-image.NAME.version (default: the payload type)")
        add("--software-version", help="software version value (default: the artifact name)")
        add("--software-filesystem", help="used instead of rootfs-image in the software key")
        add(
            "--no-default-software-version",
            action="store_true",
            default=None,
            help="write no software version provide (and no default clears-provides)",
        )
        add(
            "--no-default-clears-provides",
            action="store_true",
            default=None,
            help="do not add the default <filesystem>.<name>.* clears entry",
        )
        add(
            "-s",
            "--script",
            action="append",
            metavar="FILE",
            help="state script ArtifactInstall_Enter_00 etc. (repeatable)",
        )
    add(
        "-p",
        "--provides",
        action="append",
        type=key_value,
        metavar="KEY:VALUE",
        help="extra type-info provide (repeatable)",
    )
    add(
        "-d",
        "--depends",
        action="append",
        type=key_value,
        metavar="KEY:VALUE",
        help="extra type-info depend (repeatable)",
    )
    add(
        "--clears-provides",
        action="append",
        metavar="PATTERN",
        help="clears_artifact_provides entry (repeatable)",
    )
    add("-g", "--provides-group", help="the artifact group this artifact provides")
    add(
        "-G",
        "--depends-groups",
        action="append",
        metavar="GROUP",
        help="artifact group the device must be in (repeatable)",
    )
    add(
        "-N",
        "--artifact-name-depends",
        action="append",
        metavar="NAME",
        help="artifact name the device must have installed (repeatable)",
    )
    add("--compression", choices=COMPRESSIONS,
        help="artifact compression (default: gzip); zstd_* are mender-artifact 4's levels")
    add("-k", "--key", help="private key (PEM) to sign the artifact with")
    add("-v", "--version", type=int, choices=(3,), help="artifact format version (only 3)")


def glue_dash_values(parser: argparse.ArgumentParser, args: Sequence[str]) -> List[str]:
    """Turn `--run-args "-p 80:80"` into `--run-args=-p 80:80`.

    argparse takes a value starting with "-" for an option (here `-p`); the
    original generator took the next word whatever it was, so do the same.
    """
    takes_value = {}
    for action in parser._actions:
        if action.option_strings and action.nargs is None:
            longest = max(action.option_strings, key=len)
            for option in action.option_strings:
                takes_value[option] = longest
    out: List[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in takes_value and index + 1 < len(args) and args[index + 1].startswith("-"):
            out.append(f"{takes_value[arg]}={args[index + 1]}")
            index += 2
            continue
        out.append(arg)
        index += 1
    return out

"""Tar members we accept, and the tar headers we write.

Only regular files with relative, normalised names: no `..`, no absolute paths,
no links, devices, FIFOs or directories. The same rule holds for the outer tar,
the header tar and the data tar.
"""

from __future__ import annotations

import re
import tarfile

from mender_docker.errors import ArtifactError

from .tarstream import TarMember

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
_USTAR_MAX_SIZE = 8**11 - 1


def check_member(member: TarMember, where: str) -> str:
    """The member's name if it is a safe regular file, else ArtifactError naming it."""
    name = member.name
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        kind = {tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hard link",
                tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
                tarfile.DIRTYPE: "directory", tarfile.FIFOTYPE: "FIFO",
                tarfile.GNUTYPE_SPARSE: "sparse file", tarfile.CONTTYPE: "contiguous file"}.get(
                    member.type, f"tar type {member.type.decode('latin-1')!r}")
        raise ArtifactError(f"{where}: member {name!r} is a {kind}, not a regular file")
    check_name(name, where)
    if member.size < 0:
        raise ArtifactError(f"{where}: member {name!r} has a negative size")
    return name


# mender-artifact's rule for payload file names: ASCII letters, digits and ".,_-"
_PAYLOAD_NAME = re.compile(r"[A-Za-z0-9_.,-]+")


def check_payload_name(name: str, where: str) -> None:
    """A payload file's name: plain (no directory), of the characters the reference takes."""
    check_name(name, where)
    if not _PAYLOAD_NAME.fullmatch(name):
        raise ArtifactError(f"{where}: payload file name {name!r} has characters other than "
                            "ASCII letters, digits and '.,_-' (mender-artifact refuses them)")


def check_name(name: str, where: str) -> None:
    if not name or name.startswith("/") or "\\" in name or "\0" in name:
        raise ArtifactError(f"{where}: unsafe member name {name!r}")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ArtifactError(f"{where}: unsafe member name {name!r}")


def member_header(name: str, size: int, mode: int = 0o600) -> bytes:
    """A deterministic header: owner 0/0, no user names, mtime 0 (as mender-artifact)."""
    check_name(name, "writing")
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    # GNU base-256 sizes only beyond 8 GiB, where ustar has no room; pax for long names.
    if size > _USTAR_MAX_SIZE:
        return info.tobuf(format=tarfile.GNU_FORMAT, encoding="utf-8", errors="strict")
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)

"""The `manifest` member: `<sha256 hex>  <name>` lines, sha256sum style. No I/O here."""

from __future__ import annotations

import re
from typing import Dict, Mapping

from mender_docker.errors import ArtifactError

_NAME = r"[^\x00-\x20\x7f]+"  # no white space, no control characters
_LINE = re.compile(r"([0-9a-f]{64})  (" + _NAME + ")")
MAX_MANIFEST = 1 << 20


def serialise_manifest(entries: Mapping[str, str]) -> bytes:
    """Sorted by name, one line each, trailing newline: what mender-artifact writes."""
    for name, digest in entries.items():
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ArtifactError(f"manifest: bad sha256 {digest!r} for {name!r}")
        if not re.fullmatch(_NAME, name):
            raise ArtifactError(f"manifest: name {name!r} is empty or has white space or "
                                "control characters")
    return "".join(f"{entries[n]}  {n}\n" for n in sorted(entries)).encode("utf-8")


def parse_manifest(raw: bytes) -> Dict[str, str]:
    """name -> sha256 hex. The grammar is exact: every line is `<64 lowercase hex>  <name>`
    ended by LF, names have no white space or control characters; no blank lines, no
    duplicates, not empty. (mender-artifact trims white space around lines and skips
    blank ones; no writer produces them.)"""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ArtifactError("manifest is not UTF-8 text") from None
    if not text:
        raise ArtifactError("manifest is empty")
    if not text.endswith("\n"):
        raise ArtifactError("manifest does not end with a line feed (truncated?)")
    entries: Dict[str, str] = {}
    for number, line in enumerate(text[:-1].split("\n"), 1):
        match = _LINE.fullmatch(line)
        if not match:
            raise ArtifactError(f"manifest line {number} {_fault(line)}: {line[:80]!r}")
        digest, name = match.groups()
        if name in entries:
            raise ArtifactError(f"manifest lists {name!r} twice")
        entries[name] = digest
    return entries


def _fault(line: str) -> str:
    """What is wrong with a manifest line, in words."""
    if not line:
        return "is blank"
    if line.endswith("\r"):
        return "ends in CR LF (lines end in LF only)"
    digest, sep, name = line.partition("  ")
    if not sep:
        return "does not separate checksum and name by two spaces"
    if re.fullmatch(r"[0-9a-fA-F]{64}", digest) and digest != digest.lower():
        return "has an upper-case checksum"
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        return "does not start with a 64-digit sha256"
    return "has a name with white space or control characters"

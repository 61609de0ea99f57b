"""The `manifest` member: `<sha256 hex>  <name>` lines, sha256sum style. No I/O here."""

from __future__ import annotations

import re
from typing import Dict, Mapping

from mender_docker.errors import ArtifactError

_LINE = re.compile(r"^([0-9a-f]{64})  (\S+)$")
MAX_MANIFEST = 1 << 20


def serialise_manifest(entries: Mapping[str, str]) -> bytes:
    """Sorted by name, one line each, trailing newline: what mender-artifact writes."""
    for name, digest in entries.items():
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ArtifactError(f"manifest: bad sha256 {digest!r} for {name!r}")
        if not name or any(c.isspace() for c in name):
            raise ArtifactError(f"manifest: name {name!r} is empty or has white space")
    return "".join(f"{entries[n]}  {n}\n" for n in sorted(entries)).encode("utf-8")


def parse_manifest(raw: bytes) -> Dict[str, str]:
    """name -> sha256 hex; refuses malformed lines, duplicates and an empty manifest."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ArtifactError("manifest is not UTF-8 text") from None
    entries: Dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if not match:
            raise ArtifactError(f"manifest line {number} is not '<sha256>  <name>': {line[:80]!r}")
        digest, name = match.groups()
        if name in entries:
            raise ArtifactError(f"manifest lists {name!r} twice")
        entries[name] = digest
    if not entries:
        raise ArtifactError("manifest is empty")
    return entries

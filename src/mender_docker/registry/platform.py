"""Platforms ("os/arch[/variant]") and how index entries match them."""

from __future__ import annotations

import platform as _host
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from mender_docker.errors import RegistryError

_MACHINE_TO_ARCH = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i686": ("386", ""),
    "i386": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    def matches(self, os: str, architecture: str, variant: str = "") -> bool:
        """Does an image for os/architecture/variant run here? Docker's loose rules:
        no variant asked means any variant; arm64's "v8" is the same as none."""
        if (os, architecture) != (self.os, self.architecture):
            return False
        if not self.variant:
            return True
        if architecture == "arm64" and {self.variant, variant} <= {"", "v8"}:
            return True
        return variant == self.variant


def parse_platform(text: str) -> Platform:
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise RegistryError(f"malformed platform {text!r}: expected os/arch[/variant]")
    return Platform(parts[0].lower(), parts[1].lower(), parts[2].lower() if len(parts) == 3 else "")


def host_platform() -> Platform:
    arch, variant = _MACHINE_TO_ARCH.get(_host.machine().lower(), (_host.machine().lower(), ""))
    return Platform("linux", arch, variant)


def entry_platform(entry: Mapping[str, Any]) -> Optional[Platform]:
    """The platform of an index entry; None for entries that are not runnable
    images (no platform, or buildx attestations marked unknown/unknown)."""
    raw = entry.get("platform")
    if not isinstance(raw, dict):
        return None
    os, arch = raw.get("os"), raw.get("architecture")
    if not isinstance(os, str) or not isinstance(arch, str) or "unknown" in (os, arch):
        return None
    variant = raw.get("variant")
    return Platform(os, arch, variant if isinstance(variant, str) else "")

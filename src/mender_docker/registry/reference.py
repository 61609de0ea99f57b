"""Image references, parsed the way Docker parses them.

`Reference.registry` is the host the API is spoken to (docker.io becomes
registry-1.docker.io), `Reference.repository` the API path ("library/debian"),
and `Reference.name` what the user typed minus tag and digest: the string
written into the artifact, because `docker pull` accepts it unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from mender_docker.errors import RegistryError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"

_HUB_ALIASES = (DOCKER_HUB, "index.docker.io")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HOST = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Reference:
    """A parsed image reference."""

    name: str  # as typed, without tag/digest: "debian", "127.0.0.1:5000/demo/web"
    domain: str  # "docker.io" or the host[:port] the user gave
    path: str  # repository path as typed: "debian", "demo/web"
    tag: Optional[str] = None
    digest: Optional[str] = None

    @property
    def registry(self) -> str:
        """host[:port] to speak the registry API to."""
        return DOCKER_HUB_API if self.domain in _HUB_ALIASES else self.domain

    @property
    def repository(self) -> str:
        """The repository path in API URLs (official images live under library/)."""
        if self.domain in _HUB_ALIASES and "/" not in self.path:
            return f"library/{self.path}"
        return self.path

    @property
    def target(self) -> str:
        """What to ask the manifests endpoint for: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def pinned(self, digest: str) -> str:
        return f"{self.name}@{digest}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse `[host[:port]/]path[:tag][@sha256:hex]`; RegistryError names a malformed one."""

    def bad(why: str) -> RegistryError:
        return RegistryError(f"malformed image reference {text!r}: {why}")

    if not text or text != text.strip():
        raise bad("empty or surrounded by spaces")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise bad("digest must be sha256:<64 lowercase hex>")
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.match(tag):
            raise bad(f"invalid tag {tag!r}")
    if not rest:
        raise bad("no repository name")
    first, sep, remainder = rest.partition("/")
    # Docker's rule: the first component is a registry host if it has a dot, a
    # port, or is "localhost"; otherwise the image is on Docker Hub.
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        domain, path = first, remainder
        if not _HOST.match(domain):
            raise bad(f"invalid registry host {domain!r}")
    else:
        domain, path = DOCKER_HUB, rest
    if len(rest) > 255:
        raise bad("repository name longer than 255 characters")
    for component in path.split("/"):
        if not _COMPONENT.match(component):
            if component.lower() != component:
                raise bad("repository name must be lowercase")
            raise bad(f"invalid repository component {component!r}")
    return Reference(name=rest, domain=domain, path=path, tag=tag, digest=digest)

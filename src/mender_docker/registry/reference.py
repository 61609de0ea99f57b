"""Image references, parsed the way Docker parses them (the grammar: imageref.py).

`Reference.registry` is the host the API is spoken to (docker.io becomes
registry-1.docker.io), `Reference.repository` the API path ("library/debian"),
and `Reference.name` what the user typed minus tag and digest: the string
written into the artifact, because `docker pull` accepts it unchanged.

A reference the shared grammar refuses is a RegistryError, "malformed image
reference '...': <reason>", before anything is fetched.
"""

from __future__ import annotations

from mender_docker.errors import RegistryError
from mender_docker.imageref import DOCKER_HUB, ImageReference, ImageReferenceError
from mender_docker.imageref import parse_image_reference as _parse

DOCKER_HUB_API = "registry-1.docker.io"

__all__ = ["DOCKER_HUB", "DOCKER_HUB_API", "Reference", "parse_reference"]


class Reference(ImageReference):
    """A parsed image reference: `name`, `domain` ("docker.io" for Docker Hub and its
    alias index.docker.io), `path` (normalised: "library/debian"), `tag`, `digest`."""

    @property
    def registry(self) -> str:
        """host[:port] to speak the registry API to."""
        return DOCKER_HUB_API if self.domain == DOCKER_HUB else self.domain

    @property
    def repository(self) -> str:
        """The repository path in API URLs (official images live under library/)."""
        return self.path

    @property
    def target(self) -> str:
        """What to ask the manifests endpoint for: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def pinned(self, digest: str) -> str:
        return f"{self.name}@{digest}"


def parse_reference(text: str) -> Reference:
    """Parse `[host[:port]/]path[:tag][@sha256:hex]`; RegistryError names a malformed one."""
    try:
        ref = _parse(text)
    except ImageReferenceError as exc:
        shown = text if len(text) <= 300 else text[:300] + "..."
        raise RegistryError(f"malformed image reference {shown!r}: {exc}") from None
    return Reference(ref.name, ref.domain, ref.path, ref.tag, ref.digest)

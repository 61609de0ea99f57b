"""Image references: the one grammar the generator, the registry client and the device share.

Standard library only: this file ships inside the device-side module
(cli/module_tools.DEVICE_SHARED). Its users, and what each does with a
reference parse_image_reference refuses (always one line, naming the reason):

    spec.split_pinned           (meta-data `containers`, generator and device) raises
                                MetadataError "image reference '...' is not pinned by
                                digest (...): <reason>": the generator stops, the device
                                fails the deployment in Download, before anything runs
    registry.parse_reference    (workstation) raises RegistryError "malformed image
                                reference '...': <reason>": nothing is fetched
    module.policy.registry_host raises ImageReferenceError; policy.find_violations
                                turns it into an `allowed_registries` violation (the
                                deployment fails). spec refuses such meta-data first,
                                so on a device it cannot happen.

The grammar is github.com/distribution/reference's, as docker normalises names:

    reference  := name [":" tag] ["@" digest]
    name       := [domain "/"] path
    domain     := domain-component ("." domain-component)* [":" port]
    domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
    port       := [0-9]+
    path       := component ("/" component)*
    component  := [a-z0-9]+ (("." | "_" | "__" | "-"+) [a-z0-9]+)*
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := "sha256:" [0-9a-f]{64}

The first "/"-separated part is the domain only if it contains "." or ":" or is
exactly "localhost"; otherwise the whole name is a path on docker.io. A
path of one component on docker.io gets "library/" ("debian" is
docker.io/library/debian), and "index.docker.io" is docker.io. Other spellings
of Docker Hub ("registry-1.docker.io", "INDEX.DOCKER.IO") are other registries to
docker: no "library/", no registry mirrors, their own credentials (`host`, for
comparing registries, folds case, so INDEX.DOCKER.IO is docker.io there). A tag next to
a digest is allowed; docker then pulls by the digest. A name that is 64
lowercase hex characters and nothing else is an image ID, not a name.

Where docker engines in service disagree, only what all of them accept is
accepted: docker 20.10 (docker/distribution 2.8's grammar; Debian 12 still ships
it) against docker 23 and later (github.com/distribution/reference):

  * an uppercase first part without "." or ":" ("Foo/bar", "LOCALHOST/x") is a
    path, so refused as not lowercase; docker 23+ reads it as a registry host;
  * IPv6 registry addresses ("[::1]:5000/x") are refused; docker 23+ accepts them;
  * the name with its domain and "library/" ("docker.io/library/" + name) is at
    most 255 characters; reference v0.6 (2024) counts the path alone.

Stricter than every docker: a first part that must be a domain but is none
("a_b.c/d": a "." but an underscore) is refused; docker takes it for a path on no
registry at all.

Digests are sha256 only: the meta-data contract and the registry client pin and
verify sha256; docker would also accept sha384 and sha512.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Optional, Tuple

DOCKER_HUB = "docker.io"
LEGACY_DOCKER_HUB = "index.docker.io"  # docker's own alias of DOCKER_HUB
OFFICIAL_PREFIX = "library/"
LOCALHOST = "localhost"
MAX_NAME_LENGTH = 255  # domain + "/" + path, as docker 20.10 counts it
DIGEST_ALGORITHM = "sha256"

# Pieces of the grammar, for the parser below and for anchored expressions built from them.
COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
DOMAIN_COMPONENT = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
DOMAIN = rf"{DOMAIN_COMPONENT}(?:\.{DOMAIN_COMPONENT})*(?::[0-9]+)?"
# A domain as the split rule recognises one: with a "." or a port, or localhost.
DOMAIN_PREFIX = (
    rf"(?:{LOCALHOST}(?::[0-9]+)?"
    rf"|{DOMAIN_COMPONENT}(?:\.{DOMAIN_COMPONENT})+(?::[0-9]+)?"
    rf"|{DOMAIN_COMPONENT}:[0-9]+)"
)
TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"  # Go's \w is ASCII
DIGEST = r"sha256:[0-9a-f]{64}"
# Without a domain, a first component with "." that a "/" follows is not a path: docker
# splits it off as a domain, and refuses it, or (a_b.c/d) names no registry: refused here.
NAME = rf"(?:{DOMAIN_PREFIX}/|(?![a-z0-9_-]*\.[a-z0-9._-]*/)){COMPONENT}(?:/{COMPONENT})*"
# The syntax of an accepted reference (the 255-character and image-ID rules aside);
# the tests check it accepts what parse_image_reference accepts.
REFERENCE_RE = re.compile(rf"(?P<name>{NAME})(?::(?P<tag>{TAG}))?(?:@(?P<digest>{DIGEST}))?")

_COMPONENT_RE = re.compile(COMPONENT)
_DOMAIN_RE = re.compile(DOMAIN)
_TAG_RE = re.compile(TAG)
_DIGEST_RE = re.compile(DIGEST)
# digest-algorithm ":" hex, the general form docker reads before checking the algorithm
_ANY_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_IMAGE_ID_RE = re.compile(r"[a-f0-9]{64}")


class ImageReferenceError(ValueError):
    """A malformed image reference; the message is the reason alone, one line."""


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference; str() gives back the text it was parsed from."""

    name: str  # as written, without tag and digest: "debian", "127.0.0.1:5000/demo/web"
    domain: str  # the registry as docker names it: "docker.io" or host[:port] as written
    path: str  # the repository path as docker normalises it: "library/debian", "demo/web"
    tag: Optional[str] = None
    digest: Optional[str] = None

    @property
    def host(self) -> str:
        """The registry host[:port] for comparisons, such as the device policy's
        allowed_registries: see normalise_host."""
        return normalise_host(self.domain)

    @property
    def canonical(self) -> str:
        """domain/path: "docker.io/library/debian"."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def normalise_host(host: str) -> str:
    """A registry host[:port] as compared: lower case (host names are case-blind), and
    docker's alias index.docker.io, in any case, is docker.io."""
    host = host.lower()
    return DOCKER_HUB if host == LEGACY_DOCKER_HUB else host


def _split(name: str) -> Tuple[Optional[str], str, str]:
    """(the domain as written or None, the domain, the normalised path)."""
    first, slash, rest = name.partition("/")
    written: Optional[str] = None
    if slash and (first == LOCALHOST or "." in first or ":" in first):
        written, domain, path = first, first, rest
    else:
        domain, path = DOCKER_HUB, name
    if domain == LEGACY_DOCKER_HUB:
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return written, domain, path


def _shown(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


@functools.lru_cache(maxsize=4096)  # meta-data names each image several times
def parse_image_reference(text: str) -> ImageReference:
    """Parse `[domain/]path[:tag][@sha256:hex]`; ImageReferenceError gives the reason."""
    if not text:
        raise ImageReferenceError("empty image reference")
    if not (text.isascii() and text.isprintable()) or " " in text:
        raise ImageReferenceError("contains a space, a control or a non-ASCII character")
    rest, at, digest = text.partition("@")
    if not at:
        digest_or_none = None
    elif _DIGEST_RE.fullmatch(digest):
        digest_or_none = digest
    elif _ANY_DIGEST_RE.fullmatch(digest):
        algorithm = digest.split(":", 1)[0]
        if algorithm != DIGEST_ALGORITHM:
            raise ImageReferenceError(
                f"unsupported digest algorithm {_shown(algorithm)} (only {DIGEST_ALGORITHM})"
            )
        raise ImageReferenceError("a sha256 digest is 64 lowercase hex digits")
    else:
        raise ImageReferenceError(f"invalid digest {_shown(digest)} (sha256:<64 hex>)")
    name, tag = rest, None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        name, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise ImageReferenceError(
                f"invalid tag {_shown(tag)} (letters, digits, '_', '.', '-'; at most 128, "
                "not starting with '.' or '-')"
            )
    if not name:
        raise ImageReferenceError("no repository name")
    if not at and tag is None and _IMAGE_ID_RE.fullmatch(name):
        raise ImageReferenceError("64 hex characters are an image ID, not a repository name")
    written, domain, path = _split(name)
    if len(domain) + 1 + len(path) > MAX_NAME_LENGTH:
        raise ImageReferenceError(
            f"repository name is too long ({len(domain) + 1 + len(path)} characters as "
            f"{domain}/..., at most {MAX_NAME_LENGTH})"
        )
    if written is not None:
        if written.startswith("["):
            raise ImageReferenceError(
                "IPv6 registry addresses are not accepted (docker before 23.0 refuses "
                "them): use a host name"
            )
        if not _DOMAIN_RE.fullmatch(written):
            raise ImageReferenceError(f"invalid registry host {_shown(written)}")
    for component in path.split("/"):
        if not _COMPONENT_RE.fullmatch(component):
            if component != component.lower() and _COMPONENT_RE.fullmatch(component.lower()):
                raise ImageReferenceError("repository name must be lowercase")
            raise ImageReferenceError(
                f"invalid repository path component {_shown(component)} (lowercase letters "
                "and digits, joined by '.', '_', '__' or dashes)"
            )
    return ImageReference(name, domain, path, tag, digest_or_none)

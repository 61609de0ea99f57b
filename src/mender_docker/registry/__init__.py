"""Workstation side: pin image references by digest, asking the registry only.

resolve(reference, platform=None, insecure=()) -> ResolvedImage
RegistryClient(transport, insecure, environ).resolve(reference, platform)
resolve_with_docker(reference, platform=None)   the original way: docker pull + inspect
parse_reference(text) -> Reference
"""

from mender_docker.registry.client import RegistryClient, ResolvedImage, is_insecure, resolve
from mender_docker.registry.docker_resolver import resolve_with_docker
from mender_docker.registry.platform import Platform, parse_platform
from mender_docker.registry.reference import Reference, parse_reference
from mender_docker.registry.transport import HttpTransport, Response, Transport

__all__ = [
    "HttpTransport",
    "Platform",
    "Reference",
    "RegistryClient",
    "ResolvedImage",
    "Response",
    "Transport",
    "is_insecure",
    "parse_platform",
    "parse_reference",
    "resolve",
    "resolve_with_docker",
]
